#include "model/tlb/replacement.h"

#include "model/config.h"

namespace septsim::model {

std::unique_ptr<ReplacementPolicy> ReplacementPolicy::create(const std::string& name, u32 sets, u32 ways, u64 seed) {
  if (name == "lru") return make_lru(sets, ways);
  if (name == "plru" || name == "tree-plru") return make_tree_plru(sets, ways);
  if (name == "random") return make_random(sets, ways, seed);
  throw ConfigError("unknown replacement policy '" + name + "' (known: lru, plru, random)");
}

}  // namespace septsim::model
