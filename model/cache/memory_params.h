// The shape and costs of the memory hierarchy behind the page walker and the
// data path (config keys memory.* and latency.{l1d,l2,llc,dram_row_*}). It
// travels inside the latency table (Timing::memory), so every module that
// gets the table sees the same description: the vCPUs build their L1D and L2
// from it, HostMemoryTarget the shared LLC and DRAM.
#pragma once
#include <string>

#include "model/config.h"
#include "model/types.h"

namespace septsim::model {

constexpr unsigned kLineShift = 6;  // 64-byte lines
constexpr u64 kLineBytes = u64{1} << kLineShift;

struct CacheParams {
  u32 sets = 1;
  u32 ways = 1;
  Cycles latency = 0;  // load-to-use latency of an access this level serves
};

struct DramParams {
  u32 banks = 1;
  u64 row_bytes = 8192;  // bytes of one row of one bank (consecutive addresses)
  Cycles row_hit = 0;    // load-to-use latency when the bank's open row holds the line
  Cycles row_miss = 0;   // ... when the bank must precharge and activate (or open a row)
};

struct MemoryParams {
  bool hierarchy = false;  // memory.model: false = flat (latency.walk_ref / latency.mem_access)
  std::string replacement = "lru";
  u64 seed = 1;
  CacheParams l1i, l1d, l2, llc;  // l1i: instruction fetches, beside the L1D, missing to the L2
  DramParams dram;

  static MemoryParams from(const Config& c);
};

}  // namespace septsim::model
