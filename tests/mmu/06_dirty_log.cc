// Dirty logging: eager split + write-protect, fast-path W restore and
// marking, KVM_GET/CLEAR_DIRTY_LOG, huge-page recovery on disable.
#include "mmu/spte.h"
#include "mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

constexpr Gpa kBase = 1 * GiB;

// A 4 MiB THP slot at 1G with its first 2M frame mapped by one 2M leaf.
void map_one_2m(Vm& vm) {
  vm.kvm->create_memslot(slot(0, kBase, 4 * MiB, HostBacking::Thp2M));
  REQUIRE(vm.access(kBase, AccessType::Read) == 1);
  REQUIRE(vm.kvm->pages(PG_LEVEL_2M) == 1);
}

// The 512 4K leaves of the first 2M frame, in gfn order.
std::vector<u64> leaves_of_first_2m(const Vm& vm) {
  std::vector<u64> out;
  for (u64 i = 0; i < 512; ++i) {
    EptLookup w = vm.lookup(kBase + i * 4 * KiB);
    REQUIRE(w.level == PG_LEVEL_4K);
    out.push_back(w.spte);
  }
  return out;
}

}  // namespace

TEST_CASE("Enabling dirty logging splits a 2M leaf into 512 write-protected 4K leaves", "[mmu]") {
  Vm vm;
  map_one_2m(vm);
  Pfn base_pfn = spte_to_pfn(vm.lookup(kBase).spte);
  u64 tables = vm.stat("kvm.mmu_pages");
  vm.vcpu.invepts.clear();

  vm.kvm->set_memslot_flags(0, KVM_MEM_LOG_DIRTY_PAGES);
  REQUIRE(vm.kvm->pages(PG_LEVEL_2M) == 0);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 512);
  REQUIRE(vm.stat("kvm.split_huge_page") == 1);
  REQUIRE(vm.stat("kvm.mmu_pages") == tables + 1);
  REQUIRE(vm.stat("kvm.remote_tlb_flush") == 1);
  REQUIRE(vm.vcpu.invepts.size() == 1);
  std::vector<u64> leaves = leaves_of_first_2m(vm);
  for (u64 i = 0; i < 512; ++i) {
    INFO("leaf " << i);
    REQUIRE(spte_to_pfn(leaves[i]) == base_pfn + i);
    REQUIRE_FALSE(is_writable_pte(leaves[i]));
    REQUIRE(is_mmu_writable_spte(leaves[i]));
    REQUIRE_FALSE(is_large_pte(leaves[i]));
  }
  vm.require_clean();
}

TEST_CASE("A write to a write-protected page takes the fast path and is logged", "[mmu]") {
  Vm vm;
  map_one_2m(vm);
  vm.kvm->set_memslot_flags(0, KVM_MEM_LOG_DIRTY_PAGES);
  u64 tables = vm.stat("kvm.mmu_pages");

  REQUIRE(vm.access(kBase + 0x3000, AccessType::Write) == 1);
  REQUIRE(vm.stat("kvm.pf_fast") == 1);
  REQUIRE(vm.stat("kvm.pf_fixed") == 2);  // the first map and this one
  REQUIRE(vm.stat("kvm.mmu_pages") == tables);
  REQUIRE(is_writable_pte(vm.lookup(kBase + 0x3000).spte));
  REQUIRE_FALSE(is_writable_pte(vm.lookup(kBase + 0x4000).spte));
  vm.require_clean();

  u64 dirty = 0;
  u64 flushes = vm.stat("kvm.remote_tlb_flush");
  vm.kvm->get_dirty_log(0, &dirty);
  REQUIRE(dirty == 1);
  REQUIRE(vm.stat("kvm.dirty_pages_reported") == 1);
  REQUIRE(vm.stat("kvm.remote_tlb_flush") == flushes + 1);
  REQUIRE_FALSE(is_writable_pte(vm.lookup(kBase + 0x3000).spte));  // protected again

  vm.kvm->get_dirty_log(0, &dirty);
  REQUIRE(dirty == 0);
  REQUIRE(vm.stat("kvm.remote_tlb_flush") == flushes + 1);  // nothing to re-protect
  REQUIRE(vm.access(kBase + 0x3000, AccessType::Write) == 1);
  REQUIRE(vm.stat("kvm.pf_fast") == 2);
  vm.kvm->get_dirty_log(0, &dirty);
  REQUIRE(dirty == 1);
  vm.require_clean();
}

