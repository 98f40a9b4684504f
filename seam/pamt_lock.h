// The host kernel's global Dynamic PAMT spinlock (`pamt_lock` in
// arch/x86/virt/vmx/tdx/tdx.c of the Dynamic PAMT series, v6): taken by
// tdx_pamt_get around the recheck and TDH.PHYMEM.PAMT.ADD of a 2 MiB region
// whose refcount is 0, and by tdx_pamt_put (atomic_dec_and_lock) around the
// TDH.PHYMEM.PAMT.REMOVE of the last holder. One lock for the whole host, so
// every CPU adding or removing any region's pair waits for every other.
//
// Time is handled as for mmu_lock: holders are windows in simulated time
// (model/lock_windows.h), every one exclusive.
#pragma once
#include "model/lock_windows.h"
#include "model/stats.h"
#include "model/types.h"

namespace septsim::seam {

class PamtLock {
 public:
  // Counters in `stats` (host.pamt_lock.*); without a registry the lock still
  // serialises but counts into its own members.
  void bind_stats(model::StatsRegistry& stats);
  // When a caller asking at `at` gets the lock (>= at); the wait is counted.
  Cycles acquire(Cycles at);
  // The holder granted at `granted` drops the lock at `released`.
  void release(Cycles granted, Cycles released);

  // A spin that waits for a window keeps the windows that can still matter:
  // past 2 x kMaxWindows, all but the kMaxWindows latest-released go (callers'
  // clocks are within a quantum of each other).
  static constexpr size_t kMaxWindows = 64;

 private:
  model::LockWindows windows_;
  u64 own_[3] = {};
  u64* acquisitions_ = &own_[0];
  u64* contended_ = &own_[1];
  u64* wait_cycles_ = &own_[2];
};

}  // namespace septsim::seam
