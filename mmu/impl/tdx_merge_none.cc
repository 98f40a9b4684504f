// mmu.tdx_merge_policy = none: what every kernel does. A split private range
// stays 4K until it is removed; no hook acts.
#include "mmu/tdx_merge_policy.h"

namespace septsim::mmu {

namespace {

class None final : public TdxMergePolicy {
 public:
  const char* name() const override { return "none"; }
};

}  // namespace

std::unique_ptr<TdxMergePolicy> make_tdx_merge_none() { return std::make_unique<None>(); }

}  // namespace septsim::mmu
