// The mirror side of merging a split private range (mmu.tdx_merge_policy):
// what KVM can check itself before it asks the TDX module to PROMOTE, and
// the table's replacement by the huge leaf once the module did.
#include <utility>

#include "mmu/tdp_mmu.h"

namespace septsim::mmu {

namespace {

// Bits a huge leaf takes from its children; PAGE.ADD history is per 4K page.
constexpr u64 kMergeCompareMask = ~(SPTE_BASE_ADDR_MASK | SPTE_TDX_PAGE_ADDED);

}  // namespace

const MmuPage* TdpMmu::mirror_table_at(Gfn base, int level) const {
  const MmuPage* mirror = mirror_root();
  if (!mirror) return nullptr;
  for (TdpIter it(mem_, *mirror, level, base); it.valid && it.gfn <= base; it.next()) {
    if (it.level != level) continue;
    if (!is_shadow_present_pte(it.old_spte) || is_last_spte(it.old_spte, level)) return nullptr;
    return sp_of_table(spte_to_pfn(it.old_spte));
  }
  return nullptr;
}

u64 TdpMmu::mirror_merge_leaf(Gfn base, int level) const {
  const MmuPage* sp = mirror_table_at(base, level);
  if (!sp) return 0;
  const int child_level = level - 1;
  const u64 first = sp->spt[0];
  const Pfn pfn0 = spte_to_pfn(first);
  if (!is_present_leaf(first, child_level) || (pfn0 & (pages_per_level(level) - 1))) return 0;
  for (unsigned i = 1; i < kPtesPerTable; ++i) {
    const u64 child = sp->spt[i];
    if (!is_present_leaf(child, child_level) || spte_to_pfn(child) != pfn0 + i * pages_per_level(child_level) ||
        (child & kMergeCompareMask) != (first & kMergeCompareMask))
      return 0;
  }
  return make_huge_spte(first & ~SPTE_TDX_PAGE_ADDED, level);
}

void TdpMmu::collapse_mirror_table(Gfn base, int level, u64 huge_spte) {
  MmuPage* mirror = mirror_root();
  if (!mirror) return;
  for (TdpIter it(mem_, *mirror, level, base); it.valid && it.gfn <= base; it.next()) {
    if (it.level != level || !is_shadow_present_pte(it.old_spte) || is_last_spte(it.old_spte, level)) continue;
    // The table goes without the removal and free hooks.
    ExternalSpt* hooks = std::exchange(ext_, nullptr);
    set_spte(it, huge_spte);
    ext_ = hooks;
    return;
  }
}

}  // namespace septsim::mmu
