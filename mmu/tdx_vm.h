// The TD side of a VM (KVM_X86_TDX_VM): creation through the TDX module,
// TD vCPUs bound to their hardware vCPUs, the initial memory image
// (KVM_TDX_INIT_MEM_REGION), finalize, private faults that AUG, the guest's
// ACCEPT, and teardown that reclaims every page the TD owned
// (arch/x86/kvm/vmx/tdx.c; docs/kvm-behaviour.md). Every action is a SEAMCALL/TDCALL
// transaction on the TdxModule.
//
// TdxVm is the ExternalSpt of the VM's mirror root: private mappings live in
// the mirror (the SPTE holds the pfn, SPTE_TDX_PAGE_ADDED says PAGE.ADD, each
// mirror table's external_spt is its Secure-EPT page) and reach the module
// through these hooks. Content tags stay in PhysMem's frame metadata; TdxVm
// keeps one digest per 2 MiB region of what the mapped pages held when
// mapped, so a content change behind the TD's back is detected.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mmu/check_log.h"
#include "mmu/external_spt.h"
#include "mmu/fault_inject.h"
#include "mmu/kvm_op.h"
#include "mmu/mmu_page.h"
#include "mmu/sept_level.h"
#include "mmu/tracepoints.h"

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
class MmuLock;

// mmu.tdx_pamt_cache: where the Dynamic PAMT pages the hooks need under
// mmu_lock come from (docs/kvm-behaviour.md).
enum class PamtCache : u8 {
  Vcpu,       // a page-pair cache per vCPU, topped up before mmu_lock (the DPAMT series)
  Vm,         // one cache for the whole VM
  KmemCache,  // S-EPT pages from a kmem_cache whose constructor installed their PAMT
};

struct TdxVmParams {
  int gpaw = 48;  // 48 or 52
  int ept_levels = 4;
  u16 hkid = 1;
};

class TdxVm : public ExternalSpt {
 public:
  TdxVm(seam::TdxModule& tdx, model::PhysMem& mem, MmuStats& stats);
  TdxVm(const TdxVm&) = delete;
  TdxVm& operator=(const TdxVm&) = delete;

  // Cycles of one kick IPI (KVM charges its latency.ipi).
  void set_kick_cost(Cycles c) { kick_ipi_ = c; }
  // Cycles of one page allocation (latency.page_alloc), for the PAMT pairs
  // topup_external_cache allocates.
  void set_page_alloc_cost(Cycles c) { page_alloc_ = c; }
  // Every call below that makes SEAMCALLs takes the KVM operation in
  // progress (mmu/kvm_op.h): each SEAMCALL starts at the operation's current
  // time, is made by its initiator (the VMM in an ioctl, TD vCPU i during
  // its exit) and charges its cycles to it; the hooks draw on that
  // initiator's caches (cache_of).
  //
  // How far apart the initiators' clocks may be (several vCPUs): the
  // module's lock windows are kept that long.
  void set_clock_skew(Cycles skew);
  // The caches the hooks of operation `op` draw on: its TD vCPU's, or the
  // VM's own (vm_cache()) in an ioctl.
  u32 cache_of(const KvmOp& op) const {
    return op.vcpu && op.vcpu->id() < vcpus() ? u32(op.vcpu->id()) : vm_cache();
  }
  // How the huge-page series in use (mmu.tdx_huge_pages) removes and splits
  // private 2M pages: a WBINVD per 4K piece, and a BUSY DEMOTE retried with
  // the vCPUs kicked out (tdh_do_no_vcpus) instead of in place.
  void set_huge_page_calls(bool wbinvd_per_4k, bool demote_no_vcpus) {
    wbinvd_per_4k_ = wbinvd_per_4k;
    demote_no_vcpus_ = demote_no_vcpus;
  }
  // mmu.tdx_demote_lock=pamt_lock: a 2M DEMOTE with Dynamic PAMT holds the
  // host's pamt_lock (a review of the huge-page RFC v5, docs/tdx-series.md).
  void set_demote_pamt_lock(bool on) { demote_pamt_lock_ = on; }
  // The last SEAMCALL answered TDX_OPERAND_BUSY.
  bool last_busy() const { return last_busy_; }
  // The VM's mmu_lock: TDH.MEM.TRACK must run under its write side (rule 20).
  void set_mmu_lock(const MmuLock* lock) { mmu_lock_ = lock; }
  // Where kicks are reported (a timeline), or nullptr.
  void set_tracepoints(MmuTracepoints* tp) { tp_ = tp; }
  // debug.inject (mmu/fault_inject.h); null: never.
  void set_injector(FaultInjector* f) { inject_ = f; }
  // Broken rule-20 (TRACK) and rule-21 (allocation under mmu_lock)
  // conditions seen so far, one line each.
  const std::vector<std::string>& hook_violations() const { return hook_violations_; }
  // Every KVM_BUG_ON / TDX_BUG_ON that fired, one line each naming the
  // refused leaf, its operand, the status and the kernel function (rule kvm-bug).
  const std::vector<std::string>& bug_reports() const { return bug_reports_; }
  // --check: the GPAs of the Secure-EPT SEAMCALLs are noted here (nullptr: off).
  void set_check_log(CheckLog* log) { check_log_ = log; }
  // MNG.CREATE .. VP.INIT; binds each TD vCPU to hw[i] (may be null).
  // Throws std::runtime_error naming the failed leaf.
  void create(KvmOp& op, const TdxVmParams& p, const std::vector<model::Vcpu*>& hw);

