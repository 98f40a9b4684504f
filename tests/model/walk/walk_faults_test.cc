// EPT violations (exit qualification, SDM Vol. 3C Table 28-7), EPT
// misconfigurations (29.3.3.1) and guest page faults.
#include <catch2/catch.hpp>

#include "walk_env.h"

using namespace septsim;
using namespace septsim::walktest;
namespace q = septsim::ept::qual;

namespace {

constexpr Gva kV = 0x00007fabc0000000ull;
constexpr Gpa kD = 0x80000000ull;
constexpr Hpa kH = 0x4000000000ull;

}  // namespace

TEST_CASE("1D EPT violation on a not-present data GPA", "[walk]") {
  Env env(4);
  env.ept.map(kD, kH);  // builds the tables; the neighbouring PTE stays 0
  struct Case {
    AccessType a;
    u64 qual;
  };
  for (Case c : {Case{AccessType::Read, q::kRead}, Case{AccessType::Write, q::kWrite}, Case{AccessType::Fetch, q::kFetch}}) {
    WalkResult r = env.walk_gpa(kD + 0x1abc, c.a);
    REQUIRE(r.outcome == WalkOutcome::EptViolation);
    CHECK(r.exit_qualification == c.qual);  // bits 3-5 clear: the AND includes the 0 entry; bit 7 clear: 1D
    CHECK(r.gpa == kD + 0x1abc);
  }
  CHECK(env.stat("walk.ept_violations") == 3);

  // Not present higher up: a cold walk stops at the PDPTE.
  env.walker->psc().invalidate_all();
  WalkResult r = env.walk_gpa(0x5000000000ull, AccessType::Read);
  REQUIRE(r.outcome == WalkOutcome::EptViolation);
  CHECK(r.exit_qualification == q::kRead);
  CHECK(r.refs() == 2);
}

TEST_CASE("1D EPT violation on insufficient rights", "[walk]") {
  Env env(4);
  SECTION("write to a read/execute page: bits 1, 3, 5") {
    env.ept.map(kD, kH, PG_LEVEL_4K, ept::kRead | ept::kExec);
    WalkResult r = env.walk_gpa(kD, AccessType::Write);
    REQUIRE(r.outcome == WalkOutcome::EptViolation);
    CHECK(r.exit_qualification == (q::kWrite | q::kGpaReadable | q::kGpaExecutable));
    CHECK((r.exit_qualification & q::kGpaWritable) == 0);
    CHECK((r.exit_qualification & q::kGlaValid) == 0);
    CHECK((env.ept.get(kD, 1) & ept::kDirty) == 0);
    CHECK(env.walk_gpa(kD, AccessType::Read).outcome == WalkOutcome::Ok);
  }
  SECTION("fetch from a read/write page: bits 2, 3, 4") {
    env.ept.map(kD, kH, PG_LEVEL_4K, ept::kRead | ept::kWrite);
    WalkResult r = env.walk_gpa(kD, AccessType::Fetch);
    REQUIRE(r.outcome == WalkOutcome::EptViolation);
    CHECK(r.exit_qualification == (q::kFetch | q::kGpaReadable | q::kGpaWritable));
  }
  SECTION("rights are ANDed across levels: PDE without W") {
    env.ept.map(kD, kH);
    env.ept.set(kD, 2, env.ept.get(kD, 2) & ~ept::kWrite);
    WalkResult r = env.walk_gpa(kD, AccessType::Write);
    REQUIRE(r.outcome == WalkOutcome::EptViolation);
    CHECK(r.exit_qualification == (q::kWrite | q::kGpaReadable | q::kGpaExecutable));
  }
}

