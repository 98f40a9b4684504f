#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <tuple>
#include <vector>

#include "tlb_test_util.h"

using namespace septsim;
using namespace septsim::model;
using namespace septsim::model::test;

namespace {

const TlbContext kC1{1, 1, kEptpA};

u64 page4k(u64 vpn) { return vpn << 12; }
u64 frame_of(u64 vpn) { return 0x100000000ull + (vpn << 12); }

// Virtual page numbers of the 4K linear entries held twice (L1 and STLB).
std::vector<u64> l1_4k_vpns(const TlbHierarchy& tlb) {
  std::map<u64, int> n;
  tlb.for_each([&](TranslationKind, const TlbContext&, u64 a, const Translation& t) {
    if (t.level == 1) n[a >> 12]++;
  });
  std::vector<u64> out;
  for (auto [vpn, count] : n)
    if (count == 2) out.push_back(vpn);
  return out;
}

}  // namespace

TEST_CASE("The TLB registers its counters under the prefix, all zero", "[tlb]") {
  TlbFixture f;
  for (const char* name : {"dtlb.hits", "dtlb.misses", "stlb.hits", "stlb.misses", "tlb.fills", "tlb.evictions",
                           "tlb.invalidated", "tlb.fills_4k", "tlb.fills_2m", "tlb.fills_1g"}) {
    INFO(name);
    CHECK(f.stats.has(std::string("cpu0.") + name));
    CHECK(f.stat(name) == 0);
  }
  CHECK(f.tlb.valid_entries() == 0);
}

