// Invalidation semantics (SDM Vol. 3A 4.10.4, Vol. 3C 29.4.3). Every entry
// lives in L1 and in the STLB, so one dropped translation counts 2 in
// tlb.invalidated. The L1 arrays are made wide so no fill evicts.
#include <catch2/catch.hpp>

#include "tlb_test_util.h"

using namespace septsim;
using namespace septsim::model;
using namespace septsim::model::test;

namespace {

struct InvFixture : TlbFixture {
  InvFixture()
      : TlbFixture({{"tlb.l1d.4k.entries", "256"},
                    {"tlb.l1d.4k.ways", "16"},
                    {"tlb.l1d.2m.entries", "64"},
                    {"tlb.l1d.2m.ways", "16"},
                    {"tlb.l1d.1g.entries", "16"},
                    {"tlb.l1d.1g.ways", "16"},
                    {"tlb.stlb_1g.entries", "64"},
                    {"tlb.stlb_1g.ways", "16"}}) {}
  void lin(const TlbContext& c, u64 a, u8 level = 1, bool global = false) {
    tlb.fill(kLin, c, a, tr(0x10'0000'0000 + a, level, kRWX, true, global));
  }
  void gpa(u64 eptp, u64 a) { tlb.fill(kGpa, TlbContext{1, 1, eptp}, a, tr(0x20'0000'0000 + a, 1)); }
};

constexpr u64 X = 0x7000'1000;
constexpr u64 Y = 0x4020'0000;     // 2M aligned
constexpr u64 Z = 0xc000'0000;     // 1G aligned

}  // namespace

TEST_CASE("INVLPG drops the page for the current VPID and PCID, globals of any PCID, in every EPTP", "[tlb][inval]") {
  InvFixture f;
  const TlbContext cur{1, 1, kEptpA};
  f.lin(cur, X);                               // dropped
  f.lin({1, 2, kEptpA}, X);                    // other PCID, not global: kept
  f.lin({1, 3, kEptpA}, X, 1, true);           // global of another PCID: dropped
  f.lin({2, 1, kEptpA}, X);                    // other VPID: kept
  f.lin({1, 1, kEptpB}, X);                    // other EPTP: dropped
  f.gpa(kEptpA, X);                            // guest-physical: kept
  f.lin(cur, X + 0x1000);                      // other page: kept
  REQUIRE(f.tlb.valid_entries() == 14);

  f.tlb.invlpg(cur, X + 0x234);
  CHECK(f.stat("tlb.invalidated") == 6);
  CHECK(f.tlb.valid_entries() == 8);
  CHECK_FALSE(f.hits(kLin, cur, X));
  CHECK(f.hits(kLin, {1, 2, kEptpA}, X));
  CHECK_FALSE(f.hits(kLin, {1, 3, kEptpA}, X));
  CHECK(f.hits(kLin, {2, 1, kEptpA}, X));
  CHECK_FALSE(f.hits(kLin, {1, 1, kEptpB}, X));
  CHECK(f.hits(kGpa, cur, X));
  CHECK(f.hits(kLin, cur, X + 0x1000));
}