TEST_CASE("A fault that creates a writable SPTE in a logged slot marks the page dirty", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 0, 2 * MiB, HostBacking::Page4K, KVM_MEM_LOG_DIRTY_PAGES));
  vm.access(0x1000, AccessType::Read);  // KVM maps writable on a read fault too
  vm.access(0x2000, AccessType::Write);
  u64 dirty = 0;
  vm.kvm->get_dirty_log(0, &dirty);
  REQUIRE(dirty == 2);
  REQUIRE_FALSE(is_writable_pte(vm.lookup(0x1000).spte));
  REQUIRE_FALSE(is_writable_pte(vm.lookup(0x2000).spte));
  vm.require_clean();
}

TEST_CASE("Disabling dirty logging recovers the 2M leaf in place", "[mmu]") {
  Vm vm;
  map_one_2m(vm);
  Pfn base_pfn = spte_to_pfn(vm.lookup(kBase).spte);
  u64 tables = vm.stat("kvm.mmu_pages");
  vm.kvm->set_memslot_flags(0, KVM_MEM_LOG_DIRTY_PAGES);
  vm.access(kBase + 0x3000, AccessType::Write);
  u64 flushes = vm.stat("kvm.remote_tlb_flush");

  vm.kvm->set_memslot_flags(0, 0);
  REQUIRE(vm.kvm->pages(PG_LEVEL_2M) == 1);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 0);
  REQUIRE(vm.stat("kvm.recover_huge_page") == 1);
  REQUIRE(vm.stat("kvm.mmu_pages") == tables);
  REQUIRE(vm.stat("kvm.remote_tlb_flush") == flushes + 1);
  EptLookup w = vm.lookup(kBase + 0x3000);
  REQUIRE(w.level == PG_LEVEL_2M);
  REQUIRE(spte_to_pfn(w.spte) == base_pfn);
  // Built from the first child, which was write-protected: the next write
  // restores W on the huge leaf through the fast path.
  REQUIRE_FALSE(is_writable_pte(w.spte));
  REQUIRE(vm.access(kBase + 0x5000, AccessType::Write) == 1);
  REQUIRE(vm.stat("kvm.pf_fast") == 2);
  REQUIRE(vm.lookup(kBase).level == PG_LEVEL_2M);
  REQUIRE_THROWS_AS(vm.kvm->get_dirty_log(0, nullptr), KvmError);
  vm.require_clean();
}

TEST_CASE("Recovery leaves 4K leaves alone where the host mapping is 4K", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 0, 4 * MiB, HostBacking::Page4K, KVM_MEM_LOG_DIRTY_PAGES));
  vm.access(0x1000, AccessType::Write);
  vm.kvm->set_memslot_flags(0, 0);
  REQUIRE(vm.stat("kvm.recover_huge_page") == 0);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 1);
  vm.require_clean();
}

TEST_CASE("Without eager split a logged huge leaf is write-protected and split by the write fault", "[mmu]") {
  Vm vm({{"mmu.eager_page_split", "false"}});
  map_one_2m(vm);
  vm.kvm->set_memslot_flags(0, KVM_MEM_LOG_DIRTY_PAGES);
  REQUIRE(vm.kvm->pages(PG_LEVEL_2M) == 1);
  REQUIRE_FALSE(is_writable_pte(vm.lookup(kBase).spte));

  // The fast path refuses to make a huge leaf writable in a logged slot.
  REQUIRE(vm.access(kBase + 0x3000, AccessType::Write) == 1);
  REQUIRE(vm.stat("kvm.pf_fast") == 0);
  REQUIRE(vm.stat("kvm.split_huge_page") == 1);
  REQUIRE(vm.kvm->pages(PG_LEVEL_2M) == 0);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 512);
  std::vector<u64> leaves = leaves_of_first_2m(vm);
  for (u64 i = 0; i < 512; ++i) REQUIRE(is_writable_pte(leaves[i]) == (i == 3));
  u64 dirty = 0;
  vm.kvm->get_dirty_log(0, &dirty);
  REQUIRE(dirty == 1);
  vm.require_clean();
}

