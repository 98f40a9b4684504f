// KVM counts page levels from PG_LEVEL_4K = 1 (2 = 2M, 3 = 1G); the TDX
// module counts them from 0 (4K). Every conversion between the two goes
// through this file (KVM: pg_level_to_tdx_sept_level in arch/x86/kvm/vmx/tdx.h).
#pragma once
#include "mmu/spte.h"
#include "model/types.h"
#include "seam/seamcall.h"

namespace septsim::mmu {

// A level as the TDX module names it: 0 = 4K, 1 = 2M, 2 = 1G.
struct TdxLevel {
  int value;
  friend constexpr bool operator==(TdxLevel, TdxLevel) = default;
};

constexpr TdxLevel pg_level_to_tdx_sept_level(int pg_level) { return TdxLevel{pg_level - 1}; }
constexpr int tdx_sept_level_to_pg_level(TdxLevel level) { return level.value + 1; }

// RCX of a Secure-EPT SEAMCALL for KVM's (gfn, level): the GPA and the TDX level.
constexpr u64 sept_page_info(Gfn gfn, int pg_level) {
  return seam::page_info(gfn_to_gpa(gfn), pg_level_to_tdx_sept_level(pg_level).value);
}

static_assert(pg_level_to_tdx_sept_level(PG_LEVEL_4K) == TdxLevel{0});
static_assert(tdx_sept_level_to_pg_level(TdxLevel{1}) == PG_LEVEL_2M);
static_assert(sept_page_info(Gfn{0x200}, PG_LEVEL_2M) == (0x200000ull | 1));

}  // namespace septsim::mmu
