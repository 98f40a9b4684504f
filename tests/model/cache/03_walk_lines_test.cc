// Paging-structure references as line accesses (memory.model = hierarchy):
// where each reference is served and what the walk then costs, worked by hand.
#include <catch2/catch.hpp>

#include "cache_env.h"

using namespace septsim;
using namespace septsim::cachetest;
using walktest::Guest;

namespace {

constexpr Gva kV0 = 0x00007fabc0000000ull + (5ull << 21) + (0x33ull << 12);
constexpr Gpa kD0 = 0x80000000ull;
constexpr Hpa kH0 = 0x4000000000ull;

u64 stat(const HierWalker& h, const std::string& n) { return h.env.stats.value("t." + n); }

}  // namespace

TEST_CASE("a 2D walk whose entries are all in the L1D costs the L1D latency per reference", "[cache][walk]") {
  HierWalker h;
  Guest g(h.env.mem, h.env.ept, 4);
  g.map(kV0, kD0);
  h.env.ept.map(kD0, kH0);
  REQUIRE(h.env.walk_gva(g, kV0).outcome == WalkOutcome::Ok);  // brings the 24 lines in, sets the A flags
  h.env.walker->psc().invalidate_all();
  const u64 ad0 = stat(h, "walk.ad_writes"), l1d0 = h.pte_served("l1d");
  WalkResult r = h.env.walk_gva(g, kV0);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  CHECK(r.refs() == 24);
  CHECK(h.pte_served("l1d") - l1d0 == 24);
  CHECK(stat(h, "walk.ad_writes") == ad0);  // nothing left to set
  // 24 references x latency.l1d (4) + 6 paging-structure-cache lookups
  // (1 guest, 5 EPT: 4 tables + the data GPA) x latency.pwc_hit (1).
  CHECK(r.cycles == 24 * 4 + 6);
  CHECK(r.t.frame == kH0);
}

TEST_CASE("a cold 4x4 2D walk with empty caches reads 24 lines from DRAM", "[cache][walk]") {
  // Each guest table and the data page sit in their own 4 TiB of guest-physical
  // space (EPT PML4 indices 0, 8, 16, 24, 32): no two of the 24 entries share a
  // line, so nothing a walk reads can hit a line it read before.
  HierWalker h;
  Guest g(h.env.mem, h.env.ept, 4);  // root table at 256 MiB
  const Gpa kTiB4 = 1ull << 42;
  g.next_gpa = 1 * kTiB4;
  g.table_gpa(kV0, 3);
  g.next_gpa = 2 * kTiB4;
  g.table_gpa(kV0, 2);
  g.next_gpa = 3 * kTiB4;
  g.table_gpa(kV0, 1);
  const Gpa data = 4 * kTiB4;
  g.map(kV0, data);
  h.env.ept.map(data, kH0);

  WalkResult r = h.env.walk_gva(g, kV0);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  CHECK(r.refs() == 24);
  CHECK(h.pte_served("dram") == 24);
  CHECK(h.pte_served("l1d") + h.pte_served("l2") + h.pte_served("llc") == 0);
  CHECK(stat(h, "mem.pte.guest.l4.dram") == 1);
  CHECK(stat(h, "mem.pte.ept.l4.dram") == 5);  // one nested walk per guest table + the data GPA
  CHECK(stat(h, "mem.pte.ept.l1.dram") == 5);
  // A/D writes go to lines the walk has just read: L1D hits.
  const u64 ad = stat(h, "walk.ad_writes");
  CHECK(ad == 4 + 20);  // guest A on 4 entries; EPT A on every entry of the 5 nested walks
  CHECK(stat(h, "mem.ad.l1d") == ad);
  const u64 hits = stat(h, "mem.dram.row_hits"), misses = stat(h, "mem.dram.row_misses");
  CHECK(hits + misses == 24);
  CHECK(r.cycles == hits * 148 + misses * 216 + ad * 4 + 6);
}

TEST_CASE("a cold 1D walk reads one EPT line per level from DRAM", "[cache][walk]") {
  HierWalker h;
  h.env.ept.map(kD0, kH0);
  WalkResult r = h.env.walk_gpa(kD0);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  CHECK(r.refs() == 4);
  for (int level = 1; level <= 4; ++level) CHECK(stat(h, "mem.pte.ept.l" + std::to_string(level) + ".dram") == 1);
  // Each reference opens its bank's row or finds it open; the A flags are
  // written to lines just read (L1D).
  const u64 hits = stat(h, "mem.dram.row_hits"), misses = stat(h, "mem.dram.row_misses");
  CHECK(hits + misses == 4);
  CHECK(misses >= 1);
  const u64 ad = stat(h, "walk.ad_writes");
  CHECK(stat(h, "mem.ad.l1d") == ad);
  CHECK(r.cycles == misses * 216 + hits * 148 + ad * 4 + 1);
}

TEST_CASE("memory.model = flat keeps latency.walk_ref per reference and adds no line counters", "[cache][walk]") {
  walktest::Env env(4);
  env.ept.map(kD0, kH0);
  WalkResult r = env.walk_gpa(kD0);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  const u64 ad = env.stat("walk.ad_writes");
  CHECK(r.cycles == (4 + ad) * 20 + 1);
  CHECK_FALSE(env.stats.has("t.mem.pte.ept.l1.dram"));
  CHECK_FALSE(env.stats.has("t.mem.dram.row_hits"));
}

TEST_CASE("Secure-EPT entry reads of a TD's private GPA are line accesses counted as EPT references", "[cache][walk]") {
  HierWalker h;
  walktest::Ept sept(h.env.mem, 4);  // the TD's Secure EPT
  const Gpa priv = kD0, shared = kD0 | (1ull << 47);
  sept.map(priv, kH0);
  h.env.ept.map(shared, kH0 + kPageSize);
  const ept::Eptp sept_eptp = sept.eptp(false);
  WalkRequest req = h.env.gpa_req(priv);
  req.secure_eptp = &sept_eptp;
  req.shared_bit = 47;
  WalkResult r = h.env.walker->walk(req);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  CHECK(r.t.frame == kH0);
  CHECK(r.ept_refs == 4);
  CHECK(h.pte_served("dram") == 4);  // the Secure EPT's four tables, cold
  CHECK(stat(h, "walk.ad_writes") == 0);  // no A/D in the Secure EPT
  req.addr = shared;
  r = h.env.walker->walk(req);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  CHECK(r.t.frame == kH0 + kPageSize);
  CHECK(h.pte_served("dram") + h.pte_served("l1d") + h.pte_served("l2") + h.pte_served("llc") == 8);
}
