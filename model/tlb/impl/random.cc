// Seeded random replacement: the same seed gives the same victims.
#include <random>

#include "model/tlb/replacement.h"

namespace septsim::model {
namespace {

class RandomReplacement final : public ReplacementPolicy {
 public:
  RandomReplacement(u32 ways, u64 seed) : ways_(ways), rng_(seed) {}
  void touch(u32, u32) override {}
  u32 victim(u32) override { return u32(rng_() % ways_); }

 private:
  u32 ways_;
  std::mt19937_64 rng_;
};

}  // namespace

std::unique_ptr<ReplacementPolicy> make_random(u32 sets, u32 ways, u64 seed) {
  return std::make_unique<RandomReplacement>(ways, seed);
}

}  // namespace septsim::model
