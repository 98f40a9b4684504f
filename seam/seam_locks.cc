#include "seam/seam_locks.h"

#include <algorithm>

namespace septsim::seam {

void SeamLocks::begin(unsigned initiator, Cycles now, Cycles until) {
  initiator_ = initiator;
  now_ = now;
  until_ = until;
  pending_.clear();
  const Cycles horizon = now > retain_ ? now - retain_ : 0;
  std::erase_if(active_, [horizon](const Hold& h) { return h.until <= horizon; });
  if (active_.size() <= kMaxHolds) return;
  // A caller whose clock never advances: keep the latest-ending half.
  std::stable_sort(active_.begin(), active_.end(), [](const Hold& a, const Hold& b) { return a.until > b.until; });
  active_.resize(kMaxHolds / 2);
}

bool SeamLocks::acquire(LockKind kind, u64 addr, bool exclusive) {
  for (const Hold& h : active_)
    if (h.kind == kind && h.addr == addr && h.initiator != initiator_ && (exclusive || h.exclusive) &&
        h.from < until_ && now_ < h.until)
      return false;
  pending_.push_back({kind, addr, exclusive, initiator_, now_, 0});
  return true;
}

void SeamLocks::commit(Cycles until) {
  if (until <= now_) {
    pending_.clear();
    return;
  }
  for (Hold& h : pending_) {
    h.until = until;
    active_.push_back(h);
  }
  pending_.clear();
}

void SeamLocks::release(unsigned initiator) {
  std::erase_if(active_, [initiator](const Hold& h) { return h.initiator == initiator; });
}

}  // namespace septsim::seam