  // The shared bit (kvm_gfn_direct_bits as a GPA bit): 47 or 51.
  unsigned shared_bit() const { return unsigned(params_.gpaw) - 1; }
  bool is_private(Gpa gpa) const { return !((gpa >> shared_bit()) & 1); }
  bool finalized() const { return finalized_; }
  bool torn_down() const { return torn_down_; }
  // stop_vcpus ran: no TD vCPU is in the guest or will enter again.
  bool stopped() const { return stopped_; }
  bool bugged() const { return bugged_; }
  // Why the first KVM_BUG_ON / TDX_BUG_ON fired (empty while not bugged).
  const std::string& bug_reason() const { return bug_reason_; }
  u32 vcpus() const { return u32(handle_.tdvpr.size()); }
  // The logical processor TD vCPU `vcpu` runs on: LP i mod
  // (host.packages x host.lps_per_package) for vCPU i until migrate_vcpu
  // moves it. Its VP.INIT, VP.ENTERs and VP.FLUSH name that LP, and so do
  // the SEAMCALLs made during its exits.
  u32 lp_of(u32 vcpu) const { return vcpu < vcpu_lp_.size() ? vcpu_lp_[vcpu] : vcpu % tdx_.lps(); }
  // tdx_vcpu_load on another LP: TD exit if in the guest, VP.FLUSH on the
  // old LP (an IPI there), and the vCPU runs on `lp` from now on; VP.ENTER
  // there. False when `lp` is no LP of the platform.
  bool migrate_vcpu(KvmOp& op, u32 vcpu, u32 lp);

