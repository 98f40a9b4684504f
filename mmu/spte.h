// KVM's SPTE format for EPT (arch/x86/kvm/mmu/spte.h): hardware EPT bits plus KVM's
// software bits (11 = MMU-present, 57 = host-writable, 58 = MMU-writable,
// 52-53 = A/D type), and the constructors make_spte / make_nonleaf_spte /
// make_small_spte / make_huge_spte.
#pragma once
#include "model/ept.h"
#include "model/types.h"

namespace septsim::mmu {

constexpr u64 SPTE_MMU_PRESENT_MASK = ept::kSoftware11;
constexpr u64 SHADOW_NONPRESENT_VALUE = ept::kSuppressVe;
constexpr u64 FROZEN_SPTE = SHADOW_NONPRESENT_VALUE | 0x5a0;
constexpr u64 SPTE_TDP_AD_MASK = 3ull << 52;
constexpr u64 SPTE_TDP_AD_DISABLED = 1ull << 52;
constexpr u64 EPT_SPTE_HOST_WRITABLE = 1ull << 57;
constexpr u64 EPT_SPTE_MMU_WRITABLE = 1ull << 58;
// Model-only software-available bit of a mirror leaf: the page came in by
// TDH.MEM.PAGE.ADD (the initial image) rather than AUG.
constexpr u64 SPTE_TDX_PAGE_ADDED = 1ull << 60;
constexpr u64 SPTE_BASE_ADDR_MASK = ept::kAddrMask;
constexpr u64 PT_WRITABLE_MASK = ept::kWrite;
constexpr u64 PT_PAGE_SIZE_MASK = ept::kLarge;

// kvm_mmu_set_ept_masks() on a CPU with execute-only support.
constexpr u64 shadow_present_mask = ept::kSuppressVe;
constexpr u64 shadow_user_mask = ept::kRead;
constexpr u64 shadow_x_mask = ept::kExec;
constexpr u64 shadow_accessed_mask = ept::kAccessed;
constexpr u64 shadow_dirty_mask = ept::kDirty;
constexpr u64 shadow_memtype_wb = ept::kMemTypeWb << ept::kMemTypeShift;

constexpr bool is_shadow_present_pte(u64 spte) { return (spte & SPTE_MMU_PRESENT_MASK) != 0; }
constexpr bool is_large_pte(u64 spte) { return (spte & PT_PAGE_SIZE_MASK) != 0; }
constexpr bool is_last_spte(u64 spte, int level) { return level == PG_LEVEL_4K || is_large_pte(spte); }
constexpr bool is_writable_pte(u64 spte) { return (spte & PT_WRITABLE_MASK) != 0; }
constexpr bool is_mmu_writable_spte(u64 spte) { return (spte & EPT_SPTE_MMU_WRITABLE) != 0; }
constexpr bool is_host_writable_spte(u64 spte) { return (spte & EPT_SPTE_HOST_WRITABLE) != 0; }
constexpr bool is_dirty_spte(u64 spte) { return (spte & shadow_dirty_mask) != 0; }
constexpr bool is_frozen_spte(u64 spte) { return spte == FROZEN_SPTE; }
constexpr bool spte_ad_enabled(u64 spte) { return (spte & SPTE_TDP_AD_MASK) != SPTE_TDP_AD_DISABLED; }
constexpr Pfn spte_to_pfn(u64 spte) { return (spte & SPTE_BASE_ADDR_MASK) >> kPageShift; }
constexpr bool is_present_leaf(u64 spte, int level) { return is_shadow_present_pte(spte) && is_last_spte(spte, level); }

// check_spte_writable_invariants: W => MMU-writable => host-writable.
constexpr bool spte_writable_invariants_hold(u64 spte) {
  if (is_writable_pte(spte) && !is_mmu_writable_spte(spte)) return false;
  return !is_mmu_writable_spte(spte) || is_host_writable_spte(spte);
}

// Clearing MMU-writable is a protection reduction that needs a remote flush;
// clearing only W (dirty logging) is flushed by the caller of the wrprot walk.
constexpr bool leaf_spte_change_needs_tlb_flush(u64 old_spte, u64 new_spte) {
  return is_mmu_writable_spte(old_spte) && !is_mmu_writable_spte(new_spte);
}

// A leaf for `pfn` at `level` with pte_access ACC_ALL. `host_writable` false
// (read-only memslot) drops W and MMU-writable. A writable SPTE is created
// dirty when A/D bits are in use, as KVM does.
constexpr u64 make_spte(int level, Pfn pfn, bool host_writable, bool ad_enabled) {
  u64 spte = SPTE_MMU_PRESENT_MASK | shadow_present_mask | shadow_user_mask | shadow_x_mask | shadow_memtype_wb;
  spte |= ad_enabled ? shadow_accessed_mask : SPTE_TDP_AD_DISABLED;
  if (level > PG_LEVEL_4K) spte |= PT_PAGE_SIZE_MASK;
  spte |= pfn << kPageShift;
  if (host_writable) {
    spte |= EPT_SPTE_HOST_WRITABLE | PT_WRITABLE_MASK | EPT_SPTE_MMU_WRITABLE;
    if (ad_enabled) spte |= shadow_dirty_mask;
  }
  return spte;
}

constexpr u64 make_nonleaf_spte(Pfn child_pt, bool ad_disabled) {
  return (child_pt << kPageShift) | shadow_present_mask | PT_WRITABLE_MASK | shadow_user_mask | shadow_x_mask |
         (ad_disabled ? SPTE_TDP_AD_DISABLED : shadow_accessed_mask) | SPTE_MMU_PRESENT_MASK;
}

// Child `index` of a split of `huge_spte` into leaves at `child_level`.
constexpr u64 make_small_spte(u64 huge_spte, int child_level, unsigned index) {
  u64 child = huge_spte;
  if (child_level == PG_LEVEL_4K) child &= ~PT_PAGE_SIZE_MASK;
  Pfn pfn = spte_to_pfn(huge_spte) + index * pages_per_level(child_level);
  return (child & ~SPTE_BASE_ADDR_MASK) | (pfn << kPageShift);
}

constexpr u64 make_huge_spte(u64 small_spte, int level) {
  u64 huge = small_spte | PT_PAGE_SIZE_MASK;
  return huge & ~((pages_per_level(level) - 1) << kPageShift);
}

static_assert(make_small_spte(make_spte(PG_LEVEL_2M, 0x200, true, true), PG_LEVEL_4K, 3) ==
              make_spte(PG_LEVEL_4K, 0x203, true, true));
static_assert(make_huge_spte(make_spte(PG_LEVEL_4K, 0x203, true, true), PG_LEVEL_2M) ==
              make_spte(PG_LEVEL_2M, 0x200, true, true));
// The decoded TDX shared leaf of a real TD (pfn 0x80a5669, RWX, WB, A, D).
static_assert(make_spte(PG_LEVEL_4K, 0x80a5669, true, true) == 0x86000080a5669b37ull);

}  // namespace septsim::mmu
