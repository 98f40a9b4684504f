// The kernel's side of Dynamic PAMT (the Dynamic PAMT series, v6): a refcount
// per 2 MiB region; the 0->1 get allocates a page pair and calls
// TDH.PHYMEM.PAMT.ADD, the 1->0 put calls TDH.PHYMEM.PAMT.REMOVE and frees it.
// A pair can also come and go without those two: TDH.MEM.PAGE.DEMOTE of a 2M
// page installs one (adopt) and TDH.MEM.PAGE.PROMOTE hands it back (forget).
// The kernel keeps one refcount for the whole host (the series' global
// array), so TDs whose pages share a 2 MiB region share its pair; the model
// also records whose holds they are (set_owner), which the kernel does not,
// for the per-TD invariants.
#pragma once
#include <map>
#include <vector>

#include "model/phys_mem.h"
#include "seam/pamt_lock.h"
#include "seam/seamcall.h"

namespace septsim::seam {

class PamtRefcount {
 public:
  PamtRefcount(SeamTransport& tdx, model::PhysMem& mem) : tdx_(tdx), mem_(mem) {}
  // Returns the SEAMCALL status (TDX_SUCCESS when nothing had to be called);
  // `cycles` accumulates the latency. A 0->1 get takes its page pair from
  // `pool` (a cache filled before mmu_lock) when given; a pool with fewer
  // than two pages still allocates, counted in dry_takes().
  Status get(Hpa hpa, Cycles& cycles, unsigned initiator = 0, Cycles start = 0, std::vector<Hpa>* pool = nullptr);
  Status put(Hpa hpa, Cycles& cycles, unsigned initiator = 0, Cycles start = 0);
  u32 count(Hpa hpa) const;
  // A token for a new holder (a TD), and whose holds the following gets,
  // puts and adopts are.
  u64 new_owner() { return ++owners_; }
  void set_owner(u64 owner) { owner_ = owner; }
  // The holds of `owner` on hpa's region, and on every region it holds.
  u32 count_of(Hpa hpa, u64 owner) const;
  std::map<u64, u32> counts_of(u64 owner) const;
  // DEMOTE installed the pair of `hpa`'s 2M region from its R12/R13: the
  // region now has `refs` holders (the 4K pieces of the split page) and the
  // last put removes the pair with PAMT.REMOVE as usual. No SEAMCALL. False
  // (and nothing changes) when the region already has holders or refs is 0.
  bool adopt(Hpa hpa, u32 refs);
  // PROMOTE removed the pair of `hpa`'s 2M region and returned it in
  // R12/R13: the refcount entry goes without PAMT.REMOVE; the caller frees
  // or recycles the pages. Returns the holders the region had.
  u32 forget(Hpa hpa);
  // 2M regions whose pair this refcount holds (added or adopted).
  size_t regions() const { return refs_.size(); }
  // The holders of each such region, by 2M region index (hpa >> 21).
  const std::map<u64, u32>& counts() const { return refs_; }
  // Pages a get had to allocate because its pool was empty.
  u64 dry_takes() const { return dry_takes_; }
  // The global lock around every PAMT.ADD and PAMT.REMOVE these make.
  PamtLock& lock() { return lock_; }

 private:
  SeamTransport& tdx_;
  model::PhysMem& mem_;
  std::map<u64, u32> refs_;  // by 2M region index
  std::map<std::pair<u64, u64>, u32> owned_;  // (owner, region index) -> holds
  u64 owner_ = 0;
  u64 owners_ = 0;
  void own(u64 region, int delta);
  u64 dry_takes_ = 0;
  PamtLock lock_;
  // One SEAMCALL under pamt_lock: waits for the lock from start + cycles,
  // runs the call from the grant, releases at its end.
  void locked_call(SeamcallTxn& t, Cycles& cycles, Cycles start);
};

}  // namespace septsim::seam
