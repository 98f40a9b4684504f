// The TDP MMU (arch/x86/kvm/mmu/tdp_mmu.c): roots with tdp_mmu_root_count,
// MmuPage allocation, the fault-time map, zaps, in-place split and recovery,
// write-protection and dirty clearing. Everything runs under what would be
// mmu_lock in KVM; the model is single-threaded, so SPTE writes are plain
// stores. Operations that need a remote TLB flush return true (the caller
// owns the vCPUs and flushes), as KVM's do.
//
// A TD's mirror root (role.is_mirror) is changed through the same paths;
// each change is propagated to the Secure-EPT through ExternalSpt while the
// mirror entry holds FROZEN_SPTE (tdp_mmu_mirror.cc). Dirty logging, split,
// recovery and fast zap leave mirror roots alone.
#pragma once
#include <deque>
#include <string>
#include <vector>

#include "mmu/check_log.h"
#include "mmu/external_spt.h"
#include "mmu/fault_inject.h"
#include "mmu/frozen_spte.h"
#include "mmu/mmu_page.h"
#include "mmu/mmu_stats.h"
#include "mmu/page_fault.h"
#include "mmu/tdp_iter.h"
#include "mmu/tracepoints.h"
#include "mmu/zap_history.h"
#include "model/phys_mem.h"
#include "model/timing.h"

namespace septsim::mmu {

struct Memslot;

// enum kvm_tdp_mmu_root_types: which roots a walk visits.
enum KvmRootTypes : u8 {
  KVM_INVALID_ROOTS = 1 << 0,
  KVM_DIRECT_ROOTS = 1 << 1,
  KVM_MIRROR_ROOTS = 1 << 2,
  KVM_VALID_ROOTS = KVM_DIRECT_ROOTS | KVM_MIRROR_ROOTS,
  KVM_ALL_ROOTS = KVM_VALID_ROOTS | KVM_INVALID_ROOTS,
};

class TdpMmu {
 public:
  // Host cycles of SPTE writes and table allocations are charged to `op`,
  // the KVM operation in progress, which the mirror's hooks also receive.
  TdpMmu(model::PhysMem& mem, const model::Timing& timing, MmuStats& stats, KvmOp& op);
  ~TdpMmu();  // kvm_mmu_uninit_tdp_mmu: frees every root and table
  TdpMmu(const TdpMmu&) = delete;
  TdpMmu& operator=(const TdpMmu&) = delete;

  // kvm_tdp_mmu_alloc_root: a valid root with this role gets another
  // reference; otherwise a new root starts with two (caller + TDP MMU).
  MmuPage* alloc_root(MmuPageRole role);
  // kvm_tdp_mmu_put_root: the last put frees the (invalid) root.
  void put_root(MmuPage* root);
  // kvm_tdp_mmu_invalidate_roots and kvm_tdp_mmu_zap_invalidated_roots: no
  // flush, see kvm_mmu_zap_all_fast. Only VM teardown passes KVM_MIRROR_ROOTS.
  void invalidate_roots(KvmRootTypes types = KVM_DIRECT_ROOTS);
  void zap_invalidated_roots();
  const std::vector<MmuPage*>& roots() const { return roots_; }
  // Leaf and table changes are reported to `h` (memslot-flush accounting).
  void set_zap_history(ZapHistory* h) { history_ = h; }
  // Every SPTE change is also noted in `log` (--check; nullptr: off).
  void set_check_log(CheckLog* log) { check_log_ = log; }

  // page_private(): the MmuPage of a table page, nullptr if none.
  MmuPage* sp_of_table(Pfn pfn) const {
    if (!mem_.is_allocated(pfn)) return nullptr;
    u32 idx = mem_.owner(pfn);
    return idx ? const_cast<MmuPage*>(&sps_[idx]) : nullptr;
  }
  u64 nr_sps() const { return sps_.size() - 1 - free_sps_.size(); }

  // Where the MMU's tracepoints go (nullptr: nowhere).
  void set_tracepoints(MmuTracepoints* tp) { tp_ = tp; }
  MmuTracepoints* tracepoints() const { return tp_; }

  // kvm_tdp_mmu_map; sets *flush when a remote flush is due.
  int map(MmuPage& root, KvmPageFault& fault, bool* flush);
  // kvm_tdp_mmu_fast_pf_get_last_sptep: the deepest SPTE reached for gfn.
  u64* fast_pf_get_last_sptep(const MmuPage& root, Gfn gfn, u64* spte, int* level);

  // kvm_tdp_mmu_zap_leafs over the roots of `types` (a conversion's
  // attr_filter), invalid ones always included.
  bool zap_leafs(Gfn start, Gfn end, bool flush, KvmRootTypes types = KVM_ALL_ROOTS);
  // The rest walk valid roots only.
  // tdp_mmu_split_huge_pages_root (eager split); needs no flush.
  void split_huge_pages(Gfn start, Gfn end, int target_level);
  // kvm_tdp_mmu_wrprot_slot: clear W on leaves at or above min_level.
  bool wrprot_gfn_range(Gfn start, Gfn end, int min_level);
  // kvm_tdp_mmu_clear_dirty_slot: clear D (PML).
  bool clear_dirty_gfn_range(Gfn start, Gfn end);
  // kvm_tdp_mmu_clear_dirty_pt_masked: clear W (or D) on the 4K leaves of a
  // 64-page mask starting at base.
  bool clear_dirty_pt_masked(Gfn base, u64 mask, bool wrprot);
  // Marks in the slot's bitmap every 4K leaf whose D bit the CPU has set:
  // what flushing the PML buffers reports.
  void harvest_dirty_bits(Memslot& slot);
  // kvm_tdp_mmu_recover_huge_pages: replace a table by a huge leaf in place
  // wherever the max mapping level allows.
  bool recover_huge_pages(const Memslot& slot, int max_huge_level);