TEST_CASE("INVLPG removes 2M and 1G entries that contain the address", "[tlb][inval]") {
  InvFixture f;
  const TlbContext cur{1, 1, kEptpA};
  f.lin(cur, Y, 2);
  f.lin(cur, Y + 0x20'0000, 2);
  f.lin(cur, Z, 3);
  f.lin(cur, Z + 0x4000'0000, 3);

  f.tlb.invlpg(cur, Y + 0x1'2345);
  CHECK_FALSE(f.hits(kLin, cur, Y));
  CHECK(f.hits(kLin, cur, Y + 0x20'0000));
  f.tlb.invlpg(cur, Z + 0x1234'5678);
  CHECK_FALSE(f.hits(kLin, cur, Z + 0x3fff'ffff));
  CHECK(f.hits(kLin, cur, Z + 0x4000'0000));
  CHECK(f.stat("tlb.invalidated") == 4);
  CHECK(f.tlb.valid_entries() == 4);
}

TEST_CASE("INVPCID individual-address drops non-global entries of that PCID at the address", "[tlb][inval]") {
  InvFixture f;
  f.lin({1, 1, kEptpA}, X);            // dropped
  f.lin({1, 1, kEptpB}, X);            // every EPTP: dropped
  f.lin({1, 1, kEptpC}, X, 1, true);   // global: kept
  f.lin({1, 1, kEptpA}, X + 0x1000);   // other page: kept
  f.lin({1, 2, kEptpA}, X);            // other PCID: kept
  f.lin({2, 1, kEptpA}, X);            // other VPID: kept
  f.gpa(kEptpA, X);                    // kept
  f.lin({1, 1, kEptpA}, Y, 2);         // 2M page: dropped by the second call

  f.tlb.invpcid_address(1, 1, X + 0xff8);
  CHECK(f.stat("tlb.invalidated") == 4);
  CHECK_FALSE(f.hits(kLin, {1, 1, kEptpA}, X));
  CHECK_FALSE(f.hits(kLin, {1, 1, kEptpB}, X));
  CHECK(f.hits(kLin, {1, 1, kEptpC}, X));
  CHECK(f.hits(kLin, {1, 1, kEptpA}, X + 0x1000));
  CHECK(f.hits(kLin, {1, 2, kEptpA}, X));
  CHECK(f.hits(kLin, {2, 1, kEptpA}, X));
  CHECK(f.hits(kGpa, {1, 1, kEptpA}, X));

  f.tlb.invpcid_address(1, 1, Y + 0x5000);
  CHECK_FALSE(f.hits(kLin, {1, 1, kEptpA}, Y));
  CHECK(f.stat("tlb.invalidated") == 6);
}

TEST_CASE("INVPCID single-context drops every non-global entry of that PCID", "[tlb][inval]") {
  InvFixture f;
  f.lin({1, 1, kEptpA}, X);                 // dropped
  f.lin({1, 1, kEptpA}, Y, 2);              // dropped
  f.lin({1, 1, kEptpB}, X + 0x5000);        // dropped
  f.lin({1, 1, kEptpA}, X + 0x9000, 1, true);  // global: kept
  f.lin({1, 2, kEptpA}, X);                 // kept
  f.lin({2, 1, kEptpA}, X);                 // kept
  f.gpa(kEptpA, X);                         // kept

  f.tlb.invpcid_single(1, 1);
  CHECK(f.stat("tlb.invalidated") == 6);
  CHECK(f.tlb.valid_entries() == 8);
  CHECK_FALSE(f.hits(kLin, {1, 1, kEptpA}, X));
  CHECK_FALSE(f.hits(kLin, {1, 1, kEptpA}, Y));
  CHECK_FALSE(f.hits(kLin, {1, 1, kEptpB}, X + 0x5000));
  CHECK(f.hits(kLin, {1, 1, kEptpA}, X + 0x9000));
  CHECK(f.hits(kLin, {1, 2, kEptpA}, X));
  CHECK(f.hits(kLin, {2, 1, kEptpA}, X));
  CHECK(f.hits(kGpa, {1, 1, kEptpA}, X));
}

TEST_CASE("INVPCID all-context drops every PCID of the VPID, globals only if asked", "[tlb][inval]") {
  InvFixture f;
  f.lin({1, 1, kEptpA}, X);
  f.lin({1, 2, kEptpB}, X + 0x1000);
  f.lin({1, 3, kEptpA}, X + 0x2000, 1, true);
  f.lin({2, 1, kEptpA}, X);  // other VPID: kept
  f.gpa(kEptpA, X);          // kept

  SECTION("including globals (type 2)") {
    f.tlb.invpcid_all(1, true);
    CHECK(f.stat("tlb.invalidated") == 6);
    CHECK_FALSE(f.hits(kLin, {1, 3, kEptpA}, X + 0x2000));
  }
  SECTION("excluding globals (type 3)") {
    f.tlb.invpcid_all(1, false);
    CHECK(f.stat("tlb.invalidated") == 4);
    CHECK(f.hits(kLin, {1, 3, kEptpA}, X + 0x2000));
  }
  CHECK_FALSE(f.hits(kLin, {1, 1, kEptpA}, X));
  CHECK_FALSE(f.hits(kLin, {1, 2, kEptpB}, X + 0x1000));
  CHECK(f.hits(kLin, {2, 1, kEptpA}, X));
  CHECK(f.hits(kGpa, {1, 1, kEptpA}, X));
}

TEST_CASE("INVVPID individual-address drops the page in every PCID and EPTP, globals too", "[tlb][inval]") {
  InvFixture f;
  f.lin({1, 1, kEptpA}, X);                       // dropped
  f.lin({1, 2, kEptpB}, X, 1, true);              // global: dropped
  f.lin({1, 3, kEptpA}, align_down(X, 2), 2);     // 2M page holding X: dropped
  f.lin({1, 1, kEptpA}, X + 0x1000);              // kept
  f.lin({2, 1, kEptpA}, X);                       // kept
  f.gpa(kEptpA, X);                               // kept

  f.tlb.invvpid_address(1, X + 0x10);
  CHECK(f.stat("tlb.invalidated") == 6);
  CHECK_FALSE(f.hits(kLin, {1, 1, kEptpA}, X));
  CHECK_FALSE(f.hits(kLin, {1, 2, kEptpB}, X));
  CHECK_FALSE(f.hits(kLin, {1, 3, kEptpA}, X));
  CHECK(f.hits(kLin, {1, 1, kEptpA}, X + 0x1000));
  CHECK(f.hits(kLin, {2, 1, kEptpA}, X));
  CHECK(f.hits(kGpa, {1, 1, kEptpA}, X));
}

TEST_CASE("INVVPID single-context drops all linear entries of the VPID, globals unless retained", "[tlb][inval]") {
  InvFixture f;
  f.lin({1, 1, kEptpA}, X);
  f.lin({1, 2, kEptpB}, X + 0x1000, 1, true);
  f.lin({1, 1, kEptpA}, Z, 3);
  f.lin({2, 1, kEptpA}, X);  // kept
  f.gpa(kEptpA, X);          // kept

  SECTION("type 1") {
    f.tlb.invvpid_single(1, false);
    CHECK(f.stat("tlb.invalidated") == 6);
    CHECK_FALSE(f.hits(kLin, {1, 2, kEptpB}, X + 0x1000));
  }
  SECTION("type 3 retains globals") {
    f.tlb.invvpid_single(1, true);
    CHECK(f.stat("tlb.invalidated") == 4);
    CHECK(f.hits(kLin, {1, 2, kEptpB}, X + 0x1000));
  }
  CHECK_FALSE(f.hits(kLin, {1, 1, kEptpA}, X));
  CHECK_FALSE(f.hits(kLin, {1, 1, kEptpA}, Z));
  CHECK(f.hits(kLin, {2, 1, kEptpA}, X));
  CHECK(f.hits(kGpa, {1, 1, kEptpA}, X));
}

TEST_CASE("INVVPID all-context drops linear entries of every VPID but 0", "[tlb][inval]") {
  InvFixture f;
  f.lin({1, 1, kEptpA}, X);
  f.lin({2, 5, kEptpB}, X + 0x1000, 1, true);
  f.lin({0, 0, kEptpA}, X);  // VPID 0000H is outside type 2
  f.gpa(kEptpA, X);
  f.gpa(kEptpB, X);

  f.tlb.invvpid_all();
  CHECK(f.stat("tlb.invalidated") == 4);
  CHECK(f.tlb.valid_entries() == 6);
  CHECK_FALSE(f.hits(kLin, {1, 1, kEptpA}, X));
  CHECK_FALSE(f.hits(kLin, {2, 5, kEptpB}, X + 0x1000));
  CHECK(f.hits(kLin, {0, 0, kEptpA}, X));
  CHECK(f.hits(kGpa, {1, 1, kEptpA}, X));
  CHECK(f.hits(kGpa, {1, 1, kEptpB}, X));
}

TEST_CASE("INVEPT single-context drops both kinds for that EPTP only", "[tlb][inval]") {
  InvFixture f;
  f.lin({1, 1, kEptpA}, X);               // dropped
  f.lin({2, 3, kEptpA}, Y, 2, true);      // dropped, global or not
  f.gpa(kEptpA, X);                       // dropped
  f.lin({1, 1, kEptpANoAd}, X + 0x1000);  // same EPT root (bits 51:12): dropped
  f.lin({1, 1, kEptpB}, X);               // kept
  f.gpa(kEptpB, X);                       // kept

  f.tlb.invept_single(kEptpA);
  CHECK(f.stat("tlb.invalidated") == 8);
  CHECK(f.tlb.valid_entries() == 4);
  CHECK_FALSE(f.hits(kLin, {1, 1, kEptpA}, X));
  CHECK_FALSE(f.hits(kLin, {2, 3, kEptpA}, Y));
  CHECK_FALSE(f.hits(kGpa, {1, 1, kEptpA}, X));
  CHECK_FALSE(f.hits(kLin, {1, 1, kEptpANoAd}, X + 0x1000));
  CHECK(f.hits(kLin, {1, 1, kEptpB}, X));
  CHECK(f.hits(kGpa, {1, 1, kEptpB}, X));
}

TEST_CASE("INVEPT all-context and flush_all empty every array", "[tlb][inval]") {
  InvFixture f;
  f.lin({1, 1, kEptpA}, X);
  f.lin({0, 0, kEptpB}, Y, 2, true);
  f.lin({3, 7, kEptpC}, Z, 3);
  f.gpa(kEptpA, X);
  REQUIRE(f.tlb.valid_entries() == 8);

  SECTION("invept_all") { f.tlb.invept_all(); }
  SECTION("flush_all") { f.tlb.flush_all(); }
  CHECK(f.tlb.valid_entries() == 0);
  CHECK(f.stat("tlb.invalidated") == 8);
  CHECK_FALSE(f.hits(kLin, {1, 1, kEptpA}, X));
  CHECK_FALSE(f.hits(kLin, {0, 0, kEptpB}, Y));
  CHECK_FALSE(f.hits(kLin, {3, 7, kEptpC}, Z));
  CHECK_FALSE(f.hits(kGpa, {1, 1, kEptpA}, X));

  // The TLB works normally afterwards.
  f.lin({1, 1, kEptpA}, X);
  CHECK(f.hits(kLin, {1, 1, kEptpA}, X));
}
