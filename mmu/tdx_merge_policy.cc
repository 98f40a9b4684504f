#include "mmu/tdx_merge_policy.h"

#include "model/config.h"

namespace septsim::mmu {

std::unique_ptr<TdxMergePolicy> TdxMergePolicy::create(const std::string& value) {
  if (value == "none") return make_tdx_merge_none();
  if (value == "A" || value == "a") return make_tdx_merge_a();
  if (value == "B" || value == "b") return make_tdx_merge_b();
  if (value == "C" || value == "c") return make_tdx_merge_c();
  throw model::ConfigError("config key 'mmu.tdx_merge_policy': unknown policy '" + value +
                           "' (none, A = NX-recovery scan, B = check on EPT violation, C = BLOCK, PROMOTE on the next "
                           "violation)");
}

}  // namespace septsim::mmu
