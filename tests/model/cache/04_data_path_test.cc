// The data access of a vCPU after translation goes through its L1D at the
// access's HPA (memory.model = hierarchy); instruction fetches and the flat
// model keep latency.mem_access.
#include <catch2/catch.hpp>

#include "cache_env.h"

using namespace septsim;
using namespace septsim::cachetest;

namespace {
constexpr Gpa kD0 = 0x80000000ull;
constexpr Hpa kH0 = 0x4000000000ull;
}  // namespace

TEST_CASE("a vCPU's loads and stores are line accesses at their HPA through its L1D", "[cache][vcpu]") {
  VcpuEnv e(hierarchy_config());
  REQUIRE(e.vcpu.l1d());
  e.vcpu.access(kD0 + 0x100, false, AccessType::Read);  // fault, map to kH0, walk, data from DRAM
  CHECK(e.stat("mem.data.dram") == 1);
  CHECK(e.vcpu.l1d()->holds(kH0 + 0x100));
  // TLB hit (latency.l1_tlb_hit 1) + L1D hit (latency.l1d 4).
  CHECK(e.vcpu.access(kD0 + 0x13f, false, AccessType::Read) == 1 + 4);
  CHECK(e.stat("mem.data.l1d") == 1);
  // Another line of the same page: not cached, its DRAM row is open.
  const u64 row_hits = e.stat("mem.dram.row_hits");
  CHECK(e.vcpu.access(kD0 + 0x140, false, AccessType::Read) == 1 + 148);
  CHECK(e.stat("mem.dram.row_hits") == row_hits + 1);
  // A fetch goes to the L1I, not the L1D (tests/model/cache/06): not a data access.
  CHECK(e.vcpu.access(kD0 + 0x200, false, AccessType::Fetch) == 1 + 148);
  CHECK(e.stat("mem.data.dram") == 2);
  CHECK(e.stat("mem.fetch.dram") == 1);
  const Histogram& h = e.stats.histogram("vcpu0.mem.data.cycles");
  CHECK(h.count == 3);
}

TEST_CASE("a dirty data line evicted from the L1D is written back", "[cache][vcpu]") {
  VcpuEnv e(hierarchy_config());
  e.vcpu.access(kD0, false, AccessType::Write);
  Cache& l1d = *e.vcpu.l1d();
  // Eight more lines of the same L1D set (64 sets x 64 bytes = 4 KiB apart)
  // evict the first from its 8 ways (the walks' dirty EPT lines may share the set).
  for (u64 i = 1; i <= 8; ++i) e.vcpu.access(kD0 + i * kPageSize, false, AccessType::Read);
  CHECK_FALSE(l1d.holds(kH0));
  CHECK(e.stat("mem.l1d.writebacks") >= 1);
  CHECK(e.vcpu.l2()->holds(kH0));
}

TEST_CASE("under memory.model = flat a vCPU has no caches and a TLB-hit access costs latency.mem_access", "[cache][vcpu]") {
  Config c;
  c.set("memory.model", "flat");
  c.set("latency.mem_access", "7");
  VcpuEnv e(c);
  CHECK_FALSE(e.vcpu.l1d());
  CHECK_FALSE(e.vcpu.l1i());
  e.vcpu.access(kD0, false, AccessType::Read);
  CHECK(e.vcpu.access(kD0 + 8, false, AccessType::Read) == 1 + 7);
  CHECK_FALSE(e.stats.has("vcpu0.mem.data.l1d"));
}
