// KVM_LPAGE_MIXED_FLAG in lpage_info: set and cleared per 2M and 1G frame by
// memory-attribute changes, against hand-computed frames (mmu.c: hugepage_set_mixed).
#include <catch2/catch.hpp>

#include "mmu/lpage_mixed.h"
#include "tests/mmu/mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

// A 2 GiB slot at gpa 0 (1G frames 0 and 1, 2M frames 0..1023), hva aligned.
struct Slot {
  Slot() : mem(4 * GiB), s(mem, slot(0, 0, 2 * GiB, HostBacking::Thp2M), 1ull << 40, PG_LEVEL_2M) {
    init_memslot_memory_attributes(s, attrs);
  }
  // KVM_SET_MEMORY_ATTRIBUTES of [gpa, gpa + size).
  void set(Gpa gpa, u64 size, bool priv) {
    attrs.set(gpa_to_gfn(gpa), gpa_to_gfn(gpa + size), priv);
    post_set_memory_attributes(s, attrs, gpa_to_gfn(gpa), gpa_to_gfn(gpa + size), priv);
  }
  bool mixed(Gpa gpa, int level) const { return s.hugepage_test_mixed(gpa_to_gfn(gpa), level); }

  model::PhysMem mem;
  MemAttributes attrs;
  Memslot s;
};

}  // namespace

TEST_CASE("one 4K page converted marks its 2M and 1G frames mixed, and converting it back clears both", "[lpage]") {
  Slot t;
  CHECK(!t.mixed(0x200000, PG_LEVEL_2M));
  t.set(0x201000, kPageSize, false);
  CHECK(t.mixed(0x200000, PG_LEVEL_2M));
  CHECK(t.mixed(0, PG_LEVEL_1G));
  CHECK(!t.mixed(0x400000, PG_LEVEL_2M));
  CHECK(!t.mixed(GiB, PG_LEVEL_1G));
  CHECK(t.s.disallow_lpage(Gfn{0x201}, PG_LEVEL_2M) == KVM_LPAGE_MIXED_FLAG);
  t.set(0x201000, kPageSize, true);
  CHECK(!t.mixed(0x200000, PG_LEVEL_2M));
  CHECK(!t.mixed(0, PG_LEVEL_1G));
  CHECK(t.s.disallow_lpage(Gfn{0x201}, PG_LEVEL_2M) == 0);
}

TEST_CASE("a whole 2M frame converted is not mixed, but its 1G frame is", "[lpage]") {
  Slot t;
  t.set(0x200000, 2 * MiB, false);
  CHECK(!t.mixed(0x200000, PG_LEVEL_2M));
  CHECK(t.mixed(0, PG_LEVEL_1G));
  // The whole 1G frame: uniform again at both levels.
  t.set(0, GiB, false);
  CHECK(!t.mixed(0, PG_LEVEL_1G));
  CHECK(!t.mixed(0x200000, PG_LEVEL_2M));
}

TEST_CASE("a range straddling two 2M frames marks the head and the tail frame", "[lpage]") {
  Slot t;
  t.set(0x3ff000, 2 * kPageSize, false);  // the last page of frame 1, the first of frame 2
  CHECK(t.mixed(0x200000, PG_LEVEL_2M));
  CHECK(t.mixed(0x400000, PG_LEVEL_2M));
  CHECK(!t.mixed(0x600000, PG_LEVEL_2M));
  // A 1G frame with a mixed 2M frame inside is mixed even if its first gfns agree.
  t.set(0x3ff000, kPageSize, true);
  CHECK(!t.mixed(0x200000, PG_LEVEL_2M));
  CHECK(t.mixed(0x400000, PG_LEVEL_2M));
  CHECK(t.mixed(0, PG_LEVEL_1G));
}

TEST_CASE("a frame only partly in the slot keeps its alignment disallow and gets no mixed flag", "[lpage]") {
  model::PhysMem mem(4 * GiB);
  MemAttributes attrs;
  Memslot s(mem, slot(0, 1 * MiB, 2 * MiB, HostBacking::Thp2M), (1ull << 40) + 1 * MiB, PG_LEVEL_2M);
  attrs.set(Gfn{0x100}, Gfn{0x101}, false);
  init_memslot_memory_attributes(s, attrs);
  post_set_memory_attributes(s, attrs, Gfn{0x100}, Gfn{0x101}, false);
  CHECK(s.disallow_lpage(Gfn{0x100}, PG_LEVEL_2M) == 1);
  CHECK(s.disallow_lpage(Gfn{0x200}, PG_LEVEL_2M) == 1);
}

TEST_CASE("a slot created after a conversion starts with its mixed frames marked", "[lpage]") {
  model::PhysMem mem(4 * GiB);
  MemAttributes attrs;
  attrs.set(Gfn{0x805}, Gfn{0x806}, false);  // one page in 2M frame 4
  Memslot s(mem, slot(0, 0, 64 * MiB, HostBacking::Thp2M), 1ull << 40, PG_LEVEL_2M);
  init_memslot_memory_attributes(s, attrs);
  CHECK(s.hugepage_test_mixed(Gfn{0x800}, PG_LEVEL_2M));
  CHECK(!s.hugepage_test_mixed(Gfn{0xa00}, PG_LEVEL_2M));
  CHECK(kvm_mmu_max_mapping_level(s, Gfn{0x800}, PG_LEVEL_2M) == PG_LEVEL_4K);
}
