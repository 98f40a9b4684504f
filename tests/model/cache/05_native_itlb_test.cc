// guest.native: guest-linear walks read only the guest tables (1D); and the
// L1 ITLB (tlb.l1i.enabled) that keeps fetch translations apart from the
// L1 DTLBs while sharing the STLB.
#include <catch2/catch.hpp>

#include "cache_env.h"
#include "model/tlb/tlb_hierarchy.h"

using namespace septsim;
using namespace septsim::cachetest;
using walktest::Guest;

namespace {
constexpr Gva kV0 = 0x00007fabc0000000ull;
constexpr Gpa kD0 = 0x80000000ull;
constexpr Hpa kH0 = 0x4000000000ull;
}  // namespace

TEST_CASE("a native walk of a 4-level guest makes 4 references and no EPT references", "[walk][native]") {
  Config c = walktest::flat_config();
  c.set("guest.native", "true");
  walktest::Env env(4, c);
  Guest g(env.mem, env.ept, 4);
  g.map(kV0, kD0);
  env.ept.map(kD0, kH0);
  WalkResult r = env.walk_gva(g, kV0 + 0x42);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  CHECK(r.guest_refs == 4);
  CHECK(r.ept_refs == 0);
  CHECK(r.t.frame == kH0);
  CHECK(r.gpa == kD0 + 0x42);
  // 4 references x latency.walk_ref (20), 3 guest A writes + the leaf's A at the
  // same cost, one paging-structure-cache lookup.
  CHECK(r.cycles == (4 + 4) * 20 + 1);
  CHECK(env.stat("walk.walks_native") == 1);
  CHECK(env.stat("walk.walks_2d") == 0);
  CHECK(env.stat("psc.ept.misses") == 0);
  // The walk set the EPT A flags a hardware walk would have (the MMU reads them).
  CHECK((env.ept.get(kD0, PG_LEVEL_4K) & ept::kAccessed) != 0);
}

TEST_CASE("a native walk whose guest table has no host frame yet ends in an EPT violation", "[walk][native]") {
  Config c = walktest::flat_config();
  c.set("guest.native", "true");
  walktest::Env env(4, c);
  Guest g(env.mem, env.ept, 4);
  g.map(kV0, kD0);  // the data GPA is not in the EPT
  WalkResult r = env.walk_gva(g, kV0);
  CHECK(r.outcome == WalkOutcome::EptViolation);
  CHECK(r.gpa == kD0);
  CHECK(r.guest_refs == 4);
  CHECK(r.ept_refs == 0);
}

TEST_CASE("a native walk under the hierarchy reads guest lines only", "[walk][native][cache]") {
  Config c = hierarchy_config();
  c.set("guest.native", "true");
  HierWalker h(4, c);
  Guest g(h.env.mem, h.env.ept, 4);
  g.map(kV0, kD0);
  h.env.ept.map(kD0, kH0);
  REQUIRE(h.env.walk_gva(g, kV0).outcome == WalkOutcome::Ok);
  h.env.walker->psc().invalidate_all();
  WalkResult r = h.env.walk_gva(g, kV0);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  CHECK(r.cycles == 4 * 4 + 1);  // 4 L1D references + one lookup
  CHECK(h.pte_served("l1d") == 4);
  CHECK(h.pte_served("dram") == 4);
}

namespace {
Translation page(Hpa frame) {
  Translation t;
  t.frame = frame;
  t.level = PG_LEVEL_4K;
  t.perms = kPermRead | kPermWrite | kPermExec;
  t.dirty = true;
  return t;
}
}  // namespace

TEST_CASE("with an ITLB a fetch translation fills the ITLB and the STLB, not the L1 DTLB", "[tlb][itlb]") {
  Config c;
  c.set("tlb.l1i.enabled", "true");
  StatsRegistry stats;
  TlbHierarchy tlb(c, stats, "t");
  TlbContext ctx;
  tlb.fill(TranslationKind::Linear, ctx, kV0, page(kH0), AccessType::Fetch);
  TlbLookup f = tlb.lookup(TranslationKind::Linear, ctx, kV0, AccessType::Fetch);
  CHECK(f.hit);
  CHECK(f.where == 1);
  TlbLookup d = tlb.lookup(TranslationKind::Linear, ctx, kV0, AccessType::Read);
  CHECK(d.hit);
  CHECK(d.where == 2);  // L1 DTLB miss, STLB hit (refills the L1 DTLB)
  CHECK(stats.value("t.itlb.hits") == 1);
  CHECK(stats.value("t.dtlb.misses") == 1);
  CHECK(stats.value("t.stlb.hits") == 1);
}

TEST_CASE("fetches do not evict data translations from the L1 DTLB when the ITLB is on", "[tlb][itlb]") {
  for (bool itlb : {false, true}) {
    Config c;
    c.set("tlb.l1i.enabled", itlb ? "true" : "false");
    StatsRegistry stats;
    TlbHierarchy tlb(c, stats, "t");
    TlbContext ctx;
    // The L1 DTLB holds 64 4K entries in 16 sets of 4 ways; 16 pages apart share a set.
    tlb.fill(TranslationKind::Linear, ctx, kV0, page(kH0), AccessType::Read);
    for (u64 i = 1; i <= 4; ++i)
      tlb.fill(TranslationKind::Linear, ctx, kV0 + i * 16 * kPageSize, page(kH0 + i * kPageSize), AccessType::Fetch);
    CHECK(tlb.lookup(TranslationKind::Linear, ctx, kV0, AccessType::Read).where == (itlb ? 1 : 2));
  }
}

TEST_CASE("without an ITLB fetches share the L1 DTLB and register no ITLB counters", "[tlb][itlb]") {
  Config c;
  StatsRegistry stats;
  TlbHierarchy tlb(c, stats, "t");
  TlbContext ctx;
  tlb.fill(TranslationKind::Linear, ctx, kV0, page(kH0), AccessType::Fetch);
  CHECK(tlb.lookup(TranslationKind::Linear, ctx, kV0, AccessType::Read).where == 1);
  CHECK_FALSE(stats.has("t.itlb.hits"));
}
