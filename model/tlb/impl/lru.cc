#include "model/tlb/impl/lru.h"

namespace septsim::model {

std::unique_ptr<ReplacementPolicy> make_lru(u32 sets, u32 ways) { return std::make_unique<Lru>(sets, ways); }

}  // namespace septsim::model
