// The kernel's side of Dynamic PAMT (tdx-seam.md 6.3, DPAMT v6): a refcount
// per 2 MiB region; the 0->1 get allocates a page pair and calls
// TDH.PHYMEM.PAMT.ADD, the 1->0 put calls TDH.PHYMEM.PAMT.REMOVE and frees it.
#pragma once
#include <map>

#include "model/phys_mem.h"
#include "seam/seamcall.h"

namespace septsim::seam {

class PamtRefcount {
 public:
  PamtRefcount(SeamTransport& tdx, model::PhysMem& mem) : tdx_(tdx), mem_(mem) {}
  // Returns the SEAMCALL status (TDX_SUCCESS when nothing had to be called);
  // `cycles` accumulates the latency.
  Status get(Hpa hpa, Cycles& cycles, unsigned initiator = 0, Cycles start = 0);
  Status put(Hpa hpa, Cycles& cycles, unsigned initiator = 0, Cycles start = 0);
  u32 count(Hpa hpa) const;

 private:
  SeamTransport& tdx_;
  model::PhysMem& mem_;
  std::map<u64, u32> refs_;  // by 2M region index
};

}  // namespace septsim::seam
