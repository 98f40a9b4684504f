// The private 2M ranges a split left as tables of 4K leaves, oldest first:
// the merge policies' work list, kept like KVM's possible_nx_huge_pages
// (mmu.c: possible_nx_huge_pages). Ordered containers only, so every scan is deterministic.
#pragma once
#include <map>
#include <optional>

#include "mmu/spte.h"
#include "model/types.h"

namespace septsim::mmu {

// The 2M range (its first gfn) that holds `gfn`.
inline Gfn split_range_base(Gfn gfn) { return gfn & ~(pages_per_level(PG_LEVEL_2M) - 1); }

class SplitPrivateRanges {
 public:
  struct Range {
    Cycles split_at = 0;   // simulated time of the split (the merge's wait starts here)
    u64 seq = 0;           // position in the scan order
    bool blocked = false;  // policy C: the 2M entry is NL_BLOCKED and TRACKed, PROMOTE on the next violation
  };

  // A range split at `now`; one already listed keeps its place and time.
  void add(Gfn base, Cycles now) {
    if (ranges_.count(base)) return;
    ranges_[base] = Range{now, next_seq_, false};
    order_[next_seq_++] = base;
  }
  Range* find(Gfn base) {
    auto it = ranges_.find(base);
    return it == ranges_.end() ? nullptr : &it->second;
  }
  const Range* find(Gfn base) const {
    auto it = ranges_.find(base);
    return it == ranges_.end() ? nullptr : &it->second;
  }
  void erase(Gfn base) {
    auto it = ranges_.find(base);
    if (it == ranges_.end()) return;
    order_.erase(it->second.seq);
    ranges_.erase(it);
  }
  // The range the next scan visits first.
  std::optional<Gfn> oldest() const {
    if (order_.empty()) return std::nullopt;
    return order_.begin()->second;
  }
  // A visited range that could not merge goes to the back of the scan.
  void rotate(Gfn base) {
    Range* r = find(base);
    if (!r) return;
    order_.erase(r->seq);
    r->seq = next_seq_++;
    order_[r->seq] = base;
  }
  size_t size() const { return ranges_.size(); }
  bool empty() const { return ranges_.empty(); }
  // By base gfn, for range queries (a slot, a conversion).
  const std::map<Gfn, Range>& by_gfn() const { return ranges_; }

 private:
  std::map<Gfn, Range> ranges_;  // by the range's first gfn
  std::map<u64, Gfn> order_;     // scan order: seq -> base
  u64 next_seq_ = 0;
};

}  // namespace septsim::mmu
