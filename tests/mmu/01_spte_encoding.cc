// EPT entries the MMU writes, read back from PhysMem as the CPU reads them.
#include "mmu/spte.h"
#include "mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

TEST_CASE("A mapped 4K leaf is RWX, WB, accessed, dirty and MMU-present", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 0, 2 * MiB));
  REQUIRE(vm.access(0x5000, AccessType::Read) == 1);

  EptLookup w = vm.lookup(0x5000);
  REQUIRE(w.present);
  REQUIRE(w.level == PG_LEVEL_4K);
  Pfn pfn = vm.kvm->host_hpa_for_gpa(0x5000) >> kPageShift;
  // bit 63 SVE, 58 MMU-writable, 57 host-writable, pfn, 11 MMU-present,
  // 9 D, 8 A, 5:3 WB, 2:0 RWX.
  u64 expected = (1ull << 63) | (1ull << 58) | (1ull << 57) | (pfn << 12) | 0x800 | 0x200 | 0x100 | 0x30 | 0x7;
  REQUIRE(w.spte == expected);
  REQUIRE_FALSE(ept::is_misconfigured(w.spte, PG_LEVEL_4K, 46));
}

TEST_CASE("Non-leaf entries are RWX plus the child table address", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 0, 2 * MiB));
  vm.access(0x5000, AccessType::Read);
  Hpa table = vm.vcpu.eptp().root;
  for (int level = 4; level > PG_LEVEL_4K; --level) {
    u64 e = vm.mem.read64(table + pt_index(0x5000, level) * 8);
    INFO("level " << level);
    REQUIRE((e & ept::kRwx) == ept::kRwx);
    REQUIRE((e & ept::kLarge) == 0);
    REQUIRE((e & ept::kMemTypeMask) == 0);
    REQUIRE((e & SPTE_MMU_PRESENT_MASK) != 0);
    Hpa child = ept::entry_addr(e);
    REQUIRE(vm.mem.is_allocated(child >> kPageShift));
    table = child;
  }
}

TEST_CASE("A 2M leaf has the large bit and a 2M-aligned frame", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 1 * GiB, 8 * MiB, HostBacking::Thp2M));
  vm.access(1 * GiB + 0x3000, AccessType::Write);
  EptLookup w = vm.lookup(1 * GiB + 0x3000);
  REQUIRE(w.level == PG_LEVEL_2M);
  REQUIRE((w.spte & ept::kLarge) != 0);
  Pfn pfn = spte_to_pfn(w.spte);
  REQUIRE(pfn % 512 == 0);
  REQUIRE(pfn == vm.kvm->host_hpa_for_gpa(1 * GiB) >> kPageShift);
  REQUIRE((w.spte & 0xfff) == 0xbb7);  // MMU-present, D, A, large, WB, RWX
}

TEST_CASE("With mmu.ad off leaves carry no A/D bits and the A/D-disabled type", "[mmu]") {
  Vm vm({{"mmu.ad", "false"}});
  vm.kvm->create_memslot(slot(0, 0, 2 * MiB));
  vm.access(0x1000, AccessType::Write);
  EptLookup w = vm.lookup(0x1000);
  REQUIRE(w.present);
  REQUIRE((w.spte & (ept::kAccessed | ept::kDirty)) == 0);
  REQUIRE((w.spte & SPTE_TDP_AD_MASK) == SPTE_TDP_AD_DISABLED);
  REQUIRE_FALSE(vm.vcpu.eptp().ad_enabled);
}

TEST_CASE("A read-only slot is mapped without W, MMU-writable or host-writable", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 0, 2 * MiB, HostBacking::Page4K, KVM_MEM_READONLY));
  vm.access(0x1000, AccessType::Read);
  EptLookup w = vm.lookup(0x1000);
  REQUIRE(w.present);
  REQUIRE(w.perms == (ept::kRead | ept::kExec));
  REQUIRE((w.spte & (EPT_SPTE_MMU_WRITABLE | EPT_SPTE_HOST_WRITABLE | ept::kDirty)) == 0);
  vm.require_clean();
}

TEST_CASE("make_small_spte and make_huge_spte are inverses over a split", "[mmu]") {
  u64 huge = make_spte(PG_LEVEL_1G, 0x40000, true, true);
  for (unsigned i : {0u, 1u, 511u}) {
    u64 child = make_small_spte(huge, PG_LEVEL_2M, i);
    REQUIRE(spte_to_pfn(child) == 0x40000 + i * 512);
    REQUIRE(is_large_pte(child));
    REQUIRE(make_huge_spte(child, PG_LEVEL_1G) == huge);
  }
  REQUIRE_FALSE(is_large_pte(make_small_spte(make_spte(PG_LEVEL_2M, 0x200, true, true), PG_LEVEL_4K, 5)));
}
