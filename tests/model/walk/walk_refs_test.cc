// Reference counts and latency of 1D and 2D walks, cold and with warm
// paging-structure caches. Golden values: the 2D walk's (n+1)(m+1)-1 references (Bhargava et al., ASPLOS 2008) and
// hand-worked walks (comments give the working).
#include <catch2/catch.hpp>

#include "walk_env.h"

using namespace septsim;
using namespace septsim::walktest;

namespace {

constexpr Gva kV0 = 0x00007fabc0000000ull;  // 1G-aligned guest-linear address
constexpr Gpa kD0 = 0x80000000ull;          // data GPAs (tables live at 256 MiB)
constexpr Hpa kH0 = 0x4000000000ull;        // data HPAs (never touched by the walker)

struct TwoD {
  Env env;
  Guest guest;
  TwoD(int n, int m, const Config& c = Config()) : env(m, c), guest(env.mem, env.ept, n) {}
  // Maps gva -> gpa (4K guest page) -> hpa (4K EPT page).
  void map4k(Gva gva, Gpa gpa, Hpa hpa) {
    guest.map(gva, gpa);
    env.ept.map(gpa, hpa);
  }
};

}  // namespace

TEST_CASE("1D cold walk makes m references", "[walk]") {
  for (int m : {4, 5}) {
    Env env(m);
    env.ept.map(kD0 + 0x5000, kH0 + 0x9000);
    WalkResult r = env.walk_gpa(kD0 + 0x5123);
    REQUIRE(r.outcome == WalkOutcome::Ok);
    CHECK(r.refs() == unsigned(m));
    CHECK(r.ept_refs == unsigned(m));
    CHECK(r.guest_refs == 0);
    CHECK(r.gpa == kD0 + 0x5123);
    CHECK(r.t.frame == kH0 + 0x9000);
    CHECK(r.t.level == 1);
    CHECK(r.t.perms == (kPermRead | kPermWrite | kPermExec));
    CHECK(env.stat("walk.walks_1d") == 1);
    CHECK(env.stat("walk.refs.ept") == u64(m));
  }
}

TEST_CASE("1D warm walk in the same 2M region reads only the EPT PTE", "[walk]") {
  Env env(4);
  env.ept.map(kD0, kH0);
  env.ept.map(kD0 + 0x1000, kH0 + 0x7000);
  REQUIRE(env.walk_gpa(kD0).refs() == 4);
  WalkResult r = env.walk_gpa(kD0 + 0x1000);  // EPT PDE-cache hit -> PT
  REQUIRE(r.outcome == WalkOutcome::Ok);
  CHECK(r.refs() == 1);
  CHECK(r.t.frame == kH0 + 0x7000);
  CHECK(env.stat("psc.ept.hits") == 1);
  CHECK(env.stat("psc.ept.misses") == 1);
}

TEST_CASE("2D cold walks make (n+1)(m+1)-1 references", "[walk]") {
  struct Case {
    int n, m;
    unsigned refs;
  };
  // (n+1)(m+1)-1: 4x4 = 24, 4x5 = 5x4 = 29, 5x5 = 35.
  for (Case c : {Case{4, 4, 24}, Case{5, 5, 35}, Case{4, 5, 29}, Case{5, 4, 29}}) {
    INFO("guest " << c.n << " levels, EPT " << c.m << " levels");
    TwoD t(c.n, c.m);
    const Gva gva = c.n == 5 ? 0x00abcdef12345000ull : kV0 + 0x3000;
    t.map4k(gva, kD0 + 0x2000, kH0 + 0x4000);
    WalkResult r = t.env.walk_gva(t.guest, gva + 0x10);
    REQUIRE(r.outcome == WalkOutcome::Ok);
    CHECK(r.refs() == c.refs);
    CHECK(r.guest_refs == unsigned(c.n));
    CHECK(r.ept_refs == unsigned((c.n + 1) * c.m));
    CHECK(r.gpa == kD0 + 0x2010);
    CHECK(r.t.frame == kH0 + 0x4000);
    CHECK(r.t.level == 1);
    CHECK(t.env.stat("walk.walks_2d") == 1);
    CHECK(t.env.stat("walk.refs.guest") == u64(c.n));
  }
}

TEST_CASE("2D cold count does not depend on table layout", "[walk]") {
  // Tables and data share one 2M GPA region: fills made during the walk only
  // become visible to the next walk.
  TwoD t(4, 4);
  t.map4k(kV0, 0x10100000ull, kH0);
  CHECK(t.env.walk_gva(t.guest, kV0).refs() == 24);
}

