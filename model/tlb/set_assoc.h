// A set-associative array of tagged values with a pluggable replacement
// policy: the building block of the TLBs and the paging-structure caches.
// The set is chosen by `index % sets`; `tag` must identify the entry fully
// (it includes the context). `ways >= entries` gives a fully associative array.
#pragma once
#include <memory>
#include <string>
#include <vector>

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
    slots_.resize(size_t(sets_) * ways_);
    policy_ = ReplacementPolicy::create(policy, sets_, ways_, seed);
  }

  u32 sets() const { return sets_; }
  u32 ways() const { return ways_; }

  // Every geometry of the presets has a power-of-two set count: a mask then
  // replaces the division, which dominated short lookups.
  u32 set_of(u64 index) const { return pow2_mask_ || sets_ == 1 ? u32(index & pow2_mask_) : u32(index % sets_); }

  V* find(u64 index, u64 tag) {
    u32 set = set_of(index);
    Slot* s = &slots_[size_t(set) * ways_];
    for (u32 w = 0; w < ways_; ++w)
      if (s[w].valid && s[w].tag == tag) {
        policy_->touch(set, w);
        return &s[w].value;
      }
    return nullptr;
  }

  // Inserts or overwrites; returns true when a valid entry was evicted.
  bool insert(u64 index, u64 tag, const V& value) {
    u32 set = set_of(index);
    Slot* s = &slots_[size_t(set) * ways_];
    u32 way = ways_;
    for (u32 w = 0; w < ways_ && way == ways_; ++w)
      if (s[w].valid && s[w].tag == tag) way = w;
    for (u32 w = 0; w < ways_ && way == ways_; ++w)
      if (!s[w].valid) way = w;
    bool evicted = false;
    if (way == ways_) {
      way = policy_->victim(set);
      evicted = true;
    }
    s[way] = Slot{tag, true, value};
    policy_->touch(set, way);
    return evicted;
  }

  bool erase(u64 index, u64 tag) {
    Slot* s = &slots_[size_t(set_of(index)) * ways_];
    for (u32 w = 0; w < ways_; ++w)
      if (s[w].valid && s[w].tag == tag) {
        s[w].valid = false;
        return true;
      }
    return false;
  }

  // Drops every entry for which pred(tag, value) is true; returns how many.
  template <class Pred>
  size_t erase_if(Pred pred) {
    size_t n = 0;
    for (auto& s : slots_)
      if (s.valid && pred(s.tag, s.value)) s.valid = false, ++n;
    return n;
  }
  void clear() {
    for (auto& s : slots_) s.valid = false;
  }
  template <class Fn>
  void for_each(Fn fn) const {
    for (const auto& s : slots_)
      if (s.valid) fn(s.tag, s.value);
  }
  size_t size() const {
    size_t n = 0;
    for (const auto& s : slots_) n += s.valid;
    return n;
  }

 private:
  struct Slot {
    u64 tag = 0;
    bool valid = false;
    V value{};
  };
  u32 sets_ = 1, ways_ = 1;
  u32 pow2_mask_ = 0;  // sets_ - 1 when sets_ is a power of two
  std::vector<Slot> slots_;
  std::unique_ptr<ReplacementPolicy> policy_;
};

}  // namespace septsim::model
