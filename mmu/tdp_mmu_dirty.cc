// Write-protection and D-bit clearing for dirty logging (tdp_mmu.c: kvm_tdp_mmu_wrprot_slot, kvm_tdp_mmu_clear_dirty_slot).
#include <bit>

#include "mmu/memslot.h"
#include "mmu/tdp_mmu.h"

namespace septsim::mmu {

bool TdpMmu::wrprot_gfn_range(Gfn start, Gfn end, int min_level) {
  bool spte_set = false;
  for (MmuPage* root : roots_) {
    if (root->role.invalid || root->role.is_mirror) continue;
    for (TdpIter iter(mem_, *root, min_level, start); iter.valid && iter.gfn < end; iter.next()) {
      if (!is_present_leaf(iter.old_spte, iter.level) || !is_writable_pte(iter.old_spte)) continue;
      // MMU-writable stays set, so fast_page_fault can restore W.
      set_spte(iter, iter.old_spte & ~PT_WRITABLE_MASK);
      spte_set = true;
    }
  }
  return spte_set;
}

bool TdpMmu::clear_dirty_gfn_range(Gfn start, Gfn end) {
  bool spte_set = false;
  for (MmuPage* root : roots_) {
    if (root->role.invalid || root->role.is_mirror) continue;
    for (TdpIter iter(mem_, *root, PG_LEVEL_4K, start); iter.valid && iter.gfn < end; iter.next()) {
      if (!is_present_leaf(iter.old_spte, iter.level) || !is_dirty_spte(iter.old_spte)) continue;
      set_spte(iter, iter.old_spte & ~shadow_dirty_mask);
      spte_set = true;
    }
  }
  return spte_set;
}

bool TdpMmu::clear_dirty_pt_masked(Gfn base, u64 mask, bool wrprot) {
  bool spte_set = false;
  const u64 dbit = wrprot ? PT_WRITABLE_MASK : shadow_dirty_mask;
  for (MmuPage* root : roots_) {
    if (root->role.invalid || root->role.is_mirror) continue;
    u64 left = mask;
    Gfn start = base + unsigned(std::countr_zero(mask));
    for (TdpIter iter(mem_, *root, PG_LEVEL_4K, start); iter.valid && iter.gfn < base + 64 && left; iter.next()) {
      if (iter.level > PG_LEVEL_4K || !is_present_leaf(iter.old_spte, iter.level)) continue;
      u64 bit = 1ull << (iter.gfn - base);
      if (!(left & bit)) continue;
      left &= ~bit;
      if (!(iter.old_spte & dbit)) continue;
      set_spte(iter, iter.old_spte & ~dbit);
      spte_set = true;
    }
  }
  return spte_set;
}

void TdpMmu::harvest_dirty_bits(Memslot& slot) {
  for (MmuPage* root : roots_) {
    if (root->role.invalid || root->role.is_mirror) continue;
    for (TdpIter iter(mem_, *root, PG_LEVEL_4K, slot.base_gfn); iter.valid && iter.gfn < slot.end_gfn(); iter.next())
      if (iter.level == PG_LEVEL_4K && is_present_leaf(iter.old_spte, iter.level) && is_dirty_spte(iter.old_spte))
        slot.mark_page_dirty(iter.gfn);
  }
}

}  // namespace septsim::mmu
