// The KVM-like VM: memslots with host backing, the TDP MMU (mmu/tdp_mmu.*),
// the page-fault path, zaps, dirty logging and KVM's statistics. It is the
// model's Hypervisor: vCPUs report EPT violations to it.
#pragma once
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "mmu/sept_level.h"
#include "model/config.h"
#include "model/hypervisor.h"
#include "model/phys_mem.h"
#include "model/stats.h"
#include "model/timing.h"

namespace septsim::model {
class Vcpu;
}
namespace septsim::seam {
class TdxModule;
}

namespace septsim::mmu {

class MmuTracepoints;
class TdxVm;
struct CheckLog;
struct TdxVmParams;

// How the host backs a memslot's userspace memory (what host_pfn_mapping_level
// would find): small pages, transparent huge pages, or hugetlbfs 1G pages.
enum class HostBacking : u8 { Page4K, Thp2M, Hugetlb1G };

constexpr u32 KVM_MEM_LOG_DIRTY_PAGES = 1u << 0;
constexpr u32 KVM_MEM_READONLY = 1u << 1;

struct MemslotSpec {
  u32 id = 0;
  Gpa gpa = 0;                 // guest-physical base, 4 KiB aligned
  u64 size = 0;                // bytes, 4 KiB multiple
  u64 userspace_addr = 0;      // HVA; 0 = pick one aligned like the gpa at the backing size
  HostBacking backing = HostBacking::Page4K;
  u32 flags = 0;               // KVM_MEM_*
};

// What a TD's mirror root maps at a private GPA (Kvm::private_mapping).
struct PrivateMapping {
  Hpa hpa = 0;           // the private page (the leaf's frame)
  int level = 0;         // 1 = 4K, 2 = 2M
  bool added = false;    // SPTE_TDX_PAGE_ADDED: PAGE.ADD of the image rather than AUG
  Hpa sptep = 0;         // host-physical address of the mirror leaf
  Hpa external_spt = 0;  // the Secure-EPT page of the mirror table holding the leaf
};

// A request the VM refuses (overlapping slot, unknown slot id...), as the
// ioctl would return -EINVAL/-EEXIST. The message names the problem.
struct KvmError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Kvm : public model::Hypervisor {
 public:
  Kvm(const model::Config& cfg, const model::Timing& timing, model::PhysMem& mem, model::StatsRegistry& stats);
  ~Kvm() override;

  void add_vcpu(model::VcpuControl& vcpu);
  // Sends the MMU's tracepoints (mmu/tracepoints.h) to `tp` (nullptr: off).
  void set_tracepoints(MmuTracepoints* tp);

  // Memslot ioctls (KVM_SET_USER_MEMORY_REGION); each returns host cycles.
  Cycles create_memslot(const MemslotSpec& spec);
  Cycles delete_memslot(u32 id);
  Cycles move_memslot(u32 id, Gpa new_gpa);
  // Toggling KVM_MEM_LOG_DIRTY_PAGES starts (eager split + write-protect) or
  // stops (huge-page recovery) dirty logging.
  Cycles set_memslot_flags(u32 id, u32 flags);
  // KVM_GET_DIRTY_LOG: returns and clears the slot's dirty bitmap (popcount in
  // *dirty_pages) and write-protects the pages again.
  Cycles get_dirty_log(u32 id, u64* dirty_pages);
  // KVM_CLEAR_DIRTY_LOG (manual protect) over [first_page, first_page + num_pages).
  Cycles clear_dirty_log(u32 id, u64 first_page, u64 num_pages);

  // kvm_zap_gfn_range: zaps every leaf mapping part of [gpa, gpa + size) in
  // every root (a huge leaf entirely) and flushes, as an mmu_notifier unmap
  // of that range does. Returns host cycles.
  Cycles zap_gfn_range(Gpa gpa, u64 size);

  // The simulated time at which the next ioctl starts (the VMM thread's
  // clock). Without it an ioctl starts after every operation so far, as at
  // the replayer's barrier.
  void set_host_time(Cycles t);
  // The simulated time the latest operation so far ended at.
  Cycles latest_time() const;

  // The host-physical address backing `gpa`, faulting in host memory (not the
  // EPT): how the replayer, acting as the guest kernel, writes guest page
  // tables. Throws KvmError if no memslot covers gpa.
  Hpa host_hpa_for_gpa(Gpa gpa);
  bool gpa_in_memslot(Gpa gpa) const;