TEST_CASE("With PML dirty logging clears D instead of write-protecting", "[mmu]") {
  Vm vm({{"mmu.pml", "true"}});
  map_one_2m(vm);
  vm.kvm->set_memslot_flags(0, KVM_MEM_LOG_DIRTY_PAGES);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 512);
  for (u64 spte : leaves_of_first_2m(vm)) {
    REQUIRE(is_writable_pte(spte));
    REQUIRE_FALSE(is_dirty_spte(spte));
  }
  // The CPU sets D on the write; no exit.
  REQUIRE(vm.access(kBase + 0x3000, AccessType::Write) == 0);
  REQUIRE(vm.access(kBase + 0x9000, AccessType::Write) == 0);
  u64 dirty = 0;
  vm.kvm->get_dirty_log(0, &dirty);
  REQUIRE(dirty == 2);
  REQUIRE_FALSE(is_dirty_spte(vm.lookup(kBase + 0x3000).spte));
  REQUIRE(is_writable_pte(vm.lookup(kBase + 0x3000).spte));
  vm.kvm->get_dirty_log(0, &dirty);
  REQUIRE(dirty == 0);
  vm.require_clean();
}

TEST_CASE("KVM_CLEAR_DIRTY_LOG re-protects only the given range", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 0, 2 * MiB, HostBacking::Page4K, KVM_MEM_LOG_DIRTY_PAGES));
  vm.access(0x1000, AccessType::Write);   // page 1, in [0, 64)
  vm.access(0x41000, AccessType::Write);  // page 65, in [64, 128)
  u64 flushes = vm.stat("kvm.remote_tlb_flush");
  vm.kvm->clear_dirty_log(0, 64, 64);
  REQUIRE(vm.stat("kvm.remote_tlb_flush") == flushes + 1);
  REQUIRE(is_writable_pte(vm.lookup(0x1000).spte));
  REQUIRE_FALSE(is_writable_pte(vm.lookup(0x41000).spte));
  u64 dirty = 0;
  vm.kvm->get_dirty_log(0, &dirty);
  REQUIRE(dirty == 1);  // page 65's bit was cleared
  REQUIRE_THROWS_AS(vm.kvm->clear_dirty_log(0, 3, 64), KvmError);
  REQUIRE_THROWS_AS(vm.kvm->clear_dirty_log(0, 448, 128), KvmError);
  vm.require_clean();
}

TEST_CASE("Eager split of a 1G leaf reaches 4K", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 1 * GiB, 1 * GiB, HostBacking::Hugetlb1G));
  vm.access(1 * GiB, AccessType::Read);
  vm.kvm->set_memslot_flags(0, KVM_MEM_LOG_DIRTY_PAGES);
  REQUIRE(vm.kvm->pages(PG_LEVEL_1G) == 0);
  REQUIRE(vm.kvm->pages(PG_LEVEL_2M) == 0);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 512 * 512);
  REQUIRE(vm.stat("kvm.split_huge_page") == 1 + 512);
  vm.require_clean();
  vm.kvm->set_memslot_flags(0, 0);
  REQUIRE(vm.kvm->pages(PG_LEVEL_1G) == 1);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 0);
  REQUIRE(vm.stat("kvm.recover_huge_page") == 1);
  REQUIRE(vm.stat("kvm.mmu_pages") == 2);
  vm.require_clean();
}
