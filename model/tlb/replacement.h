// Replacement policies for set-associative translation caches, chosen by name
// from the config ("lru", "plru", "random"). Variants live in impl/.
#pragma once
#include <memory>
#include <string>

#include "model/types.h"

namespace septsim::model {

class ReplacementPolicy {
 public:
  virtual ~ReplacementPolicy() = default;
  // A hit on, or a fill of, (set, way).
  virtual void touch(u32 set, u32 way) = 0;
  // The way to evict when every way of `set` is valid.
  virtual u32 victim(u32 set) = 0;

  // Throws ConfigError for an unknown name.
  static std::unique_ptr<ReplacementPolicy> create(const std::string& name, u32 sets, u32 ways, u64 seed);
};

std::unique_ptr<ReplacementPolicy> make_lru(u32 sets, u32 ways);
std::unique_ptr<ReplacementPolicy> make_tree_plru(u32 sets, u32 ways);
std::unique_ptr<ReplacementPolicy> make_random(u32 sets, u32 ways, u64 seed);

}  // namespace septsim::model
