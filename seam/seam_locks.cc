#include "seam/seam_locks.h"

#include <algorithm>

namespace septsim::seam {

void SeamLocks::begin(unsigned initiator, Cycles now) {
  initiator_ = initiator;
  now_ = now;
  pending_.clear();
  std::erase_if(active_, [now](const Hold& h) { return h.until <= now; });
}

bool SeamLocks::acquire(LockKind kind, u64 addr, bool exclusive) {
  for (const Hold& h : active_)
    if (h.kind == kind && h.addr == addr && h.initiator != initiator_ && (exclusive || h.exclusive)) return false;
  pending_.push_back({kind, addr, exclusive, initiator_, 0});
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

}  // namespace septsim::seam