  // KVM_TDX_INIT_MEM_REGION: the next leaf the mirror maps before finalize
  // is PAGE.ADDed from a source page tagged `tag` (kvm_tdx->page_add_src);
  // nullopt when done.
  void set_page_add_src(std::optional<u64> tag) { page_add_src_ = tag; }
  // MR.EXTEND of the 4 KiB page at `gpa`, 256 bytes at a time.
  void mr_extend(Gpa gpa, KvmOp& op);
  // Refused (KVM's -EINVAL) while nr_premapped is not 0.
  void finalize(KvmOp& op);
  // The external_spt cache of TD vCPU `cache` (vm_cache(): the VM's own, for
  // ioctls), topped up before mmu_lock so the hooks never allocate.
  void topup_external_spt_cache(u32 cache, KvmOp& op);
  u32 vm_cache() const { return u32(external_spt_cache_.size() - 1); }
  // Dynamic PAMT page pairs for the hooks under mmu_lock (the Dynamic PAMT
  // series, docs/design.md): one cache per TD vCPU (KVM's way), only the
  // VM's, or a kmem_cache of S-EPT pages that keep their PAMT while free
  // (the guest page's pair then comes from guest_memfd's prepare hook,
  // before mmu_lock, and the pair caches hold only a DEMOTE's R12/R13).
  // `sept_at_link` (mmu.tdx_dpamt_series=v6): an S-EPT page gets its PAMT
  // pair from the pair cache just before SEPT.ADD (or DEMOTE), not when it
  // is allocated into the S-EPT page cache (rfc-v5).
  void set_pamt_cache(PamtCache mode, bool sept_at_link) {
    pamt_mode_ = mode;
    sept_pamt_at_link_ = sept_at_link;
  }
  // kmem-cache: free S-EPT pages the cache holds, each still backed by its
  // 2M region's PAMT pair (they outlive the TD).
  size_t kmem_cache_pages() const { return sept_slab_.size(); }
  const std::vector<Hpa>& kmem_cache() const { return sept_slab_; }
  // Fills cache `cache`'s PAMT pool before mmu_lock with enough pages for
  // one fault: a pair for the guest page and for each table it may link.
  // Returns the pages allocated.
  u32 topup_pamt_cache(u32 cache);
  size_t cached_pamt_pages(u32 cache) const { return pamt_pool(cache).size(); }
  // TDH.MEM.PAGE.DEMOTE's R12/R13 under mmu_lock: a PAMT page pair from
  // cache `cache` (rule 21 if it runs dry).
  std::pair<Hpa, Hpa> take_pamt_pair(u32 cache);
  // TDH.MEM.PAGE.PROMOTE hands its R12/R13 pair back: into cache `cache`
  // while it is below its fill level, otherwise to the host.
  void return_pamt_pair(u32 cache, Hpa r12, Hpa r13);
  // After a successful TDH.MEM.PAGE.PROMOTE of the 4K pieces of the 2M page
  // at `page2m` (with Dynamic PAMT, under mmu_lock): the module removed the
  // region's PAMT_4K pair and handed it back in R12/R13 out. The refcount
  // forgets the region's holders (no PAMT.REMOVE follows) and the pair goes
  // to cache `cache` as return_pamt_pair does. The undo of a split's adopt.
  void promoted_pamt(u32 cache, Hpa page2m, Hpa r12, Hpa r13);
  // Holders of the PAMT pair of `hpa`'s 2M region in the kernel's refcount.
  // This TD's holds on the host's Dynamic PAMT refcount: of hpa's 2 MiB
  // region, and of every region it holds (by region index).
  u32 pamt_holders(Hpa hpa) const { return dpamt_.count_of(hpa, dpamt_owner_); }
  std::map<u64, u32> pamt_holds() const { return dpamt_.counts_of(dpamt_owner_); }
  // The host's refcount, all TDs' holds.
  const seam::PamtRefcount& host_pamt_refcount() const { return dpamt_; }
  // The Secure-EPT pages topped up for the hooks, per cache (each holds a Dynamic PAMT reference).
  const std::vector<std::vector<Hpa>>& external_spt_caches() const { return external_spt_cache_; }
  // Whether the pages in those caches already hold a Dynamic PAMT pair
  // (rfc-v5) or get it when linked (v6, and without Dynamic PAMT: none).
  bool cached_sept_pages_hold_pamt() const { return tdx_.pamt().dynamic() && !sept_at_link(); }
  size_t cached_spt_pages(u32 cache) const { return external_spt_cache_.at(cache).size(); }

