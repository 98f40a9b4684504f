// The TDP MMU (kvm-mmu.md 2, 4.5, 5, 6): roots with tdp_mmu_root_count,
// MmuPage allocation, the fault-time map, zaps, in-place split and recovery,
// write-protection and dirty clearing. Everything runs under what would be
// mmu_lock in KVM; the model is single-threaded, so SPTE writes are plain
// stores and FROZEN_SPTE never appears. Operations that need a remote TLB
// flush return true (the caller owns the vCPUs and flushes), as KVM's do.
#pragma once
#include <deque>
#include <vector>

#include "mmu/mmu_page.h"
#include "mmu/mmu_stats.h"
#include "mmu/page_fault.h"
#include "mmu/tdp_iter.h"
#include "mmu/zap_history.h"
#include "model/phys_mem.h"
#include "model/timing.h"

namespace septsim::mmu {

struct Memslot;

class TdpMmu {
 public:
  // Host cycles of SPTE writes and table allocations are added to `spent`.
  TdpMmu(model::PhysMem& mem, const model::Timing& timing, MmuStats& stats, Cycles& spent);
  ~TdpMmu();  // kvm_mmu_uninit_tdp_mmu: frees every root and table
  TdpMmu(const TdpMmu&) = delete;
  TdpMmu& operator=(const TdpMmu&) = delete;

  // kvm_tdp_mmu_alloc_root: a valid root with this role gets another
  // reference; otherwise a new root starts with two (caller + TDP MMU).
  MmuPage* alloc_root(MmuPageRole role);
  // kvm_tdp_mmu_put_root: the last put frees the (invalid) root.
  void put_root(MmuPage* root);
  // kvm_tdp_mmu_invalidate_roots(KVM_DIRECT_ROOTS) and
  // kvm_tdp_mmu_zap_invalidated_roots: no flush, see kvm_mmu_zap_all_fast.
  void invalidate_roots();
  void zap_invalidated_roots();
  const std::vector<MmuPage*>& roots() const { return roots_; }
  // Leaf and table changes are reported to `h` (memslot-flush accounting).
  void set_zap_history(ZapHistory* h) { history_ = h; }

  // page_private(): the MmuPage of a table page, nullptr if none.
  MmuPage* sp_of_table(Pfn pfn) const {
    if (!mem_.is_allocated(pfn)) return nullptr;
    u32 idx = mem_.owner(pfn);
    return idx ? const_cast<MmuPage*>(&sps_[idx]) : nullptr;
  }
  u64 nr_sps() const { return sps_.size() - 1 - free_sps_.size(); }

  // kvm_tdp_mmu_map; sets *flush when a remote flush is due.
  int map(MmuPage& root, KvmPageFault& fault, bool* flush);
  // kvm_tdp_mmu_fast_pf_get_last_sptep: the deepest SPTE reached for gfn.
  u64* fast_pf_get_last_sptep(const MmuPage& root, Gfn gfn, u64* spte, int* level);

  // kvm_tdp_mmu_zap_leafs: over every root, invalid ones included.
  bool zap_leafs(Gfn start, Gfn end, bool flush);
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

 private:
  MmuPage* alloc_sp();
  void free_sp(MmuPage* sp);
  void init_child_sp(MmuPage* sp, const TdpIter& iter) const;
  void set_spte(TdpIter& iter, u64 new_spte);
  void handle_changed_spte(Gfn gfn, u64 old_spte, u64 new_spte, int level);
  void handle_removed_pt(Pfn pt);
  void link_sp(TdpIter& iter, MmuPage* sp);
  void split_huge_page(TdpIter& iter, MmuPage* sp);
  int map_handle_target_level(TdpIter& iter, KvmPageFault& fault, bool* flush);
  bool make_huge_spte_from_child(const TdpIter& iter, u64* huge_spte);
  void zap_root(MmuPage* root);

  model::PhysMem& mem_;
  const model::Timing& timing_;
  MmuStats& stats_;
  Cycles& spent_;
  std::deque<MmuPage> sps_;  // [0] unused: owner cookie 0 means "no MmuPage"
  std::vector<u32> free_sps_;
  std::vector<MmuPage*> roots_;  // allocation order
  ZapHistory* history_ = nullptr;
};

}  // namespace septsim::mmu
