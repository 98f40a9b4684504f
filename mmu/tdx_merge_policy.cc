#include "mmu/tdx_merge_policy.h"

#include "model/config.h"

namespace septsim::mmu {

TdxMergePolicy parse_tdx_merge_policy(const std::string& value) {
  if (value == "none") return TdxMergePolicy::None;
  if (value == "A" || value == "a") return TdxMergePolicy::A;
  if (value == "B" || value == "b") return TdxMergePolicy::B;
  if (value == "C" || value == "c") return TdxMergePolicy::C;
  throw model::ConfigError("config key 'mmu.tdx_merge_policy': unknown policy '" + value +
                           "' (none, A = NX-recovery scan, B = check on EPT violation, C = BLOCK, PROMOTE on the next "
                           "violation)");
}

const char* tdx_merge_policy_name(TdxMergePolicy p) {
  switch (p) {
    case TdxMergePolicy::A: return "A";
    case TdxMergePolicy::B: return "B";
    case TdxMergePolicy::C: return "C";
    case TdxMergePolicy::None: break;
  }
  return "none";
}

}  // namespace septsim::mmu
