// What changed since the invariant checker (--check, traces/invariant_report.*)
// last looked: the gfn ranges whose SPTEs, Secure-EPT entries or TD pages
// changed, and whether a change may have left a TLB entry stale. The MMU fills it only while one is attached (Kvm::set_check_log),
// so a replay without --check pays one null-pointer test per SPTE write.
// docs/invariants.md, "How --check runs".
#pragma once
#include <algorithm>
#include <utility>
#include <vector>

#include "model/types.h"

namespace septsim::mmu {

struct CheckLog {
  // [gfn, gfn + pages) in a root's gfn space (a TD's shared gfns carry the shared bit).
  std::vector<std::pair<Gfn, u64>> ranges;
  // A present SPTE or Secure-EPT entry lost rights or changed frame: some
  // vCPU's TLB may now be stale (the next check compares the TLBs).
  bool tlb_may_be_stale = false;
  // Something the ranges cannot describe changed: the next check sweeps everything.
  bool full = false;
  // 2 MiB host regions (hpa >> 21) whose Dynamic PAMT refcount or TD pages changed.
  std::vector<u64> pamt_regions;

  void touch(Gfn gfn, u64 pages) {
    // Writes to the same range (a fault's SPTE, its SEAMCALL, the ACCEPT)
    // or the next one (a zap, a split) extend the last range.
    if (!ranges.empty()) {
      auto& [first, n] = ranges.back();
      if (gfn >= first && gfn <= first + n) {
        n = std::max(n, gfn + pages - first);
        return;
      }
    }
    ranges.emplace_back(gfn, pages);
  }
  void clear() {
    ranges.clear();
    pamt_regions.clear();
    tlb_may_be_stale = false;
    full = false;
  }
};

}  // namespace septsim::mmu