TEST_CASE("2D warm walk of a neighbouring page: guest PDE and EPT PDE hits", "[walk]") {
  for (int n : {4, 5}) {
    TwoD t(n, n);
    t.map4k(kV0, kD0, kH0);
    t.map4k(kV0 + 0x1000, kD0 + 0x1000, kH0 + 0x1000);
    REQUIRE(t.env.walk_gva(t.guest, kV0).refs() == unsigned((n + 1) * (n + 1) - 1));
    // Guest PDE-cache hit -> PT HPA: 1 guest ref. Data GPA in the same 2M
    // region: EPT PDE-cache hit -> 1 EPT ref.
    WalkResult r = t.env.walk_gva(t.guest, kV0 + 0x1000);
    REQUIRE(r.outcome == WalkOutcome::Ok);
    CHECK(r.guest_refs == 1);
    CHECK(r.ept_refs == 1);
    CHECK(r.t.frame == kH0 + 0x1000);
    CHECK(t.env.stat("psc.guest.hits") == 1);
  }
}

TEST_CASE("2D warm walk through a new guest PT and a new 2M data region", "[walk]") {
  TwoD t(4, 4);
  t.map4k(kV0, kD0, kH0);
  t.map4k(kV0 + 0x200000, kD0 + 0x200000, kH0 + 0x200000);  // new guest PT, same PD; data: next 2M
  REQUIRE(t.env.walk_gva(t.guest, kV0).refs() == 24);
  // Guest PDPTE-cache hit -> PD: read PDE (1). New PT's GPA shares the tables'
  // 2M region: EPT PDE hit -> 1. Read PTE (1). Data GPA in a new 2M region of
  // the same 1G: EPT PDPTE hit -> PDE + PTE (2). Total 5.
  WalkResult r = t.env.walk_gva(t.guest, kV0 + 0x200000);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  CHECK(r.guest_refs == 2);
  CHECK(r.ept_refs == 3);
  CHECK(r.refs() == 5);
}

TEST_CASE("2D walks with guest 2M pages", "[walk]") {
  TwoD t(4, 4);
  t.guest.map(kV0, kD0, PG_LEVEL_2M);
  t.env.ept.map(kD0 + 0x3000, kH0 + 0x3000);
  t.env.ept.map(kD0 + 0x7000, kH0 + 0x7000);
  // 3 guest reads (PML4E, PDPTE, PDE leaf), 3 nested walks of 4, final walk of 4.
  WalkResult r = t.env.walk_gva(t.guest, kV0 + 0x3000);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  CHECK(r.refs() == 3 + 3 * 4 + 4);
  CHECK(r.guest_refs == 3);
  // Same guest 2M page: the leaf PDE is not cached, PDPTE-cache hit -> read PDE
  // (1); data GPA in the same 2M region: EPT PDE hit (1).
  r = t.env.walk_gva(t.guest, kV0 + 0x7000);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  CHECK(r.guest_refs == 1);
  CHECK(r.ept_refs == 1);
  CHECK(r.t.frame == kH0 + 0x7000);
  CHECK(r.t.level == 1);  // guest 2M over EPT 4K: fractured
}

