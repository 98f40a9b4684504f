// One broken invariant as --check reports it (traces/invariant_report.h) and
// --check-report writes it (docs/invariants.md).
#pragma once
#include <string>

#include "model/types.h"

namespace septsim::traces {

// One broken rule, where it was first seen.
struct Violation {
  u64 event = 0;        // index of the trace event after which the check ran (1-based)
  u64 line = 0;         // its line in the trace (event index for binary traces)
  std::string rule;     // "7", "stale-tlb", "kvm-bug", ...
  std::string details;  // what is broken
  bool said_rule = true;  // the check wrote "rule R: ..." (the stale-TLB check writes "stale-tlb: ...")
  // "event N (line L): rule R: details", or "...: stale-tlb: details".
  std::string text() const;
};

}  // namespace septsim::traces