TEST_CASE("2D EPT violation on a guest paging-structure GPA", "[walk]") {
  Env env(4);
  Guest g(env.mem, env.ept, 4);
  g.map(kV, kD);
  env.ept.map(kD, kH);
  const Gpa pt = g.table_gpa(kV, 1);
  const Gpa pte = pt + pt_index(kV, 1) * 8;

  SECTION("PT not mapped, A/D enabled: treated as a write (bits 0, 1, 7)") {
    env.ept.set(pt, 1, 0);
    WalkResult r = env.walk_gva(g, kV);
    REQUIRE(r.outcome == WalkOutcome::EptViolation);
    CHECK(r.exit_qualification == (q::kRead | q::kWrite | q::kGlaValid));
    CHECK((r.exit_qualification & q::kGlaTranslated) == 0);
    CHECK(r.gpa == pte);
    CHECK(r.guest_refs == 3);
    CHECK(r.ept_refs == 4 * 4);
  }
  SECTION("PT not mapped, A/D disabled: a read (bits 0, 7)") {
    env.ad = false;
    env.ept.set(pt, 1, 0);
    WalkResult r = env.walk_gva(g, kV, AccessType::Write);
    REQUIRE(r.outcome == WalkOutcome::EptViolation);
    CHECK(r.exit_qualification == (q::kRead | q::kGlaValid));
    CHECK(r.gpa == pte);
  }
  SECTION("PT mapped read-only, A/D enabled: write violation with rights bits") {
    env.ept.map(pt, g.table_hpa(pt), PG_LEVEL_4K, ept::kRead | ept::kExec);
    WalkResult r = env.walk_gva(g, kV);
    REQUIRE(r.outcome == WalkOutcome::EptViolation);
    CHECK(r.exit_qualification ==
          (q::kRead | q::kWrite | q::kGpaReadable | q::kGpaExecutable | q::kGlaValid));
    CHECK(r.gpa == pte);
  }
  SECTION("PT mapped read-only, A/D disabled: no violation") {
    env.ad = false;
    env.ept.map(pt, g.table_hpa(pt), PG_LEVEL_4K, ept::kRead | ept::kExec);
    CHECK(env.walk_gva(g, kV).outcome == WalkOutcome::Ok);
  }
}

TEST_CASE("2D EPT violation on the final data GPA", "[walk]") {
  Env env(4);
  Guest g(env.mem, env.ept, 4);
  g.map(kV, kD + 0x3000);
  env.ept.map(kD, kH);  // kD + 0x3000 stays unmapped

  SECTION("not mapped: bits 7 and 8 set") {
    struct Case {
      AccessType a;
      u64 access;
    };
    for (Case c : {Case{AccessType::Read, q::kRead}, Case{AccessType::Write, q::kWrite}, Case{AccessType::Fetch, q::kFetch}}) {
      WalkResult r = env.walk_gva(g, kV + 0x45, c.a);
      REQUIRE(r.outcome == WalkOutcome::EptViolation);
      CHECK(r.exit_qualification == (c.access | q::kGlaValid | q::kGlaTranslated));
      CHECK(r.gpa == kD + 0x3045);
    }
  }

  SECTION("write to a read-only EPT page") {
    env.ept.map(kD + 0x3000, kH + 0x3000, PG_LEVEL_4K, ept::kRead | ept::kExec);
    WalkResult r = env.walk_gva(g, kV, AccessType::Write);
    REQUIRE(r.outcome == WalkOutcome::EptViolation);
    CHECK(r.exit_qualification ==
          (q::kWrite | q::kGpaReadable | q::kGpaExecutable | q::kGlaValid | q::kGlaTranslated));
    // The guest D bit was set before the final access faulted.
    CHECK((g.get(kV, 1) & x86::kDirty) != 0);
  }
}

TEST_CASE("EPT misconfigurations end the walk", "[walk]") {
  Env env(4);
  env.ept.map(kD, kH);
  SECTION("leaf W without R") {
    env.ept.map(kD, kH, PG_LEVEL_4K, ept::kWrite);
  }
  SECTION("non-leaf W without R") {
    env.ept.set(kD, 3, (env.ept.get(kD, 3) & ~ept::kRwx) | ept::kWrite);
  }
  SECTION("reserved address bit above MAXPHYADDR (46)") {
    env.ept.set(kD, 2, env.ept.get(kD, 2) | (u64{1} << 46));
  }
  SECTION("leaf memory type 2") {
    env.ept.map(kD, kH, PG_LEVEL_4K, ept::kRwx, u64{2} << ept::kMemTypeShift);
  }
  SECTION("leaf memory type 7") {
    env.ept.map(kD, kH, PG_LEVEL_4K, ept::kRwx, u64{7} << ept::kMemTypeShift);
  }
  SECTION("memory type bits in a non-leaf entry") {
    env.ept.set(kD, 2, env.ept.get(kD, 2) | kWb);
  }
  SECTION("PS in a PML4E") {
    env.ept.set(kD, 4, env.ept.get(kD, 4) | ept::kLarge);
  }
  SECTION("2M leaf with reserved bits 20:12") {
    env.ept.set(kD, 2, kH | ept::kRwx | kWb | ept::kLarge | 0x1000);
  }
  WalkResult r = env.walk_gpa(kD + 0x10);
  CHECK(r.outcome == WalkOutcome::EptMisconfig);
  CHECK(r.gpa == kD + 0x10);
  CHECK(env.stat("walk.ept_misconfigs") == 1);
}

