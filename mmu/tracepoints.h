// KVM's MMU tracepoints (arch/x86/kvm/mmu/mmutrace.h) as calls the MMU makes where
// KVM calls its trace_* hooks, with the arguments KVM passes. A sink is
// attached with Kvm::set_tracepoints (`septsim replay --emit-kvmmmu` writes
// them as ftrace text, traces/kvmmmu_writer.h); without one, each hook costs
// a null-pointer test.
#pragma once
#include "model/types.h"

namespace septsim::mmu {

class MmuTracepoints {
 public:
  virtual ~MmuTracepoints() = default;

  // The vCPU whose exit the MMU is handling from now on (its thread emits
  // what follows), or -1: back to the VMM's own thread (ioctls).
  virtual void set_task(int vcpu_id) = 0;

  // kvm:kvm_page_fault (vmx.c, EPT violation): on VMX error_code is the
  // exit qualification. The model has no guest RIP: 0.
  virtual void kvm_page_fault(unsigned vcpu_id, u64 guest_rip, Gpa fault_address, u64 error_code) = 0;
  // kvmmmu:fast_page_fault, at the end of fast_page_fault whatever it
  // decided: old_spte as read, new_spte the SPTE now (0 without an SPTE),
  // ret a RET_PF_* value.
  virtual void fast_page_fault(unsigned vcpu_id, Gpa cr2_or_gpa, u64 error_code, u64 old_spte, u64 new_spte,
                               int ret) = 0;
  // kvmmmu:kvm_mmu_spte_requested at the start of kvm_tdp_mmu_map: pfn has
  // the gfn's offset in the goal-level page.
  virtual void kvm_mmu_spte_requested(Gfn gfn, Pfn pfn, int goal_level) = 0;
  // kvmmmu:kvm_tdp_mmu_spte_changed from handle_changed_spte (old != new).
  virtual void kvm_tdp_mmu_spte_changed(int as_id, Gfn gfn, int level, u64 old_spte, u64 new_spte) = 0;
  // kvmmmu:kvm_mmu_split_huge_page: the huge SPTE split at `level`.
  virtual void kvm_mmu_split_huge_page(Gfn gfn, u64 spte, int level, int err) = 0;

  // Not kernel tracepoints: what the MMU does between them that a timeline
  // shows (docs/timeline.md). A sink that wants none ignores them.
  // kvm_flush_remote_tlbs: KVM_REQ_TLB_FLUSH sent with an IPI to `ipis` vCPUs.
  virtual void remote_tlb_flush(unsigned ipis) { (void)ipis; }
  // The flush IPI made vCPU `target` leave the guest: its exit, flush and
  // entry took `cycles` of its own time (charged to it, not to the sender).
  virtual void ipi_exit(unsigned target, Cycles cycles) { (void)target, (void)cycles; }
  // mmu_lock granted after a wait of `wait` cycles behind another holder.
  virtual void mmu_lock_wait(bool write, Cycles wait) { (void)write, (void)wait; }
  // The EPT-violation exit of `vcpu_id` that kvm_page_fault opened is
  // handled: it took `cycles` of host time (the vCPU's clock moves on by
  // them when the MMU returns).
  virtual void exit_handled(unsigned vcpu_id, Cycles cycles) { (void)vcpu_id, (void)cycles; }
  // A TD's vCPUs kicked out of the guest (tdx_track, tdh_do_no_vcpus):
  // `ipis` of them were in the guest and took the IPI.
  virtual void tdx_kick(unsigned ipis) { (void)ipis; }
};

// Attributes the tracepoints of one vCPU exit to that vCPU's thread, then
// hands the thread back to the VMM.
struct TracepointTask {
  TracepointTask(MmuTracepoints* sink, int vcpu_id) : tp(sink) {
    if (tp) tp->set_task(vcpu_id);
  }
  ~TracepointTask() {
    if (tp) tp->set_task(-1);
  }
  TracepointTask(const TracepointTask&) = delete;
  TracepointTask& operator=(const TracepointTask&) = delete;
  MmuTracepoints* tp;  // the sink, or nullptr
};

}  // namespace septsim::mmu
