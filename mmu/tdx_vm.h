// The TD side of a VM (KVM_X86_TDX_VM): creation through the TDX module,
// TD vCPUs bound to their hardware vCPUs, the initial memory image
// (KVM_TDX_INIT_MEM_REGION), finalize, private faults that AUG, the guest's
// ACCEPT, and teardown that reclaims every page the TD owned
// (kvm-mmu.md 7, tdx-seam.md 2, 4, 9). Every action is a SEAMCALL/TDCALL
// transaction on the TdxModule.
//
// Private mappings are kept per gfn in `private_` (what KVM's mirror root
// records); Secure-EPT tables added for them in `sept_tables_`.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "model/phys_mem.h"
#include "model/types.h"
#include "seam/pamt_refcount.h"
#include "seam/td_builder.h"
#include "seam/tdx_module.h"

namespace septsim::model {
class Vcpu;
}

namespace septsim::mmu {

struct MmuStats;

struct TdxVmParams {
  int gpaw = 48;  // 48 or 52
  int ept_levels = 4;
  u16 hkid = 1;
};

// A private page the VMM gave the TD (PAGE.ADD or PAGE.AUG).
struct PrivatePage {
  Hpa hpa = 0;
  int level = PG_LEVEL_4K;  // 1 = 4K, 2 = 2M
  u64 tag = 0;              // content tag when the page was given or last written by the guest
  bool added = false;       // PAGE.ADD (initial image) rather than AUG
};

class TdxVm {
 public:
  TdxVm(seam::TdxModule& tdx, model::PhysMem& mem, MmuStats& stats);
  TdxVm(const TdxVm&) = delete;
  TdxVm& operator=(const TdxVm&) = delete;

  // Cycles of one kick IPI (KVM charges its latency.tlb_flush).
  void set_kick_cost(Cycles c) { kick_ipi_ = c; }
  // MNG.CREATE .. VP.INIT; binds each TD vCPU to hw[i] (may be null).
  // Returns the cycles; throws std::runtime_error naming the failed leaf.
  Cycles create(const TdxVmParams& p, const std::vector<model::Vcpu*>& hw);

  // The shared bit (kvm_gfn_direct_bits as a GPA bit): 47 or 51.
  unsigned shared_bit() const { return unsigned(params_.gpaw) - 1; }
  bool is_private(Gpa gpa) const { return !((gpa >> shared_bit()) & 1); }
  bool finalized() const { return finalized_; }
  bool torn_down() const { return torn_down_; }
  bool bugged() const { return bugged_; }
  u32 vcpus() const { return u32(handle_.tdvpr.size()); }

  // PAGE.ADD of `hpa` at `gpa` with content copied from a source page tagged
  // `tag`; MR.EXTEND per 256 bytes when `measure`.
  Cycles page_add(Gpa gpa, Hpa hpa, u64 tag, bool measure);
  Cycles finalize();
  // The external_spt cache of TD vCPU `cache` (vm_cache(): the VM's own, for
  // ioctls), topped up before mmu_lock so the hooks never allocate.
  void topup_external_spt_cache(u32 cache, Cycles& cycles);
  u32 vm_cache() const { return u32(external_spt_cache_.size() - 1); }
  size_t cached_spt_pages(u32 cache) const { return external_spt_cache_.at(cache).size(); }
  // Private fault at `gpa` backed by `hpa` (level 1 = 4K, 2 = 2M): SEPT.ADD of
  // missing tables with pages from cache `cache`, then AUG. True when the
  // page is mapped.
  bool map_private(u32 cache, Gpa gpa, Hpa hpa, int level, Cycles& cycles);
  // remove_external_spte for the private page recorded at `gfn` (its whole
  // level): BLOCK -> TRACK -> kick every vCPU -> REMOVE -> WBINVD. On a
  // failure the VM is bugged and the page stays recorded.
  bool remove_private(Gfn gfn, Cycles& cycles);
  // TDG.MEM.PAGE.ACCEPT by TD vCPU `vcpu`; returns the TDX status.
  seam::Status accept(u32 vcpu, Gpa gpa, int tdx_level, Cycles& cycles);
  // A VM exit / entry of TD vCPU `vcpu` (TD exit, TDH.VP.ENTER).
  Cycles td_exit(u32 vcpu);
  Cycles vp_enter(u32 vcpu);
  // VP.FLUSH, VPFLUSHDONE, CACHE.WB, KEY.FREEID, then RECLAIM of every
  // private, Secure-EPT and control page (TDR last).
  Cycles teardown();

  const std::map<Gfn, PrivatePage>& private_pages() const { return private_; }
  std::map<Gfn, PrivatePage>& private_pages() { return private_; }
  const seam::TdHandle& handle() const { return handle_; }
  // Secure-EPT table pages KVM added (external_spt), keyed by level and GPA.
  const std::map<u64, Hpa>& sept_tables() const { return sept_tables_; }
  const seam::Td* td() const { return tdx_.td(handle_.tdr); }
  seam::TdxModule& module() { return tdx_; }
  const seam::TdxModule& module() const { return tdx_; }
  // The VM's "kvm.tdx.*" counters (mmu_stats.h).
  u64& seamcalls;
  u64& busy_retries;
  u64& memory_faults;
  u64& kicks;
  u64& removed;

 private:
  seam::Status call(seam::Leaf leaf, seam::SeamcallRegs& r, Cycles& cycles);
  Hpa control_page(Cycles& cycles);
  // The kernel's Dynamic PAMT refcount (PAMT.ADD on 0->1, PAMT.REMOVE on 1->0).
  void pamt_get(Hpa hpa, Cycles& cycles);
  void pamt_put(Hpa hpa, Cycles& cycles);
  bool ensure_tables(Gpa gpa, int leaf_level, u32 cache, Cycles& cycles);
  bool reclaim(Hpa hpa, Cycles& cycles);
  Cycles kick_all();
  Cycles reenter_all();

  seam::TdxModule& tdx_;
  model::PhysMem& mem_;
  seam::PamtRefcount dpamt_;
  TdxVmParams params_;
  seam::TdHandle handle_;
  std::vector<model::Vcpu*> hw_;
  std::map<Gfn, PrivatePage> private_;
  std::map<u64, Hpa> sept_tables_;  // (level << 56 | gpa >> level shift) -> table page
  std::vector<std::vector<Hpa>> external_spt_cache_;  // per TD vCPU, then the VM's
  bool finalized_ = false;
  bool torn_down_ = false;
  bool bugged_ = false;
  // The VMM's simulated clock for SEAMCALL start times: the module's locks
  // are windows in time, so back-to-back calls must not overlap.
  Cycles now_ = 0;
  Cycles kick_ipi_ = 0;  // what one kick IPI costs
};

}  // namespace septsim::mmu
