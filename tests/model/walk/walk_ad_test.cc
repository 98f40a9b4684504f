// Accessed/dirty updates (guest and EPT), Translation fields and walk latency.
#include <catch2/catch.hpp>

#include "walk_env.h"

using namespace septsim;
using namespace septsim::walktest;

namespace {

constexpr Gva kV = 0x00007fabc0000000ull;
constexpr Gpa kD = 0x80000000ull;
constexpr Hpa kH = 0x4000000000ull;

bool has(u64 e, u64 bits) { return (e & bits) == bits; }

}  // namespace

TEST_CASE("1D walk sets EPT A on every entry and D on the written leaf", "[walk]") {
  Env env(4);
  env.ept.map(kD, kH);
  WalkResult r = env.walk_gpa(kD, AccessType::Read);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  for (int l = 4; l >= 1; --l) CHECK(has(env.ept.get(kD, l), ept::kAccessed));
  CHECK_FALSE(env.ept.get(kD, 1) & ept::kDirty);
  CHECK_FALSE(r.t.dirty);
  CHECK(env.stat("walk.ad_writes") == 4);
  CHECK(env.stat("walk.refs.ept") == 4);  // A/D writes are not references

  r = env.walk_gpa(kD, AccessType::Write);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  CHECK(has(env.ept.get(kD, 1), ept::kAccessed | ept::kDirty));
  CHECK(r.t.dirty);
  CHECK(env.stat("walk.ad_writes") == 5);

  r = env.walk_gpa(kD, AccessType::Read);
  CHECK(r.t.dirty);  // D already set
  CHECK(env.stat("walk.ad_writes") == 5);
}

TEST_CASE("1D walk leaves EPT A/D alone when EPTP A/D is disabled", "[walk]") {
  Env env(4);
  env.ad = false;
  env.ept.map(kD, kH);
  WalkResult r = env.walk_gpa(kD, AccessType::Write);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  for (int l = 4; l >= 1; --l) CHECK_FALSE(env.ept.get(kD, l) & (ept::kAccessed | ept::kDirty));
  CHECK(r.t.dirty);  // nothing to set on a later write
  CHECK(env.stat("walk.ad_writes") == 0);
}

TEST_CASE("2D walk sets guest A/D and EPT A/D", "[walk]") {
  Env env(4);
  Guest g(env.mem, env.ept, 4);
  g.map(kV, kD, PG_LEVEL_4K, kGuestRw | x86::kGlobal);
  env.ept.map(kD, kH);

  WalkResult r = env.walk_gva(g, kV, AccessType::Read);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  for (int l = 4; l >= 1; --l) CHECK(has(g.get(kV, l), x86::kAccessed));
  CHECK_FALSE(g.get(kV, 1) & x86::kDirty);
  // Guest paging-structure accesses are EPT writes under A/D (SDM 29.3.5):
  // the EPT leaves mapping the four guest tables get A and D.
  for (int l = 4; l >= 1; --l) {
    const Gpa table = g.table_gpa(kV, l);
    INFO("guest table of level " << l);
    CHECK(has(env.ept.get(table, 1), ept::kAccessed | ept::kDirty));
    CHECK(has(env.ept.get(table, 2), ept::kAccessed));
  }
  // The data page was read: A only.
  CHECK(has(env.ept.get(kD, 1), ept::kAccessed));
  CHECK_FALSE(env.ept.get(kD, 1) & ept::kDirty);
  CHECK_FALSE(r.t.dirty);
  CHECK(r.t.global);

  r = env.walk_gva(g, kV, AccessType::Write);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  CHECK(has(g.get(kV, 1), x86::kAccessed | x86::kDirty));
  CHECK(has(env.ept.get(kD, 1), ept::kAccessed | ept::kDirty));
  CHECK(r.t.dirty);
}

TEST_CASE("2D walk with EPT A/D disabled sets only guest A/D", "[walk]") {
  Env env(4);
  env.ad = false;
  Guest g(env.mem, env.ept, 4);
  g.map(kV, kD);
  env.ept.map(kD, kH);
  WalkResult r = env.walk_gva(g, kV, AccessType::Write);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  CHECK(has(g.get(kV, 1), x86::kAccessed | x86::kDirty));
  for (int l = 4; l >= 1; --l) CHECK(has(g.get(kV, l), x86::kAccessed));
  for (int l = 4; l >= 1; --l) {
    CHECK_FALSE(env.ept.get(g.table_gpa(kV, l), 1) & (ept::kAccessed | ept::kDirty));
    CHECK_FALSE(env.ept.get(kD, l) & (ept::kAccessed | ept::kDirty));
  }
  CHECK(r.t.dirty);
  CHECK_FALSE(r.t.global);
}

TEST_CASE("Translation.dirty needs both guest D and EPT D", "[walk]") {
  Env env(4);
  Guest g(env.mem, env.ept, 4);
  env.ept.map(kD, kH);
  SECTION("guest D set, EPT D clear") {
    g.map(kV, kD, PG_LEVEL_4K, kGuestRw | x86::kAccessed | x86::kDirty);
    CHECK_FALSE(env.walk_gva(g, kV).t.dirty);
  }
  SECTION("guest D clear, EPT D set") {
    g.map(kV, kD);
    env.ept.map(kD, kH, PG_LEVEL_4K, ept::kRwx, kWb | ept::kAccessed | ept::kDirty);
    CHECK_FALSE(env.walk_gva(g, kV).t.dirty);
  }
  SECTION("both set") {
    g.map(kV, kD, PG_LEVEL_4K, kGuestRw | x86::kAccessed | x86::kDirty);
    env.ept.map(kD, kH, PG_LEVEL_4K, ept::kRwx, kWb | ept::kAccessed | ept::kDirty);
    CHECK(env.walk_gva(g, kV).t.dirty);
  }
}