  // ExternalSpt (the mirror root's hooks).
  u32 topup_external_cache(KvmOp& op) override;
  Pfn take_external_spt(u32 cache, KvmOp& op) override;
  void free_unlinked_external_spt(Pfn page, KvmOp& op) override;
  // tdx_sept_set_private_spte: to map_nonleaf_spte, map_leaf_spte or remove_leaf_spte.
  bool set_external_spte(Gfn gfn, int level, u64 old_spte, u64 new_spte, Pfn child_external_spt,
                         KvmOp& op) override;
  bool split_external_spt(Gfn gfn, int level, u64 old_spte, Pfn external_spt, KvmOp& op) override;
  bool free_external_spt(Gfn gfn, int level, Pfn external_spt, KvmOp& op) override;

  // Merging a split range back (mmu/tdx_merge_policy.h), under the write
  // mmu_lock: BLOCK the 2M non-leaf entry (NL_MAPPED -> NL_BLOCKED) of each
  // range, one TRACK and kick, PROMOTE each, then the vCPUs re-enter.
  bool block_for_merge(Gfn base, int level, KvmOp& op);
  // tdx_track: TRACK, then every vCPU kicked out so the old epoch drains;
  // `gpa` names the range in the error message.
  bool track_and_kick(Gpa gpa, KvmOp& op);
  void resume_vcpus(KvmOp& op) { reenter_all(op); }
  enum class PromoteResult : u8 {
    Promoted,  // the range is one huge leaf; the table's SEPT page is the host's again
    NotReady,  // TDX_EPT_INVALID_PROMOTE_CONDITIONS (e.g. PENDING and MAPPED children): UNBLOCKed again
    Failed,    // any other refusal: the VM is bugged
  };
  // TDH.MEM.PAGE.PROMOTE of the BLOCKed, TRACKed range at (base, level)
  // whose children map the huge page at `page`; `external_spt` is the
  // table's Secure-EPT page the module hands back. With Dynamic PAMT the
  // R12/R13 pair it returns goes to the VM's cache.
  PromoteResult promote(Gfn base, int level, Hpa page, Pfn external_spt, KvmOp& op);
  // RANGE.UNBLOCK of a range BLOCKed for a merge that will not happen now; a
  // refusal bugs the VM (KVM_BUG_ON: KVM BLOCKed the range itself).
  bool unblock_for_merge(Gfn base, int level, KvmOp& op);

  // The Secure-EPT leaf mapping private `gpa` is PENDING (AUGed, not accepted).
  bool pending(Gpa gpa) const;
  // TDG.MEM.PAGE.ACCEPT by TD vCPU `vcpu`; returns the TDX status.
  // `interrupt`: a host interrupt is pending during the TDCALL.
  seam::Status accept(u32 vcpu, Gpa gpa, TdxLevel level, KvmOp& op, bool interrupt = false);
  // A VM exit / entry of TD vCPU `vcpu` (TD exit, TDH.VP.ENTER).
  void td_exit(KvmOp& op, u32 vcpu);
  void vp_enter(KvmOp& op, u32 vcpu);
  // The VMM stops running the TD's vCPUs (they leave the guest and never
  // enter again): the start of any teardown.
  void stop_vcpus(KvmOp& op);
  // tdx_mmu_release_hkid: VP.FLUSH, VPFLUSHDONE, CACHE.WB, KEY.FREEID, after
  // stop_vcpus. The HKID is released, so removal hooks from now on RECLAIM.
  void release_hkid(KvmOp& op);
  // Teardown, last step (after the mirror root is gone): RECLAIM of the
  // cached and control pages, TDR last with its WBINVD.
  void reclaim_control_pages(KvmOp& op);

