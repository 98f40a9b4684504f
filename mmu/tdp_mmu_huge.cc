// In-place huge-page split and recovery (tdp_mmu.c: tdp_mmu_split_huge_pages_root, kvm_tdp_mmu_recover_huge_pages).
#include <algorithm>

#include "mmu/memslot.h"
#include "mmu/tdp_mmu.h"

namespace septsim::mmu {

void TdpMmu::split_huge_page(TdpIter& iter, MmuPage* sp) {
  // The new table is unreachable until linked, and the translation does not
  // change, so no flush is needed.
  int child_level = iter.level - 1;
  for (unsigned i = 0; i < kPtesPerTable; ++i) sp->spt[i] = make_small_spte(iter.old_spte, child_level, i);
  op_.spent += kPtesPerTable * timing_.spte_write;
  stats_.update_page_stats(child_level, kPtesPerTable);
  u64 huge_spte = iter.old_spte;
  link_sp(iter, sp);
  ++stats_.split_huge_page;
  if (tp_) tp_->kvm_mmu_split_huge_page(iter.gfn, huge_spte, iter.level, 0);
}

void TdpMmu::split_huge_pages(Gfn start, Gfn end, int target_level) {
  for (MmuPage* root : roots_) {
    if (root->role.invalid || root->role.is_mirror) continue;
    // Pre-order with min_level above the target: children of a split are
    // visited next and split further.
    for (TdpIter iter(mem_, *root, target_level + 1, start); iter.valid && iter.gfn < end; iter.next()) {
      if (!is_shadow_present_pte(iter.old_spte) || !is_large_pte(iter.old_spte)) continue;
      MmuPage* sp = alloc_sp();
      init_child_sp(sp, iter);
      split_huge_page(iter, sp);
    }
  }
}

// tdp_mmu_make_huge_spte: a huge leaf built from the first present leaf
// under the table at `iter`.
bool TdpMmu::make_huge_spte_from_child(const TdpIter& iter, u64* huge_spte) {
  const MmuPage* child = sp_of_table(spte_to_pfn(iter.old_spte));
  Gfn end = iter.gfn + pages_per_level(iter.level);
  for (TdpIter it(mem_, *child, PG_LEVEL_4K, iter.gfn); it.valid && it.gfn < end; it.next()) {
    if (!is_present_leaf(it.old_spte, it.level)) continue;
    *huge_spte = make_huge_spte(it.old_spte, iter.level);
    return true;
  }
  return false;
}

bool TdpMmu::recover_huge_pages(const Memslot& slot, int max_huge_level) {
  bool flush = false;
  int max_level = std::min(max_huge_level, int(PG_LEVEL_1G));
  for (MmuPage* root : roots_) {
    if (root->role.invalid || root->role.is_mirror) continue;
    for (TdpIter iter(mem_, *root, PG_LEVEL_2M, slot.base_gfn); iter.valid && iter.gfn < slot.end_gfn(); iter.next()) {
      if (iter.level > PG_LEVEL_1G || !is_shadow_present_pte(iter.old_spte)) continue;
      if (iter.gfn < slot.base_gfn || iter.gfn + pages_per_level(iter.level) > slot.end_gfn()) continue;
      if (is_last_spte(iter.old_spte, iter.level)) continue;
      if (kvm_mmu_max_mapping_level(slot, iter.gfn, max_level) < iter.level) continue;
      u64 huge_spte;
      if (!make_huge_spte_from_child(iter, &huge_spte)) continue;
      set_spte(iter, huge_spte);
      ++stats_.recover_huge_page;
      flush = true;
    }
  }
  return flush;
}

}  // namespace septsim::mmu
