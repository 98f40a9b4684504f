#include <catch2/catch.hpp>
#include <set>
#include <vector>

#include "model/config.h"
#include "model/tlb/replacement.h"

using namespace septsim;
using namespace septsim::model;

TEST_CASE("LRU evicts the least recently touched way of each set", "[tlb][replacement]") {
  auto p = make_lru(2, 4);
  for (u32 w = 0; w < 4; ++w) p->touch(0, w);
  CHECK(p->victim(0) == 0);
  p->touch(0, 0);
  CHECK(p->victim(0) == 1);
  p->touch(0, 2);
  p->touch(0, 1);
  CHECK(p->victim(0) == 3);

  // Set 1 keeps its own order.
  p->touch(1, 3);
  p->touch(1, 2);
  p->touch(1, 1);
  p->touch(1, 0);
  CHECK(p->victim(1) == 3);
  CHECK(p->victim(0) == 3);
}

TEST_CASE("Tree-PLRU on 4 ways follows the tree bits, not true LRU", "[tlb][replacement]") {
  auto p = make_tree_plru(1, 4);
  CHECK(p->victim(0) == 0);  // all bits clear
  for (u32 w = 0; w < 4; ++w) p->touch(0, w);
  CHECK(p->victim(0) == 0);
  // Touching 0 points the root at {2,3} and the {2,3} node still points at 2;
  // true LRU would pick 1.
  p->touch(0, 0);
  CHECK(p->victim(0) == 2);
  p->touch(0, 2);
  CHECK(p->victim(0) == 1);
  p->touch(0, 1);
  CHECK(p->victim(0) == 3);
}

TEST_CASE("Tree-PLRU on 12 ways never picks a missing way or the way just touched", "[tlb][replacement]") {
  auto p = make_tree_plru(2, 12);
  CHECK(p->victim(0) == 0);
  for (u32 w = 0; w < 12; ++w) p->touch(0, w);
  CHECK(p->victim(0) == 0);
  // Root points right (8..15); the 12..15 half has no way, so 8..11, then 8..9, then 8.
  p->touch(0, 0);
  CHECK(p->victim(0) == 8);

  for (u32 i = 0; i < 500; ++i) {
    u32 w = (i * 7 + i / 12) % 12;
    p->touch(1, w);
    u32 v = p->victim(1);
    CHECK(v < 12);
    CHECK(v != w);
  }
}

TEST_CASE("Random replacement repeats its victims for the same seed", "[tlb][replacement]") {
  auto a = make_random(4, 4, 42), b = make_random(4, 4, 42), c = make_random(4, 4, 43);
  std::vector<u32> va, vb, vc;
  std::set<u32> seen;
  for (int i = 0; i < 1000; ++i) {
    va.push_back(a->victim(u32(i % 4)));
    vb.push_back(b->victim(u32(i % 4)));
    vc.push_back(c->victim(u32(i % 4)));
    seen.insert(va.back());
  }
  CHECK(va == vb);
  CHECK(va != vc);
  CHECK(seen == std::set<u32>{0, 1, 2, 3});
}

TEST_CASE("ReplacementPolicy::create selects the policy by name", "[tlb][replacement]") {
  auto run = [](const std::string& name) {
    auto p = ReplacementPolicy::create(name, 1, 4, 1);
    for (u32 w = 0; w < 4; ++w) p->touch(0, w);
    p->touch(0, 0);
    return p->victim(0);
  };
  CHECK(run("lru") == 1);
  CHECK(run("plru") == 2);
  CHECK(run("tree-plru") == 2);
  CHECK(run("random") < 4);
  CHECK_THROWS_AS(ReplacementPolicy::create("fifo", 1, 4, 1), ConfigError);
}
