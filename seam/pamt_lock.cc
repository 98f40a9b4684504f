#include "seam/pamt_lock.h"

#include <algorithm>

namespace septsim::seam {

void PamtLock::bind_stats(model::StatsRegistry& stats) {
  acquisitions_ = &stats.counter("host.pamt_lock.acquisitions",
                                 "the host's global Dynamic PAMT lock taken (a PAMT.ADD or PAMT.REMOVE around it)");
  contended_ = &stats.counter("host.pamt_lock.contended", "pamt_lock acquisitions that waited for another CPU");
  wait_cycles_ = &stats.counter("host.pamt_lock.wait_cycles", "cycles spent spinning on pamt_lock");
}

Cycles PamtLock::acquire(Cycles at) {
  ++*acquisitions_;
  Cycles t = at;
  // Waiting for one holder may end inside another's window: repeat.
  for (bool moved = true; moved;) {
    moved = false;
    for (const Hold& h : holds_)
      if (h.granted <= t && t < h.released) t = h.released, moved = true;
  }
  if (t != at) {
    ++*contended_;
    *wait_cycles_ += t - at;
  }
  return t;
}

void PamtLock::release(Cycles granted, Cycles released) {
  if (released > granted) holds_.push_back({granted, released});
  if (holds_.size() <= 2 * kMaxWindows) return;
  std::stable_sort(holds_.begin(), holds_.end(), [](const Hold& a, const Hold& b) { return a.released > b.released; });
  holds_.resize(kMaxWindows);
}

}  // namespace septsim::seam
