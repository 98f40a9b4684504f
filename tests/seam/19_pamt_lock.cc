// The host's global Dynamic PAMT lock (seam/pamt_lock.h): pamt_lock in
// arch/x86/virt/vmx/tdx/tdx.c of the Dynamic PAMT series (v6). tdx_pamt_get
// takes it only when the region's refcount is 0 (atomic_inc_not_zero first)
// and holds it across TDH.PHYMEM.PAMT.ADD; tdx_pamt_put takes it only for the
// last holder (atomic_dec_and_lock) and holds it across PAMT.REMOVE. One lock
// for every region, so two CPUs adding pairs of different regions serialise.
#include <catch2/catch.hpp>

#include "tests/seam/seam_env.h"

using namespace septsim;
using namespace septsim::seamtest;

namespace {

struct TwoRegions {
  SeamEnv env{true, 1};
  model::StatsRegistry stats;
  Hpa a = env.mem.alloc(PG_LEVEL_2M) << kPageShift;
  Hpa b = env.mem.alloc(PG_LEVEL_2M) << kPageShift;
  Cycles add = env.cfg.u("latency.seam.phymem_pamt_add");
  Cycles remove = env.cfg.u("latency.seam.phymem_pamt_remove");
  TwoRegions() { env.dpamt.lock().bind_stats(stats); }
};

}  // namespace

TEST_CASE("two CPUs adding pairs of different regions at once: the second spins for the first's PAMT.ADD", "[seam]") {
  TwoRegions t;
  Cycles c1 = 0, c2 = 0;
  REQUIRE(t.env.dpamt.get(t.a, c1, 1, 10000) == TDX_SUCCESS);
  REQUIRE(t.env.dpamt.get(t.b, c2, 2, 10000) == TDX_SUCCESS);
  CHECK(c1 == t.add);
  CHECK(c2 == t.add + t.add);  // the whole of CPU 1's ADD, then its own
  CHECK(t.stats.value("host.pamt_lock.acquisitions") == 2);
  CHECK(t.stats.value("host.pamt_lock.contended") == 1);
  CHECK(t.stats.value("host.pamt_lock.wait_cycles") == t.add);
}

TEST_CASE("a get of a region that already has holders and a put that is not the last take no lock", "[seam]") {
  TwoRegions t;
  Cycles c1 = 0, c2 = 0, c3 = 0;
  REQUIRE(t.env.dpamt.get(t.a, c1, 1, 10000) == TDX_SUCCESS);
  // atomic_inc_not_zero: no wait behind CPU 1's window although it overlaps.
  REQUIRE(t.env.dpamt.get(t.a + 0x1000, c2, 2, 10000) == TDX_SUCCESS);
  CHECK(c2 == 0);
  // atomic_dec_and_lock with 2 -> 1: no lock, no SEAMCALL.
  REQUIRE(t.env.dpamt.put(t.a + 0x1000, c3, 2, 10000) == TDX_SUCCESS);
  CHECK(c3 == 0);
  CHECK(t.stats.value("host.pamt_lock.acquisitions") == 1);
  CHECK(t.stats.value("host.pamt_lock.contended") == 0);
}

TEST_CASE("the last put's PAMT.REMOVE holds the lock against another CPU's PAMT.ADD", "[seam]") {
  TwoRegions t;
  Cycles c0 = 0, c1 = 0, c2 = 0;
  REQUIRE(t.env.dpamt.get(t.a, c0, 1, 20000) == TDX_SUCCESS);  // after the TD build's calls
  CHECK(c0 == t.add);
  REQUIRE(t.env.dpamt.put(t.a, c1, 1, 50000) == TDX_SUCCESS);
  CHECK(c1 == t.remove);
  // CPU 2 asks half-way through the REMOVE: it waits for the rest.
  REQUIRE(t.env.dpamt.get(t.b, c2, 2, 50000 + t.remove / 2) == TDX_SUCCESS);
  CHECK(c2 == (t.remove - t.remove / 2) + t.add);
  // Apart in time, nothing waits.
  Cycles c3 = 0;
  REQUIRE(t.env.dpamt.get(t.a, c3, 1, 1000000) == TDX_SUCCESS);
  CHECK(c3 == t.add);
  CHECK(t.stats.value("host.pamt_lock.contended") == 1);
}
