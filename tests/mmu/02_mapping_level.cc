// kvm_mmu_hugepage_adjust / kvm_mmu_max_mapping_level: which leaf level a
// fault installs.
#include "mmu/memslot.h"
#include "mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {
int mapped_level(Vm& vm, Gpa gpa) {
  REQUIRE(vm.access(gpa, AccessType::Read) == 1);
  EptLookup w = vm.lookup(gpa);
  REQUIRE(w.present);
  return w.level;
}
}  // namespace

TEST_CASE("An aligned THP slot is mapped with 2M leaves", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 1 * GiB, 64 * MiB, HostBacking::Thp2M));
  REQUIRE(mapped_level(vm, 1 * GiB + 0x123000) == PG_LEVEL_2M);
  REQUIRE(vm.kvm->pages(PG_LEVEL_2M) == 1);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 0);
  REQUIRE(vm.stat("kvm.mmu_pages") == 3);  // root, level 3, level 2
  vm.require_clean();
}

TEST_CASE("A 4K-backed slot is mapped with 4K leaves even when aligned", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 1 * GiB, 1 * GiB, HostBacking::Page4K));
  REQUIRE(mapped_level(vm, 1 * GiB + 0x200000) == PG_LEVEL_4K);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 1);
  vm.require_clean();
}

TEST_CASE("A hugetlbfs 1G slot is mapped with 1G leaves", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 1 * GiB, 1 * GiB, HostBacking::Hugetlb1G));
  REQUIRE(mapped_level(vm, 1 * GiB + 0x2345000) == PG_LEVEL_1G);
  REQUIRE(vm.kvm->pages(PG_LEVEL_1G) == 1);
  REQUIRE(vm.stat("kvm.mmu_pages") == 2);  // root, level 3
  vm.require_clean();
}

TEST_CASE("Misaligned head and tail 2M frames of a slot get 4K leaves, the interior 2M", "[mmu]") {
  Vm vm;
  // [1G + 1M, 1G + 7M): 2M frames at 1G and 1G + 6M stick out of the slot.
  vm.kvm->create_memslot(slot(0, 1 * GiB + 1 * MiB, 6 * MiB, HostBacking::Thp2M));
  REQUIRE(mapped_level(vm, 1 * GiB + 1 * MiB + 0x1000) == PG_LEVEL_4K);
  REQUIRE(mapped_level(vm, 1 * GiB + 2 * MiB + 0x5000) == PG_LEVEL_2M);
  REQUIRE(mapped_level(vm, 1 * GiB + 4 * MiB) == PG_LEVEL_2M);
  REQUIRE(mapped_level(vm, 1 * GiB + 6 * MiB + 0x1000) == PG_LEVEL_4K);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 2);
  REQUIRE(vm.kvm->pages(PG_LEVEL_2M) == 2);
  vm.require_clean();
}

TEST_CASE("A slot whose hva and gpa disagree modulo 2M gets only 4K leaves", "[mmu]") {
  Vm vm;
  // The host still backs the interior with THP, but base_gfn ^ hva_pfn is
  // not 2M-aligned, so lpage_info disallows every frame.
  vm.kvm->create_memslot(slot(0, 1 * GiB, 8 * MiB, HostBacking::Thp2M, 0, 0x7f0000001000));
  REQUIRE(mapped_level(vm, 1 * GiB + 4 * MiB) == PG_LEVEL_4K);
  REQUIRE(vm.kvm->pages(PG_LEVEL_2M) == 0);
  vm.require_clean();
}

TEST_CASE("mmu.max_huge_level caps the leaf level", "[mmu]") {
  SECTION("2: a 1G-backed slot gets 2M leaves") {
    Vm vm({{"mmu.max_huge_level", "2"}});
    vm.kvm->create_memslot(slot(0, 1 * GiB, 1 * GiB, HostBacking::Hugetlb1G));
    REQUIRE(mapped_level(vm, 1 * GiB + 0x2345000) == PG_LEVEL_2M);
    vm.require_clean();
  }
  SECTION("1: a 1G-backed slot gets 4K leaves") {
    Vm vm({{"mmu.max_huge_level", "1"}});
    vm.kvm->create_memslot(slot(0, 1 * GiB, 1 * GiB, HostBacking::Hugetlb1G));
    REQUIRE(mapped_level(vm, 1 * GiB + 0x2345000) == PG_LEVEL_4K);
    vm.require_clean();
  }
}

TEST_CASE("A dirty-logged slot is mapped with 4K leaves", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 1 * GiB, 64 * MiB, HostBacking::Thp2M, KVM_MEM_LOG_DIRTY_PAGES));
  REQUIRE(mapped_level(vm, 1 * GiB + 0x200000) == PG_LEVEL_4K);
  vm.require_clean();
}

TEST_CASE("A 1G-backed slot shorter than 1G falls back to 4K host pages and leaves", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 1 * GiB, 512 * MiB, HostBacking::Hugetlb1G));
  REQUIRE(mapped_level(vm, 1 * GiB + 0x200000) == PG_LEVEL_4K);
  vm.require_clean();
}

TEST_CASE("lpage_info disallows misaligned head and tail frames and gfn/hva skew", "[mmu]") {
  model::PhysMem mem(4 * GiB);
  // gfns [0x40100, 0x40700): 2M frames 0x200 (head), 0x201, 0x202, 0x203 (tail).
  MemslotSpec spec = slot(0, 1 * GiB + 1 * MiB, 6 * MiB, HostBacking::Thp2M);
  Memslot aligned(mem, spec, (1ull << 40) + 1 * MiB, PG_LEVEL_2M);
  REQUIRE(aligned.lpage_info[0] == std::vector<int>{1, 0, 0, 1});
  REQUIRE(aligned.lpage_info[1] == std::vector<int>{1});  // one 1G frame, misaligned both ends
  REQUIRE(aligned.disallow_lpage(Gfn{0x40100}, PG_LEVEL_2M) == 1);
  REQUIRE(aligned.disallow_lpage(Gfn{0x40200}, PG_LEVEL_2M) == 0);
  REQUIRE(aligned.disallow_lpage(Gfn{0x406ff}, PG_LEVEL_2M) == 1);

  Memslot skewed(mem, spec, (1ull << 40) + 1 * MiB + 4 * KiB, PG_LEVEL_2M);
  REQUIRE(skewed.lpage_info[0] == std::vector<int>{1, 1, 1, 1});

  // Before the host faults the block in, the host mapping level is 4K.
  REQUIRE(kvm_mmu_max_mapping_level(aligned, Gfn{0x40200}, PG_LEVEL_1G) == PG_LEVEL_4K);
  u64 allocs = 0;
  aligned.host.faultin(aligned.gfn_to_hva(Gfn{0x40200}), &allocs);
  REQUIRE(allocs == 1);
  REQUIRE(kvm_mmu_max_mapping_level(aligned, Gfn{0x40200}, PG_LEVEL_1G) == PG_LEVEL_2M);
  REQUIRE(kvm_mmu_max_mapping_level(aligned, Gfn{0x40200}, PG_LEVEL_4K) == PG_LEVEL_4K);
}