TEST_CASE("MAXPHYADDR comes from host.maxphyaddr", "[walk]") {
  Config c = flat_config();
  c.set("host.maxphyaddr", "52");
  Env env(4, c);
  env.ept.map(kD, kH | (u64{1} << 46));
  WalkResult r = env.walk_gpa(kD);
  REQUIRE(r.outcome == WalkOutcome::Ok);
  CHECK(r.t.frame == (kH | (u64{1} << 46)));
}

TEST_CASE("EPT misconfiguration in a nested walk of a guest table", "[walk]") {
  Env env(4);
  Guest g(env.mem, env.ept, 4);
  g.map(kV, kD);
  env.ept.map(kD, kH);
  const Gpa pd = g.table_gpa(kV, 2);
  env.ept.map(pd, g.table_hpa(pd), PG_LEVEL_4K, ept::kRwx, u64{3} << ept::kMemTypeShift);
  WalkResult r = env.walk_gva(g, kV);
  REQUIRE(r.outcome == WalkOutcome::EptMisconfig);
  CHECK(r.gpa == pd + pt_index(kV, 2) * 8);
}

TEST_CASE("Guest page faults", "[walk]") {
  Env env(4);
  Guest g(env.mem, env.ept, 4);
  g.map(kV, kD);
  env.ept.map(kD, kH);
  namespace pf = x86::pferr;

  SECTION("not-present PTE: error code has no P bit") {
    g.set(kV, 1, 0);
    struct Case {
      AccessType a;
      u32 code;
    };
    for (Case c : {Case{AccessType::Read, 0}, Case{AccessType::Write, pf::kWrite}, Case{AccessType::Fetch, pf::kFetch}}) {
      WalkResult r = env.walk_gva(g, kV, c.a);
      REQUIRE(r.outcome == WalkOutcome::GuestPageFault);
      CHECK(r.guest_error_code == c.code);
    }
    env.walker->psc().invalidate_all();
    WalkResult r = env.walk_gva(g, kV);
    CHECK(r.guest_refs == 4);
    CHECK(r.ept_refs == 4 * 4);  // no final nested walk
  }
  SECTION("not-present PML4E") {
    g.set(kV, 4, 0);
    WalkResult r = env.walk_gva(g, kV);
    REQUIRE(r.outcome == WalkOutcome::GuestPageFault);
    CHECK(r.refs() == 1 + 4);
  }
  SECTION("write to a read-only page") {
    g.map(kV, kD, PG_LEVEL_4K, x86::kPresent);
    WalkResult r = env.walk_gva(g, kV, AccessType::Write);
    REQUIRE(r.outcome == WalkOutcome::GuestPageFault);
    CHECK(r.guest_error_code == (pf::kPresent | pf::kWrite));
    CHECK((g.get(kV, 1) & x86::kDirty) == 0);
    CHECK(env.walk_gva(g, kV, AccessType::Read).outcome == WalkOutcome::Ok);
  }
  SECTION("write through a read-only PDE") {
    g.set(kV, 2, g.get(kV, 2) & ~x86::kWritable);
    WalkResult r = env.walk_gva(g, kV, AccessType::Write);
    REQUIRE(r.outcome == WalkOutcome::GuestPageFault);
    CHECK(r.guest_error_code == (pf::kPresent | pf::kWrite));
  }
  SECTION("fetch from an NX page") {
    g.map(kV, kD, PG_LEVEL_4K, kGuestRw | x86::kNoExec);
    WalkResult r = env.walk_gva(g, kV, AccessType::Fetch);
    REQUIRE(r.outcome == WalkOutcome::GuestPageFault);
    CHECK(r.guest_error_code == (pf::kPresent | pf::kFetch));
  }
  SECTION("PS in a PML4E is reserved") {
    g.set(kV, 4, g.get(kV, 4) | x86::kLarge);
    WalkResult r = env.walk_gva(g, kV);
    REQUIRE(r.outcome == WalkOutcome::GuestPageFault);
    CHECK(r.guest_error_code == (pf::kPresent | pf::kRsvd));
  }
  CHECK(env.stat("walk.guest_page_faults") >= 1);
}
