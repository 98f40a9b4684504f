// Tree pseudo-LRU. The tree spans the next power of two of the way count; a
// node bit points at the colder half. Halves that hold no real way (12-way
// arrays) are never chosen.
#include <vector>

#include "model/tlb/replacement.h"

namespace septsim::model {
namespace {

class TreePlru final : public ReplacementPolicy {
 public:
  TreePlru(u32 sets, u32 ways) : ways_(ways) {
    leaves_ = 1;
    while (leaves_ < ways) leaves_ <<= 1;
    bits_.assign(size_t(sets) * leaves_, 0);
  }
  // Walk from the root to the leaf; at every node point away from this way.
  void touch(u32 set, u32 way) override {
    u8* b = &bits_[size_t(set) * leaves_];
    u32 node = 1, lo = 0, span = leaves_;
    while (span > 1) {
      span >>= 1;
      bool right = way >= lo + span;
      b[node] = right ? 0 : 1;  // 1 = the right half is colder
      node = node * 2 + (right ? 1 : 0);
      if (right) lo += span;
    }
  }
  u32 victim(u32 set) override {
    const u8* b = &bits_[size_t(set) * leaves_];
    u32 node = 1, lo = 0, span = leaves_;
    while (span > 1) {
      span >>= 1;
      bool right = b[node] != 0;
      if (right && lo + span >= ways_) right = false;  // that half has no real way
      node = node * 2 + (right ? 1 : 0);
      if (right) lo += span;
    }
    return lo;
  }

 private:
  u32 ways_;
  u32 leaves_;
  std::vector<u8> bits_;  // node i of set s at [s * leaves_ + i], i in 1..leaves_-1
};

}  // namespace

std::unique_ptr<ReplacementPolicy> make_tree_plru(u32 sets, u32 ways) { return std::make_unique<TreePlru>(sets, ways); }

}  // namespace septsim::model
