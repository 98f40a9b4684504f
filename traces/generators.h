// Synthetic trace generators for `septsim gen`: deterministic for a seed
// (own splitmix64, no std distributions, whose output varies by library).
#pragma once
#include <string>
#include <vector>

#include "traces/event_sink.h"

namespace septsim::traces {

struct GenOptions {
  u32 vcpus = 1;
  u64 size = 256ull << 20;  // guest memory in bytes (one THP-backed memslot at GPA 0)
  u64 seed = 1;
  u64 count = 100000;       // accesses (random, seq) or write rounds (dirty-log-migration)
};

struct GeneratorInfo {
  std::string name, description;
};

const std::vector<GeneratorInfo>& generators();

// Writes the trace to `sink` (not finished). Throws std::invalid_argument
// naming the bad option or the unknown generator.
void generate(const std::string& name, const GenOptions& opts, EventSink& sink);

}  // namespace septsim::traces
