// The boundary between the hardware model and the hypervisor (mmu/). The vCPU
// reports VM exits through Hypervisor; the hypervisor acts on vCPUs through
// VcpuControl. model/ never includes mmu/ (dependency inversion).
#pragma once
#include "model/ept.h"
#include "model/types.h"

namespace septsim::model {

// Requests a hypervisor raises on a vCPU; serviced before the next VM entry,
// as KVM's kvm_make_request()/kvm_check_request() are.
enum VcpuRequest : u32 {
  KVM_REQ_TLB_FLUSH = 1u << 0,                 // flush the current EPT context
  KVM_REQ_MMU_FREE_OBSOLETE_ROOTS = 1u << 1,   // a root was invalidated: drop it, load a new one
  KVM_REQ_LOAD_MMU_PGD = 1u << 2,              // write the EPTP again
  KVM_REQ_VM_DEAD = 1u << 3,                   // the VM is dead: the vCPU runs nothing more (sticky)
};

class VcpuControl {
 public:
  virtual ~VcpuControl() = default;
  virtual unsigned id() const = 0;
  // The EPT pointer in the VMCS; root 0 means "no root loaded".
  virtual const ept::Eptp& eptp() const = 0;
  virtual void load_eptp(const ept::Eptp& eptp) = 0;
  // INVEPT single-context on `eptp` (guest-physical and combined mappings),
  // executed at once: KVM's kick waits for the vCPU to leave the guest.
  virtual void invept_single(const ept::Eptp& eptp) = 0;
  virtual void invept_all() = 0;
  // A TD vCPU's entry: the TDX module (TDH.VP.ENTER) loads the Secure-EPT
  // root that private GPAs (shared bit clear) walk; the shared EPTP stays
  // the one load_eptp() set.
  virtual void load_secure_eptp(const ept::Eptp& eptp, unsigned shared_bit) = 0;
  virtual void make_request(u32 request) = 0;
  // The vCPU's local simulated time in cycles, the operation in progress
  // included: when its VM exit reaches the hypervisor.
  virtual Cycles local_time() const = 0;
  // Cycles the hypervisor makes this vCPU spend outside its own operations
  // (the exit, INVEPT and entry a remote-flush IPI forces on it).
  virtual void charge(Cycles cycles) = 0;
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;
  // Each handler returns the host-side cycles it spent, excluding the VM exit
  // and entry themselves (the vCPU charges those).
  virtual Cycles handle_ept_violation(VcpuControl& vcpu, Gpa gpa, u64 exit_qualification) = 0;
  virtual Cycles handle_ept_misconfig(VcpuControl& vcpu, Gpa gpa) = 0;
  // Called before VM entry while requests are pending or no root is loaded.
  virtual Cycles service_requests(VcpuControl& vcpu, u32 requests) = 0;
};

}  // namespace septsim::model
