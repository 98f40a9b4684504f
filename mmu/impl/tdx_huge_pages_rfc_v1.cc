// mmu.tdx_huge_pages = rfc-v1: the first TDX huge-page RFC (kvm list, 2024,
// "TDX MMU Part 2" follow-ups; docs/kvm-behaviour.md). An ordinary EPT
// violation still maps 4K; only an ACCEPT of a 2M range that exits with an
// EPT violation maps the range at 2M, and a partial private -> shared
// conversion splits it back (BLOCK, TRACK, DEMOTE).
#include "mmu/spte.h"
#include "mmu/tdx_huge_pages.h"

namespace septsim::mmu {

namespace {

class RfcV1 final : public TdxHugePages {
 public:
  const char* name() const override { return "rfc-v1"; }
  int max_private_level(PrivateFaultCause cause) const override {
    return cause == PrivateFaultCause::Accept2M ? PG_LEVEL_2M : PG_LEVEL_4K;
  }
  bool huge_private_leaves() const override { return true; }
};

}  // namespace

std::unique_ptr<TdxHugePages> make_tdx_huge_pages_rfc_v1() { return std::make_unique<RfcV1>(); }

}  // namespace septsim::mmu
