// Per-leaf SEAMCALL/TDCALL latencies in cycles (config keys latency.seam.*,
// each default with its source or marked as a guess in model/config.cc).
#pragma once
#include <array>

#include "model/config.h"
#include "seam/tdx_leaf.h"

namespace septsim::seam {

struct SeamTiming {
  static constexpr size_t kLeaves = 64;
  std::array<Cycles, kLeaves> leaf{};  // by leaf number
  Cycles td_exit = 0;
  Cycles accept_4k = 0, accept_2m = 0;
  // How long a call the module refuses by a check holds the locks it took
  // before that check: one trip into the module and back, the floor of any
  // SEAMCALL (latency.seam.mem_sept_rd's source), an upper bound of the
  // checks' share of it.
  Cycles refusal_hold = 0;

  static SeamTiming from(const model::Config& c);
  Cycles of(u16 leaf_number) const { return leaf_number < kLeaves ? leaf[leaf_number] : leaf[kLeaves - 1]; }
};

}  // namespace septsim::seam