TEST_CASE("Effective rights are the AND of guest and EPT rights", "[walk]") {
  Env env(4);
  Guest g(env.mem, env.ept, 4);
  SECTION("guest read-only page") {
    g.map(kV, kD, PG_LEVEL_4K, x86::kPresent);
    env.ept.map(kD, kH);
    CHECK(env.walk_gva(g, kV).t.perms == (kPermRead | kPermExec));
  }
  SECTION("guest NX in a non-leaf entry") {
    g.map(kV, kD);
    g.set(kV, 3, g.get(kV, 3) | x86::kNoExec);
    env.ept.map(kD, kH);
    CHECK(env.walk_gva(g, kV).t.perms == (kPermRead | kPermWrite));
  }
  SECTION("EPT read/execute page") {
    g.map(kV, kD);
    env.ept.map(kD, kH, PG_LEVEL_4K, ept::kRead | ept::kExec);
    CHECK(env.walk_gva(g, kV).t.perms == (kPermRead | kPermExec));
  }
  SECTION("EPT non-leaf without execute") {
    g.map(kV, kD);
    env.ept.map(kD, kH);
    env.ept.set(kD, 2, env.ept.get(kD, 2) & ~ept::kExec);
    CHECK(env.walk_gva(g, kV).t.perms == (kPermRead | kPermWrite));
  }
}

TEST_CASE("Fractured translations take the smaller page size", "[walk]") {
  Env env(4);
  Guest g(env.mem, env.ept, 4);
  struct Case {
    int guest_level, ept_level, expect;
  };
  for (Case c : {Case{2, 1, 1}, Case{2, 2, 2}, Case{1, 2, 1}, Case{3, 2, 2}, Case{3, 3, 3}, Case{1, 3, 1}, Case{2, 3, 2}}) {
    INFO("guest level " << c.guest_level << ", EPT level " << c.ept_level);
    const u64 k = u64(c.guest_level * 8 + c.ept_level);  // a fresh 1G region of GVA and GPA per case
    const Gva gva = kV + k * (u64{1} << 30);
    const Gpa gpa_base = k * (u64{1} << 30);
    const Gpa gpa = gpa_base + 0x1a5000;  // inside the first 2M of the region
    if (c.guest_level == 1)
      g.map(gva + 0x1a5000, gpa);
    else
      g.map(gva, gpa_base, c.guest_level);
    const Hpa frame = kH + (u64{1} << 30);
    env.ept.map(gpa, frame, c.ept_level);
    WalkResult r = env.walk_gva(g, gva + 0x1a5678);
    REQUIRE(r.outcome == WalkOutcome::Ok);
    CHECK(r.gpa == gpa + 0x678);
    CHECK(int(r.t.level) == c.expect);
    // HPA of the byte: EPT leaf frame + GPA offset within the EPT page.
    const Hpa hpa = frame + ((gpa + 0x678) & (level_size(c.ept_level) - 1));
    CHECK(r.t.frame == align_down(hpa, c.expect));
  }
}

TEST_CASE("Walk latency: references, A/D writes and PSC lookups", "[walk]") {
  Env env(4);
  // latency.walk_ref = 20, latency.pwc_hit = 1 (defaults).
  SECTION("1D cold, A already set: 4 refs x 20 + 1 lookup") {
    env.ept.map(kD, kH, PG_LEVEL_4K, ept::kRwx, kWb | ept::kAccessed);
    for (int l = 4; l >= 2; --l) env.ept.set(kD, l, env.ept.get(kD, l) | ept::kAccessed);
    CHECK(env.walk_gpa(kD).cycles == 81);
  }
  SECTION("1D cold with four A writes: 8 transactions x 20 + 1") {
    env.ept.map(kD, kH);
    CHECK(env.walk_gpa(kD).cycles == 161);
  }
  SECTION("2D cold, A/D disabled and guest A set: 24 x 20 + 6 lookups") {
    env.ad = false;
    Guest g(env.mem, env.ept, 4);
    g.map(kV, kD, PG_LEVEL_4K, kGuestRw | x86::kAccessed);
    for (int l = 4; l >= 2; --l) g.set(kV, l, g.get(kV, l) | x86::kAccessed);
    env.ept.map(kD, kH);
    WalkResult r = env.walk_gva(g, kV);
    CHECK(r.refs() == 24);
    CHECK(r.cycles == 24 * 20 + 6);
    // Warm neighbour: 2 refs + 2 lookups.
    g.map(kV + 0x1000, kD, PG_LEVEL_4K, kGuestRw | x86::kAccessed);
    CHECK(env.walk_gva(g, kV + 0x1000).cycles == 2 * 20 + 2);
    const Histogram& h = env.stats.histogram("t.walk.cycles");
    CHECK(h.count == 2);
    CHECK(h.sum == 24 * 20 + 6 + 42);
  }
}