  // A TD (KVM_X86_TDX_VM), tdx_vm.h. create_td builds the TD with one TD
  // vCPU per hardware vCPU (hw[i] is vCPU i, added with add_vcpu); the rest
  // throw KvmError when the VM is not a TD or the TDX module refuses.
  Cycles create_td(seam::TdxModule& tdx, const TdxVmParams& p, const std::vector<model::Vcpu*>& hw);
  // KVM_TDX_INIT_MEM_REGION: PAGE.ADD of [gpa, gpa + size) from an image
  // whose page i carries content tag `tag + i`; MR.EXTEND when `measure`.
  Cycles td_init_mem_region(Gpa gpa, u64 size, u64 tag, bool measure);
  Cycles td_finalize();
  // TDG.MEM.PAGE.ACCEPT from TD vCPU `vcpu` at `level`, the guest's operand
  // in the module's scheme (0 = 4K, 1 = 2M; sept_level.h converts); a PENDING
  // page that is not yet mapped is faulted in first (the ACCEPT's EPT
  // violation). *status gets the final TDX status.
  // `interrupt`: a host interrupt is pending while the guest's ACCEPT runs
  // (a 2M ACCEPT then stops after a chunk; the vCPU re-enters and repeats it).
  Cycles td_accept(u32 vcpu, Gpa gpa, TdxLevel level, u64* status, bool interrupt = false);
  // The host scheduler moves TD vCPU `vcpu`'s thread to logical processor
  // `lp` (tdx_vcpu_load on another CPU): the vCPU leaves the guest, is
  // flushed on the LP it last ran on (TDH.VP.FLUSH by IPI,
  // tdx_flush_vp_on_cpu), and its next TDH.VP.ENTER, on `lp`, associates it
  // there. Nothing happens when it already runs on `lp`.
  Cycles td_vcpu_migrate(u32 vcpu, u32 lp);
  // The TD goes away. By default as the kernel destroys a VM: guest_memfd's
  // release removes every private page while the HKID is assigned, then the
  // HKID is released and the tables and control pages are RECLAIMed.
  // `terminate` releases the HKID first (KVM_TDX_TERMINATE_VM), so the
  // private pages are RECLAIMed instead of removed.
  Cycles td_teardown(bool terminate = false);
  // KVM_SET_MEMORY_ATTRIBUTES over [gpa, gpa + size) (gpa without the shared
  // bit): private -> shared removes the TD's private pages there (the mirror
  // side), shared -> private zaps the shared mappings (the direct root).
  Cycles set_memory_attributes(Gpa gpa, u64 size, bool make_private);
  // The guest's MapGPA hypercall from TD vCPU `vcpu`: the shared bit of gpa
  // says which way; the VMM answers with set_memory_attributes.
  Cycles map_gpa(u32 vcpu, Gpa gpa, u64 size);
  // One run of the NX-recovery worker (kvm_nx_huge_page_recovery_worker):
  // with mmu.tdx_merge_policy A it promotes the oldest ready split private
  // ranges; otherwise it only counts the tick (no NX huge pages are modelled).
  Cycles nx_recovery_tick();
  // KVM_EXIT_MEMORY_FAULT exits so far (private-ness of a fault and the
  // attribute disagree, or no memslot backs a private fault).
  u64 memory_fault_exits() const;
  // The mirror leaf mapping `gpa` (no shared bit), if any.
  std::optional<PrivateMapping> private_mapping(Gpa gpa) const;
  bool is_td() const;
  // Why the VM is dead (KVM_BUG_ON, kvm_vm_dead), empty while it runs. A
  // dead VM's vCPUs run nothing more.
  const std::string& dead_reason() const;
  const TdxVm* tdx_vm() const;
  TdxVm* tdx_vm();

  // model::Hypervisor
  Cycles handle_ept_violation(model::VcpuControl& vcpu, Gpa gpa, u64 exit_qualification) override;
  Cycles handle_ept_misconfig(model::VcpuControl& vcpu, Gpa gpa) override;
  Cycles service_requests(model::VcpuControl& vcpu, u32 requests) override;

  // Present leaf SPTEs per level over all roots (KVM's pages_4k/2m/1g).
  u64 pages(int level) const;
  // Level of the present leaf SPTE that maps `gpa` in vCPU `vcpu_id`'s current
  // root (1 = 4K, 2 = 2M, 3 = 1G); 0 if none does or the vCPU has no valid
  // root. What kvm-compare sets against a recorded kvm_mmu_spte_requested.
  int mapped_level(u32 vcpu_id, Gpa gpa) const;
  // Page-modification logging is on (mmu.pml with A/D) and `gpa` (a TD's
  // shared GPA included) lies in a dirty-logged memslot: a write is logged
  // only when the CPU sets the EPT D bit. For the dirty-log rule.
  bool pml_logged(Gpa gpa) const;
  // Whether any memslot is dirty-logged with PML.
  bool pml_logging() const;
  // Checks the docs/invariants.md rules over the whole state; one line per
  // violation naming the rule.
  std::vector<std::string> check_invariants() const;
  // --check between full sweeps: notes every change in `log` (nullptr: off),
  // and checks the rules only where `log` says the state changed, plus the
  // rules that cost O(roots + vCPUs). Clears nothing: the caller clears `log`.
  void set_check_log(CheckLog* log);
  std::vector<std::string> check_invariants_incremental(const CheckLog& log) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace septsim::mmu