  // Private leaves the mirror maps (a 2M leaf counts once).
  u64 mapped_private() const { return mapped_private_; }
  // Mirror leaves set before finalize and not yet PAGE.ADDed (rule 19).
  u64& nr_premapped() { return nr_premapped_; }
  u64 nr_premapped() const { return nr_premapped_; }
  // Sum of content_term(gfn, tag) over the mapped private 4K pages of each
  // 2 MiB region (by gfn >> 9), as they were when mapped or last accepted.
  const std::map<u64, u64>& content_digests() const { return content_digest_; }
  static u64 content_term(Gfn gfn, u64 tag);
  // The status of the last hook the module refused, for error messages.
  const std::string& last_error() const { return last_error_; }
  // external_spt pages leaked because RECLAIM was impossible or failed.
  u64 leaked_pages() const { return leaked_; }
  const seam::TdHandle& handle() const { return handle_; }
  const seam::Td* td() const { return tdx_.td(handle_.tdr); }
  seam::TdxModule& module() { return tdx_; }
  const seam::TdxModule& module() const { return tdx_; }
  // The VM's "kvm.tdx.*" counters (mmu_stats.h).
  u64& seamcalls;
  u64& busy_retries;
  u64& memory_faults;
  u64& kicks;
  u64& removed;
  u64& pamt_adds;
  u64& pamt_removes;
  u64& pamt_cache_topups;
  u64& pamt_cache_pages;
  u64& busy_kicks;
  u64& kmem_cache_pages_;  // the kvm.tdx.kmem_cache_pages gauge

