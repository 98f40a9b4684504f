// Paging-structure caches on their own: keys, tags, deepest-hit order,
// invalidation, sizes from the config.
#include <catch2/catch.hpp>

#include "model/walk/psc.h"

using namespace septsim;
using namespace septsim::model;

namespace {

constexpr u64 kEptp = 0x1234000ull | (3u << 3) | (1u << 6) | 6u;  // 4-level, A/D, WB
constexpr u64 kEptp2 = 0x5678000ull | (3u << 3) | 6u;
const TlbContext kCtx{1, 0, kEptp};
constexpr Gva kVa = 0x00007fabc0000000ull;

}  // namespace

TEST_CASE("PSC guest lookup returns the deepest hit", "[walk][psc]") {
  Config cfg;
  StatsRegistry stats;
  PagingStructureCaches psc(cfg, stats, "p");
  CHECK_FALSE(psc.lookup_guest(kCtx, 4, kVa));
  psc.fill_guest(kCtx, 4, kVa, 4, {0x11000, 7});  // PML4E -> PDPT
  psc.fill_guest(kCtx, 4, kVa, 3, {0x22000, 7});  // PDPTE -> PD
  psc.fill_guest(kCtx, 4, kVa, 2, {0x33000, 3});  // PDE -> PT

  auto h = psc.lookup_guest(kCtx, 4, kVa + 0x1fffff);  // same 2M
  REQUIRE(h);
  CHECK(h->level == 1);
  CHECK(h->e.next_table == 0x33000);
  CHECK(h->e.perms == 3);
  h = psc.lookup_guest(kCtx, 4, kVa + 0x200000);  // same 1G, other 2M
  REQUIRE(h);
  CHECK(h->level == 2);
  CHECK(h->e.next_table == 0x22000);
  h = psc.lookup_guest(kCtx, 4, kVa + 0x40000000);  // same 512G, other 1G
  REQUIRE(h);
  CHECK(h->level == 3);
  CHECK_FALSE(psc.lookup_guest(kCtx, 4, kVa + (u64{1} << 39)));  // other 512G
  // Sign-extension bits are not part of the key.
  CHECK(psc.lookup_guest(kCtx, 4, kVa | 0xffff000000000000ull));
  CHECK(stats.value("p.psc.guest.hits") == 4);
  CHECK(stats.value("p.psc.guest.misses") == 2);
}

TEST_CASE("PSC guest entries are tagged by VPID, PCID, EPTP and paging mode", "[walk][psc]") {
  Config cfg;
  StatsRegistry stats;
  PagingStructureCaches psc(cfg, stats, "p");
  psc.fill_guest(kCtx, 4, kVa, 2, {0x33000, 7});
  CHECK(psc.lookup_guest(kCtx, 4, kVa));
  CHECK_FALSE(psc.lookup_guest(TlbContext{2, 0, kEptp}, 4, kVa));
  CHECK_FALSE(psc.lookup_guest(TlbContext{1, 1, kEptp}, 4, kVa));
  CHECK_FALSE(psc.lookup_guest(TlbContext{1, 0, kEptp2}, 4, kVa));
  CHECK_FALSE(psc.lookup_guest(kCtx, 5, kVa));
  // Entry levels that are not cached are ignored.
  psc.fill_guest(kCtx, 4, kVa + (u64{1} << 39), 1, {0x44000, 7});
  psc.fill_guest(kCtx, 4, kVa + (u64{1} << 39), 5, {0x44000, 7});
  CHECK_FALSE(psc.lookup_guest(kCtx, 4, kVa + (u64{1} << 39)));
}

TEST_CASE("PSC 5-level guest uses the PML5E cache", "[walk][psc]") {
  Config cfg;
  StatsRegistry stats;
  PagingStructureCaches psc(cfg, stats, "p");
  const Gva va = 0x00abcdef12345000ull;
  psc.fill_guest(kCtx, 5, va, 5, {0x55000, 7});
  auto h = psc.lookup_guest(kCtx, 5, va + (u64{1} << 39));  // same 256T region, other 512G
  REQUIRE(h);
  CHECK(h->level == 4);
  CHECK_FALSE(psc.lookup_guest(kCtx, 5, va + (u64{1} << 48)));
}