TEST_CASE("A fill hits in the L1 DTLB at the L1 latency", "[tlb]") {
  TlbFixture f;
  f.tlb.fill(kLin, kC1, 0x7000'1234, tr(0x5'0000'1000, 1));
  auto r = f.read(kLin, kC1, 0x7000'1ff8);
  CHECK(r.hit);
  CHECK(r.where == 1);
  CHECK(r.cycles == 2);
  CHECK(r.t.frame == 0x5'0000'1000);
  CHECK(r.t.level == 1);

  auto miss = f.read(kLin, kC1, 0x7000'2000);
  CHECK_FALSE(miss.hit);
  CHECK(miss.cycles == 2 + 7);

  CHECK(f.stat("dtlb.hits") == 1);
  CHECK(f.stat("dtlb.misses") == 1);
  CHECK(f.stat("stlb.hits") == 0);
  CHECK(f.stat("stlb.misses") == 1);
  CHECK(f.stat("tlb.fills") == 1);
}

TEST_CASE("The L1 4K DTLB has 16 sets of 4 ways: a fifth page of one set evicts the LRU one", "[tlb][geometry]") {
  TlbFixture f;
  for (u64 v = 0; v < 64; ++v) f.tlb.fill(kLin, kC1, page4k(v), tr(frame_of(v), 1));
  for (u64 v = 0; v < 64; ++v) {
    INFO("vpn " << v);
    CHECK(f.read(kLin, kC1, page4k(v)).where == 1);
  }
  CHECK(f.stat("tlb.evictions") == 0);

  // vpn 64 maps to set 0 with 0, 16, 32, 48; 0 was used least recently.
  f.tlb.fill(kLin, kC1, page4k(64), tr(frame_of(64), 1));
  CHECK(f.stat("tlb.evictions") == 1);
  for (u64 v : {64, 16, 32, 48}) CHECK(f.read(kLin, kC1, page4k(v)).where == 1);
  auto r = f.read(kLin, kC1, page4k(0));
  CHECK(r.hit);
  CHECK(r.where == 2);
  CHECK(r.t.frame == frame_of(0));
  // The refill of 0 evicted 64, the least recently used of set 0 now.
  CHECK(f.stat("tlb.evictions") == 2);
  CHECK(f.read(kLin, kC1, page4k(64)).where == 2);
}

TEST_CASE("The L1 geometry follows tlb.l1d.4k.entries and ways", "[tlb][geometry]") {
  TlbFixture f({{"tlb.l1d.4k.entries", "32"}, {"tlb.l1d.4k.ways", "2"}});  // 16 sets of 2
  f.tlb.fill(kLin, kC1, page4k(0), tr(frame_of(0), 1));
  f.tlb.fill(kLin, kC1, page4k(16), tr(frame_of(16), 1));
  f.tlb.fill(kLin, kC1, page4k(1), tr(frame_of(1), 1));  // set 1
  f.tlb.fill(kLin, kC1, page4k(32), tr(frame_of(32), 1));
  CHECK(f.stat("tlb.evictions") == 1);
  CHECK(f.read(kLin, kC1, page4k(16)).where == 1);
  CHECK(f.read(kLin, kC1, page4k(32)).where == 1);
  CHECK(f.read(kLin, kC1, page4k(1)).where == 1);
  CHECK(f.read(kLin, kC1, page4k(0)).where == 2);
}

TEST_CASE("A tree-PLRU L1 set evicts the way the tree points at", "[tlb][geometry]") {
  // Fills of 0, 16, 32, 48 take ways 0..3; a hit on 0 then points the tree at
  // way 2 (page 32), where LRU would pick page 16.
  SECTION("plru") {
    TlbFixture f(Overrides{{"tlb.replacement", "plru"}});
    for (u64 v : {0, 16, 32, 48}) f.tlb.fill(kLin, kC1, page4k(v), tr(frame_of(v), 1));
    CHECK(f.read(kLin, kC1, page4k(0)).where == 1);
    f.tlb.fill(kLin, kC1, page4k(64), tr(frame_of(64), 1));
    for (u64 v : {0, 16, 48, 64}) CHECK(f.read(kLin, kC1, page4k(v)).where == 1);
    CHECK(f.read(kLin, kC1, page4k(32)).where == 2);
  }
  SECTION("lru") {
    TlbFixture f(Overrides{{"tlb.replacement", "lru"}});
    for (u64 v : {0, 16, 32, 48}) f.tlb.fill(kLin, kC1, page4k(v), tr(frame_of(v), 1));
    CHECK(f.read(kLin, kC1, page4k(0)).where == 1);
    f.tlb.fill(kLin, kC1, page4k(64), tr(frame_of(64), 1));
    for (u64 v : {0, 32, 48, 64}) CHECK(f.read(kLin, kC1, page4k(v)).where == 1);
    CHECK(f.read(kLin, kC1, page4k(16)).where == 2);
  }
}

TEST_CASE("A 12-way tree-PLRU STLB evicts way 8 after a hit on way 0", "[tlb][geometry]") {
  // One STLB set of 12 ways; a one-entry L1 so that lookups reach the STLB.
  TlbFixture f({{"tlb.replacement", "plru"},
                {"tlb.stlb.entries", "12"},
                {"tlb.stlb.ways", "12"},
                {"tlb.l1d.4k.entries", "1"},
                {"tlb.l1d.4k.ways", "1"}});
  for (u64 v = 0; v < 12; ++v) f.tlb.fill(kLin, kC1, page4k(v), tr(frame_of(v), 1));
  CHECK(f.read(kLin, kC1, page4k(0)).where == 2);
  f.tlb.fill(kLin, kC1, page4k(12), tr(frame_of(12), 1));
  CHECK_FALSE(f.hits(kLin, kC1, page4k(8)));
  CHECK(f.read(kLin, kC1, page4k(1)).where == 2);  // LRU would have evicted 1
}

TEST_CASE("Random replacement gives the same victims for the same seed only", "[tlb][geometry]") {
  // One L1 set of 4 ways; 40 pages in 40 different STLB sets, so only L1 evicts.
  auto history = [](const char* seed) {
    TlbFixture f({{"tlb.replacement", "random"},
                  {"sim.seed", seed},
                  {"tlb.l1d.4k.entries", "4"},
                  {"tlb.l1d.4k.ways", "4"}});
    std::vector<std::vector<u64>> h;
    for (u64 v = 0; v < 40; ++v) {
      f.tlb.fill(kLin, kC1, page4k(v), tr(frame_of(v), 1));
      auto in_l1 = l1_4k_vpns(f.tlb);
      CHECK(in_l1.size() == std::min<u64>(v + 1, 4));
      CHECK(std::find(in_l1.begin(), in_l1.end(), v) != in_l1.end());
      h.push_back(in_l1);
    }
    CHECK(f.stat("tlb.evictions") == 36);
    return h;
  };
  auto a = history("5"), b = history("5"), c = history("6");
  CHECK(a == b);
  CHECK(a != c);
}

TEST_CASE("An STLB hit refills L1 and costs the L1 plus STLB latency", "[tlb]") {
  TlbFixture f;
  f.tlb.fill(kLin, kC1, page4k(0), tr(frame_of(0), 1));
  for (u64 v : {16, 32, 48, 64}) f.tlb.fill(kLin, kC1, page4k(v), tr(frame_of(v), 1));  // push 0 out of L1

  auto r = f.read(kLin, kC1, page4k(0) + 0x10);
  CHECK(r.hit);
  CHECK(r.where == 2);
  CHECK(r.cycles == 2 + 7);
  CHECK(r.t.frame == frame_of(0));

  auto again = f.read(kLin, kC1, page4k(0));
  CHECK(again.where == 1);
  CHECK(again.cycles == 2);

  // The refill pushed out 16, the LRU of set 0.
  CHECK(f.read(kLin, kC1, page4k(16)).where == 2);

  CHECK(f.stat("dtlb.hits") == 1);
  CHECK(f.stat("dtlb.misses") == 2);
  CHECK(f.stat("stlb.hits") == 2);
  CHECK(f.stat("stlb.misses") == 0);
}

TEST_CASE("A lookup whose access the rights forbid misses and drops the entry", "[tlb][perms]") {
  TlbFixture f;
  SECTION("write to a read-only page") {
    f.tlb.fill(kLin, kC1, 0x1000, tr(0x9000, 1, kPermRead, true));
    CHECK(f.tlb.lookup(kLin, kC1, 0x1008, AccessType::Read).hit);
    auto w = f.tlb.lookup(kLin, kC1, 0x1008, AccessType::Write);
    CHECK_FALSE(w.hit);
    CHECK(w.cycles == 2 + 7);
    CHECK(f.tlb.valid_entries() == 0);
    CHECK_FALSE(f.tlb.lookup(kLin, kC1, 0x1008, AccessType::Read).hit);
    CHECK(f.stat("dtlb.hits") == 1);
    CHECK(f.stat("dtlb.misses") == 2);
    CHECK(f.stat("stlb.misses") == 2);
  }
  SECTION("fetch from a non-executable page") {
    f.tlb.fill(kLin, kC1, 0x1000, tr(0x9000, 1, kPermRead | kPermWrite, true));
    CHECK_FALSE(f.tlb.lookup(kLin, kC1, 0x1000, AccessType::Fetch).hit);
    CHECK(f.tlb.valid_entries() == 0);
    f.tlb.fill(kLin, kC1, 0x1000, tr(0x9000, 1, kPermRead | kPermExec, true));
    CHECK(f.tlb.lookup(kLin, kC1, 0x1000, AccessType::Fetch).hit);
  }
  SECTION("read from an execute-only guest-physical page") {
    f.tlb.fill(kGpa, kC1, 0x1000, tr(0x9000, 1, kPermExec, true));
    CHECK(f.tlb.lookup(kGpa, kC1, 0x1000, AccessType::Fetch).hit);
    CHECK_FALSE(f.tlb.lookup(kGpa, kC1, 0x1000, AccessType::Read).hit);
    CHECK(f.tlb.valid_entries() == 0);
  }
  SECTION("a forbidden access that reaches the STLB drops the STLB entry") {
    f.tlb.fill(kLin, kC1, page4k(0), tr(frame_of(0), 1, kPermRead, true));
    for (u64 v : {16, 32, 48, 64}) f.tlb.fill(kLin, kC1, page4k(v), tr(frame_of(v), 1));
    CHECK(f.tlb.valid_entries() == 9);  // 0 only in the STLB
    CHECK_FALSE(f.tlb.lookup(kLin, kC1, page4k(0), AccessType::Write).hit);
    CHECK(f.tlb.valid_entries() == 8);
    CHECK_FALSE(f.tlb.lookup(kLin, kC1, page4k(0), AccessType::Read).hit);
    CHECK(f.stat("stlb.hits") == 0);
  }
}

TEST_CASE("A write to an entry whose dirty flag is clear misses", "[tlb][perms]") {
  TlbFixture f;
  f.tlb.fill(kLin, kC1, 0x2000, tr(0xa000, 1, kRWX, false));
  CHECK(f.tlb.lookup(kLin, kC1, 0x2000, AccessType::Read).hit);
  CHECK(f.tlb.lookup(kLin, kC1, 0x2000, AccessType::Fetch).hit);
  CHECK_FALSE(f.tlb.lookup(kLin, kC1, 0x2000, AccessType::Write).hit);
  CHECK(f.tlb.valid_entries() == 0);
  f.tlb.fill(kLin, kC1, 0x2000, tr(0xa000, 1, kRWX, true));
  auto w = f.tlb.lookup(kLin, kC1, 0x2000, AccessType::Write);
  CHECK(w.hit);
  CHECK(w.t.dirty);
}

TEST_CASE("A fractured 4K fill of a guest 2M page covers only that 4K page", "[tlb][pagesize]") {
  TlbFixture f;
  // Guest 2M page at 0x4020'0000 backed by 4K EPT pages: the walker fills level 1.
  f.tlb.fill(kLin, kC1, 0x4023'4567, tr(0x7'0000'5000, 1));
  auto r = f.read(kLin, kC1, 0x4023'4fff);
  CHECK(r.hit);
  CHECK(r.t.level == 1);
  CHECK(r.t.frame == 0x7'0000'5000);
  CHECK_FALSE(f.hits(kLin, kC1, 0x4023'5000));
  CHECK_FALSE(f.hits(kLin, kC1, 0x4020'0000));

  std::vector<std::pair<u64, int>> seen;
  f.tlb.for_each([&](TranslationKind, const TlbContext&, u64 a, const Translation& t) { seen.emplace_back(a, t.level); });
  CHECK(seen == std::vector<std::pair<u64, int>>{{0x4023'4000, 1}, {0x4023'4000, 1}});
}

TEST_CASE("A 2M fill covers its whole 2M page and shares the STLB with 4K pages", "[tlb][pagesize]") {
  SECTION("coverage") {
    TlbFixture f;
    f.tlb.fill(kLin, kC1, 0x4040'0000, tr(0x8'0020'0000, 2));
    for (u64 a : {0x4040'0000ull, 0x404f'f123ull, 0x405f'ffffull}) {
      auto r = f.read(kLin, kC1, a);
      CHECK(r.hit);
      CHECK(r.t.level == 2);
      CHECK(r.t.frame == 0x8'0020'0000);
    }
    CHECK_FALSE(f.hits(kLin, kC1, 0x4060'0000));
    CHECK_FALSE(f.hits(kLin, kC1, 0x403f'ffff));
  }
  SECTION("capacity shared") {
    // One STLB set of 12 ways and one-entry L1 arrays.
    TlbFixture f({{"tlb.stlb.entries", "12"},
                  {"tlb.stlb.ways", "12"},
                  {"tlb.l1d.4k.entries", "1"},
                  {"tlb.l1d.2m.entries", "1"}});
    for (u64 v = 0; v < 11; ++v) f.tlb.fill(kLin, kC1, page4k(v), tr(frame_of(v), 1));
    f.tlb.fill(kLin, kC1, 0x4000'0000, tr(0x8'0000'0000, 2));  // 12th STLB entry
    CHECK(f.stat("tlb.evictions") == 10);                         // L1 4K only
    f.tlb.fill(kLin, kC1, 0x4020'0000, tr(0x8'0020'0000, 2));   // evicts 4K vpn 0 from the STLB
    CHECK(f.stat("tlb.evictions") == 12);                         // + L1 2M, + STLB
    CHECK_FALSE(f.hits(kLin, kC1, page4k(0)));
    CHECK(f.read(kLin, kC1, page4k(1)).where == 2);
    CHECK(f.read(kLin, kC1, 0x4000'0000).where == 2);
  }
}

TEST_CASE("1G entries go to the 1G L1 and 1G STLB arrays", "[tlb][pagesize]") {
  TlbFixture f;
  for (u64 v : {0, 16, 32, 48}) f.tlb.fill(kLin, kC1, page4k(v), tr(frame_of(v), 1));  // a full 4K L1 set
  for (u64 g = 2; g <= 6; ++g) f.tlb.fill(kLin, kC1, g << 30, tr(g << 30, 3));
  // 5 1G pages: the 4-entry L1 1G array lost page 2; the 16-entry STLB 1G holds all.
  CHECK(f.stat("tlb.evictions") == 1);
  CHECK(f.tlb.valid_entries() == 8 + 4 + 5);
  for (u64 v : {0, 16, 32, 48}) CHECK(f.read(kLin, kC1, page4k(v)).where == 1);

  auto r = f.read(kLin, kC1, (2ull << 30) + 0x3fff'ffff);
  CHECK(r.hit);
  CHECK(r.where == 2);
  CHECK(r.t.level == 3);
  CHECK(r.t.frame == 2ull << 30);
  r = f.read(kLin, kC1, (6ull << 30) + 0x1234'5678);
  CHECK(r.where == 1);
  CHECK(r.t.level == 3);
  CHECK_FALSE(f.hits(kLin, kC1, 7ull << 30));

  int level3 = 0;
  f.tlb.for_each([&](TranslationKind, const TlbContext&, u64, const Translation& t) { level3 += t.level == 3; });
  CHECK(level3 == 4 + 5);
}

TEST_CASE("The STLB 1G array has its own 4 sets of 4 ways", "[tlb][pagesize][geometry]") {
  SECTION("a fifth 1G page of one set evicts from L1 and STLB") {
    TlbFixture f;
    for (u64 g : {0, 4, 8, 12, 16}) f.tlb.fill(kLin, kC1, g << 30, tr(g << 30, 3));  // STLB 1G set 0
    CHECK(f.stat("tlb.evictions") == 2);
    CHECK_FALSE(f.hits(kLin, kC1, 0));
    for (u64 g : {4, 8, 12, 16}) CHECK(f.read(kLin, kC1, g << 30).where == 1);
  }
  SECTION("fills are counted by the page size the walk found") {
    TlbFixture f;
    for (u64 v = 0; v < 3; ++v) f.tlb.fill(kLin, kC1, page4k(v), tr(frame_of(v), 1));
    f.tlb.fill(kLin, kC1, 0x4000'0000, tr(0x8000'0000, 2));
    f.tlb.fill(kGpa, kC1, 2ull << 30, tr(2ull << 30, 3));
    CHECK(f.stat("tlb.fills_4k") == 3);
    CHECK(f.stat("tlb.fills_2m") == 1);
    CHECK(f.stat("tlb.fills_1g") == 1);
    CHECK(f.stat("tlb.fills") == 3 + 1 + 1);
  }
  SECTION("1G fills take no room in the 4K/2M STLB") {
    TlbFixture f({{"tlb.stlb.entries", "12"}, {"tlb.stlb.ways", "12"}});
    for (u64 v = 0; v < 12; ++v) f.tlb.fill(kLin, kC1, page4k(v), tr(frame_of(v), 1));
    f.tlb.fill(kLin, kC1, 1ull << 30, tr(1ull << 30, 3));
    CHECK(f.stat("tlb.evictions") == 0);
    CHECK(f.tlb.valid_entries() == 24 + 2);
  }
}

TEST_CASE("Linear entries are tagged by VPID, PCID and EPTP", "[tlb][context]") {
  TlbFixture f;
  f.tlb.fill(kLin, kC1, 0x5000, tr(0xb000, 1));
  CHECK(f.hits(kLin, kC1, 0x5000));
  CHECK_FALSE(f.hits(kLin, TlbContext{2, 1, kEptpA}, 0x5000));
  CHECK_FALSE(f.hits(kLin, TlbContext{1, 2, kEptpA}, 0x5000));
  CHECK_FALSE(f.hits(kLin, TlbContext{1, 1, kEptpB}, 0x5000));
  CHECK_FALSE(f.hits(kGpa, kC1, 0x5000));
  CHECK(f.tlb.valid_entries() == 2);  // misses create nothing

  // Same page in two PCIDs: two entries, each with its own frame.
  f.tlb.fill(kLin, TlbContext{1, 2, kEptpA}, 0x5000, tr(0xc000, 1));
  CHECK(f.read(kLin, kC1, 0x5000).t.frame == 0xb000);
  CHECK(f.read(kLin, TlbContext{1, 2, kEptpA}, 0x5000).t.frame == 0xc000);
}

TEST_CASE("Guest-physical entries are tagged by EPTP only", "[tlb][context]") {
  TlbFixture f;
  f.tlb.fill(kGpa, TlbContext{1, 1, kEptpA}, 0x8000, tr(0xd000, 1));
  CHECK(f.hits(kGpa, TlbContext{7, 9, kEptpA}, 0x8000));
  CHECK_FALSE(f.hits(kGpa, TlbContext{1, 1, kEptpB}, 0x8000));
  CHECK_FALSE(f.hits(kLin, TlbContext{1, 1, kEptpA}, 0x8000));
  // A fill under another VPID/PCID overwrites the same entry.
  f.tlb.fill(kGpa, TlbContext{3, 4, kEptpA}, 0x8000, tr(0xe000, 1));
  CHECK(f.tlb.valid_entries() == 2);
  CHECK(f.read(kGpa, TlbContext{1, 1, kEptpA}, 0x8000).t.frame == 0xe000);
}

TEST_CASE("for_each reports every valid entry with its tags and page-aligned address", "[tlb]") {
  TlbFixture f;
  int calls = 0;
  f.tlb.for_each([&](TranslationKind, const TlbContext&, u64, const Translation&) { ++calls; });
  CHECK(calls == 0);

  const TlbContext gp_ctx{3, 4, kEptpB};
  f.tlb.fill(kLin, kC1, 0x7fff'f123, tr(0x1000, 1));
  f.tlb.fill(kGpa, gp_ctx, 0x4012'3456, tr(0x20'0000, 2));
  f.tlb.fill(kLin, kC1, 0xffff'ffff'c000'0000, tr(0x4000'0000, 3, kRWX, true, true));
  f.tlb.fill(kLin, kC1, 0xff00'0000'0000'0000, tr(0x8000'0000, 3));  // LA57 kernel half
  CHECK(f.tlb.valid_entries() == 8);

  using Row = std::tuple<int, u16, u16, u64, u64, int, bool, u64>;
  std::vector<Row> rows;
  f.tlb.for_each([&](TranslationKind k, const TlbContext& c, u64 a, const Translation& t) {
    rows.emplace_back(int(k), c.vpid, c.pcid, c.eptp, a, t.level, t.global, t.frame);
  });
  std::sort(rows.begin(), rows.end());
  std::vector<Row> want = {
      {0, 1, 1, kEptpA, 0x7fff'f000, 1, false, 0x1000},
      {0, 1, 1, kEptpA, 0x7fff'f000, 1, false, 0x1000},
      {0, 1, 1, kEptpA, 0xff00'0000'0000'0000, 3, false, 0x8000'0000},
      {0, 1, 1, kEptpA, 0xff00'0000'0000'0000, 3, false, 0x8000'0000},
      {0, 1, 1, kEptpA, 0xffff'ffff'c000'0000, 3, true, 0x4000'0000},
      {0, 1, 1, kEptpA, 0xffff'ffff'c000'0000, 3, true, 0x4000'0000},
      {1, 0, 0, kEptpB, 0x4000'0000, 2, false, 0x20'0000},  // guest-physical: no VPID/PCID tag
      {1, 0, 0, kEptpB, 0x4000'0000, 2, false, 0x20'0000},
  };
  CHECK(rows == want);
  CHECK(f.hits(kLin, kC1, 0xffff'ffff'c123'4567));
  CHECK(f.hits(kLin, kC1, 0xff00'0000'3fff'ffff));
}

TEST_CASE("fill rejects a page level other than 4K, 2M or 1G", "[tlb]") {
  TlbFixture f;
  CHECK_THROWS(f.tlb.fill(kLin, kC1, 0, tr(0, 0)));
  CHECK_THROWS(f.tlb.fill(kLin, kC1, 0, tr(0, 4)));
  CHECK(f.tlb.valid_entries() == 0);
}