 private:
  // `retry_busy`: loop on TDX_OPERAND_BUSY here (what KVM does for the
  // zap-side leaves); SEPT.ADD and AUG instead fail the fault, which retries.
  seam::Status call(seam::Leaf leaf, seam::SeamcallRegs& r, KvmOp& op, bool retry_busy = true);
  // Rule 20: TRACK under the write mmu_lock, after the previous epoch drained.
  void check_track(const KvmOp& op);
  Hpa control_page(KvmOp& op);
  // The kernel's Dynamic PAMT refcount (PAMT.ADD on 0->1, PAMT.REMOVE on 1->0).
  // `pool`: the pre-allocated pages a 0->1 get must use (under mmu_lock);
  // a pool that runs dry is a rule-21 violation.
  void pamt_get(Hpa hpa, KvmOp& op, std::vector<Hpa>* pool = nullptr);
  void pamt_put(Hpa hpa, KvmOp& op);
  // One pre-allocated page for `what` under mmu_lock; a dry pool allocates
  // and records a rule-21 violation.
  Hpa take_pamt_page(std::vector<Hpa>& pool, const std::string& what);
  std::vector<Hpa>& pamt_pool(u32 cache) { return pamt_cache_.at(pamt_mode_ == PamtCache::Vcpu ? cache : vm_cache()); }
  const std::vector<Hpa>& pamt_pool(u32 cache) const {
    return pamt_cache_.at(pamt_mode_ == PamtCache::Vcpu ? cache : vm_cache());
  }
  // Pages a PAMT cache is topped up to. v6's tdx_topup_external_cache fills
  // PT64_ROOT_MAX_LEVEL pairs whatever the TD's EPT depth (the root needs
  // none, the guest page one); rfc-v5: a pair for the guest page and one per
  // table level below the root. A conversion needs at most two pairs (a
  // DEMOTE at each end of its range), fewer than either. With the
  // kmem_cache only a DEMOTE needs a pair under the lock: one pair.
  size_t pamt_fill_level() const {
    if (pamt_mode_ == PamtCache::KmemCache) return 2;
    return 2 * size_t(sept_at_link() ? PT64_ROOT_MAX_LEVEL : params_.ept_levels);
  }
  // A page for a Secure-EPT table: from the kmem_cache when it has one
  // (its PAMT still installed), else a new page with its PAMT (with the
  // kmem_cache: what the constructor does).
  Hpa sept_page(KvmOp& op);
  // A Secure-EPT page the TD no longer uses: back to the kmem_cache with
  // its PAMT, or its PAMT put and the page freed (the two steps apart for
  // PROMOTE, which hands back its R12/R13 pair in between).
  void release_sept_page(Hpa hpa, KvmOp& op);
  // An S-EPT page that never reached the module (still cached, or refused).
  void release_cached_sept_page(Hpa hpa, KvmOp& op);
  void put_sept_page_pamt(Hpa hpa, KvmOp& op);
  void free_sept_page(Hpa hpa);
  // Freed S-EPT pages go to the kmem_cache (Dynamic PAMT with kmem-cache).
  bool to_kmem_cache() const { return pamt_mode_ == PamtCache::KmemCache && tdx_.pamt().dynamic(); }
  // S-EPT pages in the cache hold no PAMT pair yet (Dynamic PAMT v6).
  bool sept_at_link() const { return sept_pamt_at_link_ && tdx_.pamt().dynamic() && !to_kmem_cache(); }
  // v6: the pair for an S-EPT page about to be handed to the module.
  void get_sept_page_pamt(Hpa hpa, KvmOp& op) {
    if (sept_at_link()) pamt_get(hpa, op, &pamt_pool(cache_of(op)));
  }
  // ... and its release when the module refused the page.
  void unget_sept_page_pamt(Hpa hpa, KvmOp& op) {
    if (sept_at_link()) pamt_put(hpa, op);
  }
  bool reclaim(Hpa hpa, KvmOp& op);
  // tdx_sept_map_nonleaf_spte: SEPT.ADD of the new table's page.
  bool map_nonleaf_spte(Gfn gfn, int level, Pfn external_spt, KvmOp& op);
  // tdx_sept_map_leaf_spte: PAGE.ADD before finalize, AUG after.
  bool map_leaf_spte(Gfn gfn, int level, u64 new_spte, KvmOp& op);
  // tdx_sept_remove_leaf_spte (or, once the HKID is released, tdx_reclaim_page).
  bool remove_leaf_spte(Gfn gfn, int level, u64 old_spte, KvmOp& op);
  bool mem_op(seam::Leaf leaf, Gfn gfn, int level, KvmOp& op);
  bool block_and_track(Gfn gfn, int level, KvmOp& op);
  bool remove_from_td(Gfn gfn, int level, Hpa hpa, KvmOp& op);
  // Adds (sign 1) or subtracts (sign -1) the pages of a leaf to the digests.
  void account_content(Gfn gfn, int level, Hpa hpa, int sign);
  // Records a failed call: its leaf, its address operand (a GPA, or the HPA
  // of a RECLAIM) and the status.
  void fail(const char* leaf, u64 operand, seam::Status s);
  // KVM_BUG_ON / TDX_BUG_ON in kernel function `kernel` (arch/x86/kvm/vmx/tdx.c):
  // the VM is bugged; the reason is last_error_ unless one was set before.
  // Each call adds a line to bug_reports().
  void bug(const char* kernel);
  // tdh_do_no_vcpus: a zap-side SEAMCALL retried once after every vCPU was
  // kicked out with re-entry blocked, when the first try was BUSY.
  seam::Status call_no_vcpus(seam::Leaf leaf, seam::SeamcallRegs& r, KvmOp& op);
  // The TDX global private KeyID that TDH.PHYMEM.PAGE.WBINVD of the TDR
  // names; the modelled module keeps no key table, so any value not the TD's
  // HKID stands for it.
  static constexpr u16 kTdxGlobalKeyId = 0;
  void kick_all(KvmOp& op);
  // TDH.VP.FLUSH of TD vCPU `vcpu` on the LP it last ran on (tdx_flush_vp_on_cpu).
  seam::Status flush_vp(KvmOp& op, u32 vcpu);
  void reenter_all(KvmOp& op);
  seam::Status tdcall_accept(u32 vcpu, Gpa gpa, TdxLevel level, KvmOp& op, bool interrupt);

