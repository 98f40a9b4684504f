// mmu.tdx_huge_pages = off: the merged kernel. tdx_gmem_max_mapping_level
// answers PG_LEVEL_4K for every private pfn, and the mirror's set hook
// (tdx_sept_map_leaf_spte) refuses any other level with KVM_BUG_ON. A 2M
// ACCEPT therefore finds a 4K mapping and the guest falls back to 4K.
#include "mmu/spte.h"
#include "mmu/tdx_huge_pages.h"

namespace septsim::mmu {

namespace {

class Off final : public TdxHugePages {
 public:
  const char* name() const override { return "off"; }
  int max_private_level(PrivateFaultCause) const override { return PG_LEVEL_4K; }
  bool huge_private_leaves() const override { return false; }
  AcceptExit accept_exit() const override { return AcceptExit::FaultOnly; }
  bool wbinvd_per_4k_piece() const override { return false; }
  bool demote_busy_kicks_vcpus() const override { return false; }
};

}  // namespace

std::unique_ptr<TdxHugePages> make_tdx_huge_pages_off() { return std::make_unique<Off>(); }

}  // namespace septsim::mmu
