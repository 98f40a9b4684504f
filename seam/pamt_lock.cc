#include "seam/pamt_lock.h"

namespace septsim::seam {

void PamtLock::bind_stats(model::StatsRegistry& stats) {
  acquisitions_ = &stats.counter("host.pamt_lock.acquisitions",
                                 "the host's global Dynamic PAMT lock taken (a PAMT.ADD or PAMT.REMOVE around it)");
  contended_ = &stats.counter("host.pamt_lock.contended", "pamt_lock acquisitions that waited for another CPU");
  wait_cycles_ = &stats.counter("host.pamt_lock.wait_cycles", "cycles spent spinning on pamt_lock");
}

Cycles PamtLock::acquire(Cycles at) {
  ++*acquisitions_;
  const Cycles t = windows_.acquire(true, at);
  if (t != at) {
    ++*contended_;
    *wait_cycles_ += t - at;
  }
  return t;
}

void PamtLock::release(Cycles granted, Cycles released) {
  windows_.release(true, granted, released);
  windows_.cap(kMaxWindows);
}

}  // namespace septsim::seam