  // Splits the mirror's huge leaf covering gfn (the only present -> present
  // mirror change, done through split_external_spt), taking the new
  // table's external_spt from cache `cache`. True when there was nothing to
  // split or the split happened.
  bool split_mirror_huge_page(Gfn gfn, u32 cache);

  // The valid mirror root, if the VM is a TD.
  MmuPage* mirror_root() const;
  // The mirror table linked by the entry at (base, level), if that entry is
  // a table.
  const MmuPage* mirror_table_at(Gfn base, int level) const;
  // What KVM checks before a PROMOTE of the range at (base, level): the
  // entry is a table whose 512 children are present leaves of one
  // contiguous, aligned host range with equal attributes. Returns the huge
  // leaf to install, or 0 when the range is not ready.
  u64 mirror_merge_leaf(Gfn base, int level) const;
  // After a successful PROMOTE: the table becomes `huge_spte` without
  // calling the hooks (the module already changed the Secure-EPT and handed
  // the table's external_spt page back).
  void collapse_mirror_table(Gfn base, int level, u64 huge_spte);

  // The TD's hooks (kvm_x86_ops.*_external_*); null for a normal VM and
  // once the TD is gone.
  void set_external_spt(ExternalSpt* ext) { ext_ = ext; }
  ExternalSpt* external_spt() const { return ext_; }
  // Several initiators whose clocks may be `skew` apart race for mirror
  // entries: each install's FROZEN_SPTE window is kept (frozen_spte.h).
  void set_race_skew(Cycles skew) { frozen_.set_skew(skew); }
  // When the mirror entry op's private fault at (gfn, level) would cmpxchg
  // stops being FROZEN_SPTE, or 0 when it is not frozen for op (another
  // vCPU's install the model ran first, whose hook op's fault overlaps).
  Cycles frozen_until(Gfn gfn, int level) const { return frozen_.empty() ? 0 : frozen_until_slow(gfn, level); }
  // debug.inject (mmu/fault_inject.h); null: never.
  void set_injector(FaultInjector* f) { inject_ = f; }
  // Refused changes of mirror entries that KVM would KVM_BUG_ON (rule 17:
  // present -> present), one line each.
  const std::vector<std::string>& mirror_bugs() const { return mirror_bugs_; }
  // Inconsistencies of the MMU's own structures it survived (a freed table
  // still linked, a leaf whose pfn changed in place, a valid root's last
  // reference dropped), one line each: rule internal.
  const std::vector<std::string>& internal_errors() const { return internal_errors_; }

 private:
  MmuPage* alloc_sp();
  void free_sp(MmuPage* sp);
  void init_child_sp(MmuPage* sp, const TdpIter& iter) const;
  // False when a mirror hook refused: the entry keeps its old value.
  bool set_spte(TdpIter& iter, u64 new_spte);
  bool propagate_to_external(TdpIter& iter, u64 new_spte);
  Cycles frozen_until_slow(Gfn gfn, int level) const;
  void remove_external_children(MmuPage& sp, unsigned index, u64 old_spte);
  bool link_mirror_sp(TdpIter& iter, MmuPage* sp, const KvmPageFault& fault);
  static bool walks_root(const MmuPage& root, KvmRootTypes types);
  void handle_changed_spte(Gfn gfn, u64 old_spte, u64 new_spte, int level);
  void handle_removed_pt(Pfn pt);
  bool link_sp(TdpIter& iter, MmuPage* sp);
  void split_huge_page(TdpIter& iter, MmuPage* sp);
  int map_handle_target_level(TdpIter& iter, KvmPageFault& fault, bool* flush);
  bool make_huge_spte_from_child(const TdpIter& iter, u64* huge_spte);
  void zap_root(MmuPage* root);

  model::PhysMem& mem_;
  const model::Timing& timing_;
  MmuStats& stats_;
  KvmOp& op_;  // the operation in progress (Kvm::Impl::op)
  std::deque<MmuPage> sps_;  // [0] unused: owner cookie 0 means "no MmuPage"
  std::vector<u32> free_sps_;
  std::vector<MmuPage*> roots_;  // allocation order
  MmuTracepoints* tp_ = nullptr;  // tracepoint sink, if attached
  ExternalSpt* ext_ = nullptr;
  std::vector<std::string> mirror_bugs_;
  std::vector<std::string> internal_errors_;
  ZapHistory* history_ = nullptr;
  FaultInjector* inject_ = nullptr;
  CheckLog* check_log_ = nullptr;
  FrozenSptes frozen_;
  void note_change(Gfn gfn, int level, u64 old_spte, u64 new_spte);
};

}  // namespace septsim::mmu
