// Instruction fetches go through a per-vCPU L1I (memory.l1i.*, latency.l1i)
// beside the L1D, missing to the same L2, so a program's code lines and its
// data lines do not evict each other from the first level.
#include <catch2/catch.hpp>

#include "cache_env.h"

using namespace septsim;
using namespace septsim::cachetest;

static constexpr Gpa kCode = 0x80000000ull;  // its first page lands at kVcpuFirstFrame

TEST_CASE("a fetch stream over one page misses the L1I once per line, then hits every line", "[cache][vcpu][l1i]") {
  VcpuEnv e(hierarchy_config());
  REQUIRE(e.vcpu.l1i());
  e.vcpu.access(kCode, false, AccessType::Fetch);  // EPT violation, walk, line 0 from DRAM
  // Lines 1..63 of the page: L1I, L2 and LLC misses, all in the 8 KiB DRAM
  // row line 0 opened: TLB hit (1) + row hit (latency.dram_row_hit 148) each.
  for (u64 line = 1; line < 64; ++line) CHECK(e.vcpu.access(kCode + line * 64, false, AccessType::Fetch) == 1 + 148);
  CHECK(e.stat("mem.fetch.dram") == 64);
  // 64 lines fit the 64-set L1I (one line per set): the second pass hits
  // every line at latency.l1i (4).
  for (u64 line = 0; line < 64; ++line) CHECK(e.vcpu.access(kCode + line * 64, false, AccessType::Fetch) == 1 + 4);
  CHECK(e.stat("mem.fetch.l1i") == 64);
  CHECK(e.stat("mem.l1i.misses") == 64);
  CHECK(e.stat("mem.l1i.hits") == 64);
  // Fetches are not data accesses: the L1D saw only the walk's lines.
  CHECK(e.stat("mem.data.l1d") + e.stat("mem.data.l2") + e.stat("mem.data.llc") + e.stat("mem.data.dram") == 0);
  CHECK_FALSE(e.vcpu.l1d()->holds(kVcpuFirstFrame));
  const Histogram& h = e.stats.histogram("vcpu0.mem.fetch.cycles");
  CHECK(h.count == 128);
}

TEST_CASE("an L1I miss of a line the L2 holds as data costs latency.l2", "[cache][vcpu][l1i]") {
  VcpuEnv e(hierarchy_config());
  e.vcpu.access(kCode, false, AccessType::Read);  // the line comes in as data: L1D and L2
  REQUIRE(e.vcpu.l2()->holds(kVcpuFirstFrame));
  CHECK(e.vcpu.access(kCode + 8, false, AccessType::Fetch) == 1 + 14);  // TLB hit + L2 (latency.l2 14)
  CHECK(e.stat("mem.fetch.l2") == 1);
  CHECK(e.vcpu.l1i()->holds(kVcpuFirstFrame));
}

TEST_CASE("code and data lines of one L1 set do not evict each other", "[cache][vcpu][l1i]") {
  VcpuEnv e(hierarchy_config());
  // Pages map to consecutive host frames, so line 0x800 of each page falls
  // in L1 set 32 (64 sets x 64 bytes = 4 KiB); the walks' EPT entries of
  // these 16 pages sit in the first two lines of their tables (sets 0 and 1).
  auto at = [](u64 i) { return kCode + i * kPageSize + 0x800; };
  // 8 data lines fill L1D set 32 (8 ways), 8 code lines L1I set 32. One
  // shared 8-way set would keep only the last 8 of the 16 and, LRU, miss all 16 again.
  for (u64 i = 0; i < 8; ++i) e.vcpu.access(at(i), false, AccessType::Read);
  for (u64 i = 8; i < 16; ++i) e.vcpu.access(at(i), false, AccessType::Fetch);
  const u64 l1d_hits = e.stat("mem.data.l1d"), l1i_hits = e.stat("mem.fetch.l1i");
  for (u64 i = 0; i < 8; ++i) e.vcpu.access(at(i), false, AccessType::Read);
  for (u64 i = 8; i < 16; ++i) e.vcpu.access(at(i), false, AccessType::Fetch);
  CHECK(e.stat("mem.data.l1d") - l1d_hits == 8);
  CHECK(e.stat("mem.fetch.l1i") - l1i_hits == 8);
}