TEST_CASE("PSC EPT lookups and invalidation", "[walk][psc]") {
  Config cfg;
  StatsRegistry stats;
  PagingStructureCaches psc(cfg, stats, "p");
  const Gpa gpa = 0x80000000ull;
  psc.fill_ept(kEptp, 4, gpa, 3, {0x66000, 7});
  psc.fill_ept(kEptp, 4, gpa, 2, {0x77000, 5});
  auto h = psc.lookup_ept(kEptp, 4, gpa + 0x1000);
  REQUIRE(h);
  CHECK(h->level == 1);
  CHECK(h->e.next_table == 0x77000);
  CHECK(h->e.perms == 5);
  CHECK(psc.lookup_ept(kEptp, 4, gpa + 0x200000)->level == 2);
  CHECK_FALSE(psc.lookup_ept(kEptp2, 4, gpa));
  CHECK_FALSE(psc.lookup_ept(kEptp, 5, gpa));
  CHECK(stats.value("p.psc.ept.hits") == 2);
  CHECK(stats.value("p.psc.ept.misses") == 2);

  psc.fill_guest(kCtx, 4, kVa, 2, {0x33000, 7});
  psc.fill_guest(TlbContext{1, 0, kEptp2}, 4, kVa, 2, {0x33000, 7});
  psc.fill_ept(kEptp2, 4, gpa, 2, {0x88000, 7});
  SECTION("INVVPID/INVPCID leave EPT entries") {
    psc.invalidate_vpid(1);
    CHECK_FALSE(psc.lookup_guest(kCtx, 4, kVa));
    CHECK(psc.lookup_ept(kEptp, 4, gpa));
  }
  SECTION("INVEPT single drops guest and EPT entries of that EPTP only") {
    psc.invalidate_eptp(kEptp);
    CHECK_FALSE(psc.lookup_guest(kCtx, 4, kVa));
    CHECK_FALSE(psc.lookup_ept(kEptp, 4, gpa));
    CHECK(psc.lookup_guest(TlbContext{1, 0, kEptp2}, 4, kVa));
    CHECK(psc.lookup_ept(kEptp2, 4, gpa));
  }
  SECTION("INVEPT all") {
    psc.invalidate_all();
    CHECK_FALSE(psc.lookup_guest(kCtx, 4, kVa));
    CHECK_FALSE(psc.lookup_ept(kEptp2, 4, gpa));
  }
}

TEST_CASE("PSC invalidate_vpid_pcid drops only that PCID", "[walk][psc]") {
  Config cfg;
  StatsRegistry stats;
  PagingStructureCaches psc(cfg, stats, "p");
  psc.fill_guest(TlbContext{1, 3, kEptp}, 4, kVa, 2, {0x33000, 7});
  psc.fill_guest(TlbContext{1, 4, kEptp}, 4, kVa, 2, {0x33000, 7});
  psc.fill_guest(TlbContext{2, 3, kEptp}, 4, kVa, 2, {0x33000, 7});
  psc.invalidate_vpid_pcid(1, 3);
  CHECK_FALSE(psc.lookup_guest(TlbContext{1, 3, kEptp}, 4, kVa));
  CHECK(psc.lookup_guest(TlbContext{1, 4, kEptp}, 4, kVa));
  CHECK(psc.lookup_guest(TlbContext{2, 3, kEptp}, 4, kVa));
}

TEST_CASE("PSC sizes come from pwc.* keys, 0 entries disables a cache", "[walk][psc]") {
  Config cfg;
  cfg.set("pwc.guest.pd.entries", "0");
  cfg.set("pwc.ept.pd.entries", "2");
  cfg.set("pwc.ways", "2");
  StatsRegistry stats;
  PagingStructureCaches psc(cfg, stats, "p");
  psc.fill_guest(kCtx, 4, kVa, 2, {0x33000, 7});
  psc.fill_guest(kCtx, 4, kVa, 3, {0x22000, 7});
  auto h = psc.lookup_guest(kCtx, 4, kVa);
  REQUIRE(h);
  CHECK(h->level == 2);  // the PDE cache holds nothing

  // A 2-entry, 2-way (fully associative) EPT PDE cache keeps the 2 most recent.
  for (u64 i = 0; i < 3; ++i) psc.fill_ept(kEptp, 4, i << 21, 2, {0x1000 * (i + 1), 7});
  CHECK_FALSE(psc.lookup_ept(kEptp, 4, 0));
  CHECK(psc.lookup_ept(kEptp, 4, u64{1} << 21));
  CHECK(psc.lookup_ept(kEptp, 4, u64{2} << 21));
}
