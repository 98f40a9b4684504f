// True LRU: a per-way last-use stamp; the smallest stamp is evicted. Declared
// here (not only behind make_lru) so SetAssoc can call it without a virtual
// call: it is the default policy of every array.
#pragma once
#include <vector>

#include "model/tlb/replacement.h"

namespace septsim::model {

class Lru final : public ReplacementPolicy {
 public:
  Lru(u32 sets, u32 ways) : ways_(ways), stamp_(size_t(sets) * ways, 0) {}
  void touch(u32 set, u32 way) override { stamp_[size_t(set) * ways_ + way] = ++clock_; }
  // The lowest way among the oldest. Written without a branch on the
  // stamps, whose order is random: mispredictions dominated TLB fills.
  u32 victim(u32 set) override {
    const u64* s = &stamp_[size_t(set) * ways_];
    u32 best = 0;
    u64 oldest = s[0];
    for (u32 w = 1; w < ways_; ++w) {
      const bool older = s[w] < oldest;
      oldest = older ? s[w] : oldest;
      best = older ? w : best;
    }
    return best;
  }

 private:
  u32 ways_;
  u64 clock_ = 0;          // stamp of the latest touch
  std::vector<u64> stamp_;  // per (set, way): the clock at its last touch
};

}  // namespace septsim::model