  seam::TdxModule& tdx_;
  model::PhysMem& mem_;
  seam::PamtRefcount& dpamt_;  // the host's (TdxModule::host_pamt_refcount)
  const u64 dpamt_owner_;      // this TD's holds in it
  // The host refcount, with this TD's holds selected.
  seam::PamtRefcount& dpamt() {
    dpamt_.set_owner(dpamt_owner_);
    return dpamt_;
  }
  TdxVmParams params_;
  seam::TdHandle handle_;
  std::vector<model::Vcpu*> hw_;
  std::vector<u32> vcpu_lp_;  // lp_of
  std::optional<u64> page_add_src_;  // content tag of the PAGE.ADD source, during KVM_TDX_INIT_MEM_REGION
  u64 nr_premapped_ = 0;
  u64 mapped_private_ = 0;
  u64 leaked_ = 0;
  std::map<u64, u64> content_digest_;  // by 2 MiB region (gfn >> 9)
  std::string last_error_;
  std::vector<std::vector<Hpa>> external_spt_cache_;  // per TD vCPU, then the VM's
  std::vector<std::vector<Hpa>> pamt_cache_;          // PAMT page pairs, indexed the same way
  PamtCache pamt_mode_ = PamtCache::Vcpu;
  bool sept_pamt_at_link_ = true;
  std::vector<Hpa> sept_slab_;  // kmem-cache: free S-EPT pages, PAMT kept
  bool finalized_ = false;
  bool torn_down_ = false;
  bool bugged_ = false;
  std::string bug_reason_;
  bool stopped_ = false;            // stop_vcpus: no VP.ENTER any more
  bool wait_for_sept_zap_ = false;  // kvm_tdx->wait_for_sept_zap during call_no_vcpus's retry
  Cycles kick_ipi_ = 0;  // what one kick IPI costs
  Cycles page_alloc_ = 0;  // set_page_alloc_cost
  // The logical processor the next calls name instead of op's vCPU's
  // (CACHE.WB per package, a vCPU's VP.ENTER or VP.FLUSH made for it).
  u32 lp_ = seam::SeamcallTxn::kUnnamedLp;
  // The LP a call made in operation `op` names: lp_ if set, else the LP of
  // op's TD vCPU; an ioctl's runs on the VMM's thread, which is not pinned.
  u32 lp_for(const KvmOp& op) const {
    if (lp_ != seam::SeamcallTxn::kUnnamedLp) return lp_;
    return op.vcpu && op.vcpu->id() < vcpus() ? lp_of(u32(op.vcpu->id())) : seam::SeamcallTxn::kUnnamedLp;
  }
  // Runs `f` with every call naming `lp`.
  template <class F>
  void on_lp(u32 lp, F&& f) {
    lp_ = lp;
    f();
    lp_ = seam::SeamcallTxn::kUnnamedLp;
  }
  bool last_busy_ = false;  // last_busy
  bool wbinvd_per_4k_ = false;    // set_huge_page_calls
  bool demote_no_vcpus_ = false;  // set_huge_page_calls
  bool demote_pamt_lock_ = false;  // set_demote_pamt_lock
  const MmuLock* mmu_lock_ = nullptr;
  Cycles epoch_drained_ = 0;  // when the last TRACK's kick had every vCPU out
  std::vector<std::string> hook_violations_;
  FaultInjector* inject_ = nullptr;
  MmuTracepoints* tp_ = nullptr;
  bool inject(Inject where) { return inject_ && inject_->fire(where); }
  std::vector<std::string> bug_reports_;
  CheckLog* check_log_ = nullptr;
  // --check: the Dynamic PAMT refcount or the TD pages of hpa's 2M region change.
  void note_pamt(Hpa hpa) {
    if (check_log_) check_log_->pamt_regions.push_back(hpa >> 21);
  }
};

}  // namespace septsim::mmu
