// SetAssoc::insert places an entry in the lowest valid way that holds its tag
// (an overwrite), else in the lowest invalid way, else in the replacement
// policy's victim: the same for a set of up to 64 ways (searched in one pass
// of bit masks) and for a wider, fully associative one (searched way by way).
// for_each() visits the slots of a set in way order, so it shows the ways.
#include <catch2/catch.hpp>
#include <vector>

#include "model/tlb/set_assoc.h"

using namespace septsim;
using namespace septsim::model;

namespace {

// Tags of the valid slots in slot order (one set: way order).
std::vector<u64> ways_of(const SetAssoc<int>& a) {
  std::vector<u64> tags;
  a.for_each([&](u64 tag, const int&) { tags.push_back(tag); });
  return tags;
}

}  // namespace

TEST_CASE("SetAssoc::insert takes the matching way, else the lowest free way, else the LRU victim", "[tlb]") {
  for (u32 ways : {4u, 12u, 64u, 80u}) {
    CAPTURE(ways);
    SetAssoc<int> a(ways, ways, "lru", 0);  // one set
    std::vector<u64> want;
    for (u64 t = 1; t <= ways; ++t) {
      CHECK_FALSE(a.insert(0, t * 10, int(t)));
      want.push_back(t * 10);
    }
    CHECK(ways_of(a) == want);
    // Free ways 1 and 2. Tag 40 (way 3) is overwritten where it is, not
    // moved to a free way below it.
    CHECK(a.erase(0, 20));
    CHECK(a.erase(0, 30));
    CHECK_FALSE(a.insert(0, 40, 99));
    CHECK(*a.find(0, 40) == 99);
    want.erase(want.begin() + 1, want.begin() + 3);
    CHECK(ways_of(a) == want);
    // New tags fill way 1, then way 2.
    CHECK_FALSE(a.insert(0, 1000, 1));
    CHECK_FALSE(a.insert(0, 2000, 2));
    want.insert(want.begin() + 1, {1000, 2000});
    CHECK(ways_of(a) == want);
    // Full: the least recently touched way (way 0, tag 10, filled first) goes.
    CHECK(a.size() == ways);
    CHECK(a.insert(0, 3000, 3));
    CHECK(a.find(0, 10) == nullptr);
    want.front() = 3000;
    CHECK(ways_of(a) == want);
  }
}
