// PhysMem's per-frame content tags stay exact u64s while the frame metadata
// is 8 bytes: tags that do not fit 32 bits are kept aside, and freeing or
// reallocating a frame forgets them.
#include <catch2/catch.hpp>

#include "model/phys_mem.h"

using namespace septsim;

TEST_CASE("content tags of any 64-bit value read back exactly", "[physmem]") {
  model::PhysMem mem(64ull << 20);
  const Pfn a = mem.alloc(), b = mem.alloc();
  for (u64 tag : {u64{0}, u64{0x77}, u64{0xfffffffe}, u64{0xffffffff}, u64{0x100000000}, ~u64{0}}) {
    mem.set_tag(a, tag);
    mem.set_tag(b, tag ^ 0x5a5a5a5a5a5a5a5aull);
    CHECK(mem.tag(a) == tag);
    CHECK(mem.tag(b) == (tag ^ 0x5a5a5a5a5a5a5a5aull));
  }
}

TEST_CASE("a freed frame comes back with tag 0 and owner 0", "[physmem]") {
  model::PhysMem mem(64ull << 20);
  const Pfn a = mem.alloc();
  mem.set_tag(a, 0x123456789abcull);
  mem.set_owner(a, 0x7fffffff);
  CHECK(mem.owner(a) == 0x7fffffffu);
  mem.free(a);
  const Pfn again = mem.alloc();
  REQUIRE(again == a);
  CHECK(mem.tag(again) == 0);
  CHECK(mem.owner(again) == 0);
  CHECK(mem.is_allocated(again));
  mem.set_tag(again, 5);  // a small tag replaces a large one
  CHECK(mem.tag(again) == 5);
}

TEST_CASE("a frame freed twice is handed out once and remembered for --check", "[physmem][check]") {
  model::PhysMem mem(64ull << 20);
  const Pfn a = mem.alloc();
  mem.free(a);
  mem.free(a);  // a double free: the allocator must not get the frame back twice
  REQUIRE(mem.bad_frees().size() == 1);
  CHECK(mem.bad_frees()[0] == a);
  const Pfn first = mem.alloc(), second = mem.alloc();
  CHECK(first == a);
  CHECK(second != a);
}