TEST_CASE("2D walks with EPT 2M and 1G leaves", "[walk]") {
  SECTION("data GPA mapped by an EPT 2M leaf") {
    TwoD t(4, 4);
    t.guest.map(kV0, kD0 + 0x5000);
    t.guest.map(kV0 + 0x1000, kD0 + 0x6000);
    t.env.ept.map(kD0, kH0, PG_LEVEL_2M);
    WalkResult r = t.env.walk_gva(t.guest, kV0);
    REQUIRE(r.outcome == WalkOutcome::Ok);
    CHECK(r.refs() == 4 + 4 * 4 + 3);  // final nested walk stops at the PDE
    CHECK(r.t.frame == kH0 + 0x5000);
    CHECK(r.t.level == 1);
    // Guest PDE hit (1) + EPT PDPTE hit -> leaf PDE (1).
    r = t.env.walk_gva(t.guest, kV0 + 0x1000);
    CHECK(r.guest_refs == 1);
    CHECK(r.ept_refs == 1);
    CHECK(r.t.frame == kH0 + 0x6000);
  }
  SECTION("tables and data mapped by EPT 2M leaves") {
    Env env(4);
    Guest g(env.mem, env.ept, 4, 0x10000000, PG_LEVEL_2M);
    g.map(kV0, kD0);
    env.ept.map(kD0, kH0, PG_LEVEL_2M);
    WalkResult r = env.walk_gva(g, kV0);
    REQUIRE(r.outcome == WalkOutcome::Ok);
    CHECK(r.refs() == 4 + 5 * 3);
  }
  SECTION("tables and data mapped by EPT 1G leaves") {
    Env env(4);
    Guest g(env.mem, env.ept, 4, 0x40000000, PG_LEVEL_1G);
    g.map(kV0, kD0 + 0x12345000);
    env.ept.map(kD0, kH0, PG_LEVEL_1G);
    WalkResult r = env.walk_gva(g, kV0 + 0x678);
    REQUIRE(r.outcome == WalkOutcome::Ok);
    CHECK(r.refs() == 4 + 5 * 2);
    CHECK(r.t.frame == kH0 + 0x12345000);
    CHECK(r.gpa == kD0 + 0x12345678);
    // Warm, next guest page in the same 1G EPT page: guest PDE hit (1) + EPT
    // PML4E hit -> leaf PDPTE (1).
    g.map(kV0 + 0x1000, kD0 + 0x2000);
    r = env.walk_gva(g, kV0 + 0x1000);
    CHECK(r.guest_refs == 1);
    CHECK(r.ept_refs == 1);
    CHECK(r.t.frame == kH0 + 0x2000);
  }
}

TEST_CASE("PSC invalidation restores cold reference counts", "[walk]") {
  TwoD t(4, 4);
  t.map4k(kV0, kD0, kH0);
  t.map4k(kV0 + 0x1000, kD0 + 0x1000, kH0 + 0x1000);
  auto& psc = t.env.walker->psc();
  REQUIRE(t.env.walk_gva(t.guest, kV0).refs() == 24);
  REQUIRE(t.env.walk_gva(t.guest, kV0 + 0x1000).refs() == 2);

  SECTION("invalidate_all") {
    psc.invalidate_all();
    CHECK(t.env.walk_gva(t.guest, kV0 + 0x1000).refs() == 24);
  }
  SECTION("invalidate_eptp drops guest and EPT entries of that EPTP") {
    psc.invalidate_eptp(t.env.ept.eptp().encode());
    CHECK(t.env.walk_gva(t.guest, kV0 + 0x1000).refs() == 24);
  }
  SECTION("invalidate_eptp matches the EP4TA, not the whole EPTP value") {
    psc.invalidate_eptp(t.env.ept.eptp(false).encode());
    CHECK(t.env.walk_gva(t.guest, kV0 + 0x1000).refs() == 24);
  }
  SECTION("invalidate_vpid_pcid keeps EPT entries") {
    psc.invalidate_vpid_pcid(1, 0);
    // 4 guest reads; each table GPA and the data GPA hit the EPT PDE cache (1 each).
    WalkResult r = t.env.walk_gva(t.guest, kV0 + 0x1000);
    CHECK(r.guest_refs == 4);
    CHECK(r.ept_refs == 5);
  }
  SECTION("invalidate_vpid keeps EPT entries") {
    psc.invalidate_vpid(1);
    CHECK(t.env.walk_gva(t.guest, kV0 + 0x1000).refs() == 9);
  }
  SECTION("other VPID or PCID: no effect") {
    psc.invalidate_vpid(2);
    psc.invalidate_vpid_pcid(1, 7);
    psc.invalidate_eptp(ept::Eptp{0x1234000, 4, true}.encode());
    CHECK(t.env.walk_gva(t.guest, kV0 + 0x1000).refs() == 2);
  }
}

TEST_CASE("Guest PSC entries are tagged by VPID and PCID", "[walk]") {
  TwoD t(4, 4);
  t.map4k(kV0, kD0, kH0);
  REQUIRE(t.env.walk_gva(t.guest, kV0).refs() == 24);
  // Other PCID: guest PSC miss; EPT PSC (tagged by EPTP only) still hits.
  WalkResult r = t.env.walker->walk(t.env.gva_req(t.guest, kV0, AccessType::Read, 1, 5));
  CHECK(r.guest_refs == 4);
  CHECK(r.ept_refs == 5);
  r = t.env.walker->walk(t.env.gva_req(t.guest, kV0, AccessType::Read, 3, 0));
  CHECK(r.refs() == 9);
  r = t.env.walker->walk(t.env.gva_req(t.guest, kV0, AccessType::Read, 1, 0));
  CHECK(r.refs() == 2);  // guest PDE hit -> PTE; EPT PDE hit -> EPT PTE
}
