// A set-associative array of tagged values with a pluggable replacement
// policy: the building block of the TLBs and the paging-structure caches.
// The set is chosen by `index % sets`; `tag` must identify the entry fully
// (it includes the context). `ways >= entries` gives a fully associative array.
#pragma once
#include <algorithm>
#include <bit>
#include <memory>
#include <string>
#include <vector>

#include "model/tlb/impl/lru.h"
#include "model/tlb/replacement.h"

namespace septsim::model {

template <class V>
class SetAssoc {
 public:
  SetAssoc(u32 entries, u32 ways, const std::string& policy, u64 seed) {
    if (entries == 0) entries = 1;
    ways_ = ways == 0 || ways > entries ? entries : ways;
    sets_ = entries / ways_;
    if (sets_ == 0) sets_ = 1;
    pow2_mask_ = (sets_ & (sets_ - 1)) == 0 ? sets_ - 1 : 0;
    tags_.resize(size_t(sets_) * ways_);
    valid_.resize(tags_.size());
    values_.resize(tags_.size());
    policy_ = ReplacementPolicy::create(policy, sets_, ways_, seed);
    lru_ = dynamic_cast<Lru*>(policy_.get());
  }

  u32 sets() const { return sets_; }
  u32 ways() const { return ways_; }

  // Every geometry of the presets has a power-of-two set count: a mask then
  // replaces the division, which dominated short lookups.
  u32 set_of(u64 index) const { return pow2_mask_ || sets_ == 1 ? u32(index & pow2_mask_) : u32(index % sets_); }

  V* find(u64 index, u64 tag) {
    const u32 set = set_of(index);
    const size_t base = size_t(set) * ways_;
    const u64* t = &tags_[base];
    for (u32 w = 0; w < ways_; ++w)
      if (t[w] == tag && valid_[base + w]) {
        touch(set, w);
        return &values_[base + w];
      }
    return nullptr;
  }

  // Inserts or overwrites; returns true when a valid entry was evicted.
  bool insert(u64 index, u64 tag, const V& value) {
    const u32 set = set_of(index);
    const size_t base = size_t(set) * ways_;
    const u64* t = &tags_[base];
    const u8* v = &valid_[base];
    u32 way = ways_;
    if (ways_ <= 64) [[likely]] {
      // One pass with no dependency from way to way (the two searches below
      // chained a compare through every way): the lowest valid way holding
      // `tag`, else the lowest invalid way.
      u64 match = 0, empty = 0;
      for (u32 w = 0; w < ways_; ++w) {
        match |= u64(t[w] == tag && v[w]) << w;
        empty |= u64(!v[w]) << w;
      }
      if (match)
        way = u32(std::countr_zero(match));
      else if (empty)
        way = u32(std::countr_zero(empty));
    } else {
      for (u32 w = 0; w < ways_ && way == ways_; ++w)
        if (t[w] == tag && v[w]) way = w;
      for (u32 w = 0; w < ways_ && way == ways_; ++w)
        if (!v[w]) way = w;
    }
    bool evicted = false;
    if (way == ways_) {
      way = victim(set);
      evicted = true;
    }
    if (!valid_[base + way]) ++size_;
    tags_[base + way] = tag;
    valid_[base + way] = 1;
    values_[base + way] = value;
    touch(set, way);
    return evicted;
  }

  bool erase(u64 index, u64 tag) {
    const size_t base = size_t(set_of(index)) * ways_;
    for (u32 w = 0; w < ways_; ++w)
      if (tags_[base + w] == tag && valid_[base + w]) {
        invalidate(base + w);
        return true;
      }
    return false;
  }

  // Drops every entry for which pred(tag, value) is true; returns how many.
  template <class Pred>
  size_t erase_if(Pred pred) {
    size_t n = 0;
    for (size_t i = 0; i < tags_.size(); ++i)
      if (valid_[i] && pred(tags_[i], values_[i])) invalidate(i), ++n;
    return n;
  }
  void clear() {
    std::fill(valid_.begin(), valid_.end(), 0);
    size_ = 0;
  }
  template <class Fn>
  void for_each(Fn fn) const {
    for (size_t i = 0; i < tags_.size(); ++i)
      if (valid_[i]) fn(tags_[i], values_[i]);
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  // LRU, the default policy, is called directly (Lru is final): through the
  // vtable a call cost more than the stamp update it makes.
  void touch(u32 set, u32 way) { lru_ ? lru_->touch(set, way) : policy_->touch(set, way); }
  u32 victim(u32 set) { return lru_ ? lru_->victim(set) : policy_->victim(set); }
  void invalidate(size_t slot) {
    valid_[slot] = 0;
    --size_;
  }

  u32 sets_ = 1, ways_ = 1;
  u32 pow2_mask_ = 0;  // sets_ - 1 when sets_ is a power of two
  size_t size_ = 0;    // valid entries
  // Slot s of set i is element i * ways_ + s of each array. Tags live apart
  // from the values so a lookup reads one or two cache lines per set; an
  // invalid slot keeps its stale tag, so a match must also be valid.
  std::vector<u64> tags_;
  std::vector<u8> valid_;
  std::vector<V> values_;
  std::unique_ptr<ReplacementPolicy> policy_;
  Lru* lru_ = nullptr;  // policy_ when it is LRU
};

}  // namespace septsim::model
