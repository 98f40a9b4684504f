// A host lock as windows in simulated time: each caller runs at its own
// local time, so a holder is recorded as the window [granted, released) and
// a later request whose time falls inside a conflicting window waits until
// that window ends. Shared holders coexist; an exclusive one conflicts with
// everyone. Only simulated times decide, so a trace gives the same waits on
// every host. mmu_lock (mmu/mmu_lock.h, an rwlock) and the Dynamic PAMT
// pamt_lock (seam/pamt_lock.h, a spinlock) are built on it.
#pragma once
#include <algorithm>
#include <vector>

#include "model/types.h"

namespace septsim::model {

class LockWindows {
 public:
  // The time at which a holder asking at `at` gets the lock (>= at).
  Cycles acquire(bool exclusive, Cycles at) const {
    Cycles t = at;
    // Waiting for one holder may end inside another's window: repeat.
    for (bool moved = true; moved;) {
      moved = false;
      for (const Hold& h : holds_) {
        const bool conflict = exclusive || h.exclusive;
        if (conflict && h.granted <= t && t < h.released) t = h.released, moved = true;
      }
    }
    return t;
  }
  void release(bool exclusive, Cycles granted, Cycles released) {
    if (released > granted) holds_.push_back({exclusive, granted, released});
  }
  // Forgets windows that ended at or before `floor` (no later request is earlier).
  void forget_until(Cycles floor) {
    std::erase_if(holds_, [floor](const Hold& h) { return h.released <= floor; });
  }
  // Past 2 x `keep` windows, keeps the `keep` latest-released (a caller whose
  // clock never advances would otherwise grow the list without bound).
  void cap(size_t keep) {
    if (holds_.size() <= 2 * keep) return;
    std::stable_sort(holds_.begin(), holds_.end(), [](const Hold& a, const Hold& b) { return a.released > b.released; });
    holds_.resize(keep);
  }
  size_t size() const { return holds_.size(); }

 private:
  struct Hold {
    bool exclusive;
    Cycles granted;   // start of the window
    Cycles released;  // end of the window (exclusive)
  };
  std::vector<Hold> holds_;
};

}  // namespace septsim::model
