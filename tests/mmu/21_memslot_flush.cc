// Memslot DELETE/MOVE flush policies (mmu.slot_zap, mmu.c: kvm_arch_flush_shadow_memslot): fast
// zap of every root vs zapping the slot's leaves, and what each costs to
// get back (refaults, rebuilt page-table pages).
#include "mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

// Slot 0: 4 MiB of 4K pages at 0, all touched; slot 1: 2 MiB at 1 GiB, one page touched.
void populate(Vm& vm) {
  vm.kvm->create_memslot(slot(0, 0, 4 * MiB));
  vm.kvm->create_memslot(slot(1, 1 * GiB, 2 * MiB));
  for (Gpa g = 0; g < 4 * MiB; g += 4096) vm.access(g, AccessType::Write);
  vm.access(1 * GiB, AccessType::Read);
}

}  // namespace

TEST_CASE("zap-all-fast on a slot delete zaps every slot and frees every table", "[mmu][slot_zap]") {
  Vm vm({{"mmu.slot_zap", "zap-all-fast"}});
  populate(vm);
  REQUIRE(vm.stat("kvm.mmu_pages") == 1 + 1 + 2 + 2 + 1);  // root, PDPT, 2 PDs, 2 PTs for slot 0, 1 PT for slot 1
  vm.kvm->delete_memslot(1);
  REQUIRE(vm.stat("kvm.mmu_zap_all_fast") == 1);
  REQUIRE(vm.stat("kvm.slot_zap.flushes") == 1);
  REQUIRE(vm.stat("kvm.slot_zap.zapped_sptes") == 1024 + 1);
  REQUIRE(vm.stat("kvm.slot_zap.zapped_pages") == 6);  // all but the root
  REQUIRE(vm.vcpu.requests == model::KVM_REQ_MMU_FREE_OBSOLETE_ROOTS);
  // Slot 0 was not deleted, yet its pages fault in again.
  for (Gpa g = 0; g < 4 * MiB; g += 4096) REQUIRE(vm.access(g, AccessType::Read) == 1);
  REQUIRE(vm.stat("kvm.slot_zap.refaults") == 1024);
  REQUIRE(vm.stat("kvm.slot_zap.rebuilt_pages") == 4);  // PDPT, PD, 2 PTs (the new root is counted apart)
  REQUIRE(vm.stat("kvm.roots_allocated") == 2);
  vm.require_clean();
}

TEST_CASE("zap-memslot on a slot delete zaps only that slot's leaves and keeps the tables", "[mmu][slot_zap]") {
  Vm vm({{"mmu.slot_zap", "zap-memslot"}});
  populate(vm);
  u64 flushes = vm.stat("kvm.remote_tlb_flush");
  vm.kvm->delete_memslot(1);
  REQUIRE(vm.stat("kvm.mmu_zap_all_fast") == 0);
  REQUIRE(vm.stat("kvm.remote_tlb_flush") == flushes + 1);
  REQUIRE(vm.stat("kvm.slot_zap.zapped_sptes") == 1);
  REQUIRE(vm.stat("kvm.slot_zap.zapped_pages") == 0);
  REQUIRE(vm.vcpu.requests == 0);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 1024);
  for (Gpa g = 0; g < 4 * MiB; g += 4096) REQUIRE(vm.access(g, AccessType::Read) == 0);
  REQUIRE(vm.stat("kvm.slot_zap.refaults") == 0);
  // Re-adding the slot refaults its one page into the table that stayed.
  vm.kvm->create_memslot(slot(1, 1 * GiB, 2 * MiB));
  u64 pages = vm.stat("kvm.mmu_pages");
  REQUIRE(vm.access(1 * GiB, AccessType::Read) == 1);
  REQUIRE(vm.stat("kvm.slot_zap.refaults") == 1);
  REQUIRE(vm.stat("kvm.mmu_pages") == pages);
  REQUIRE(vm.stat("kvm.slot_zap.rebuilt_pages") == 0);
  vm.require_clean();
}

TEST_CASE("zap-memslot on a slot move zaps the leaves at the old place", "[mmu][slot_zap]") {
  Vm vm({{"mmu.slot_zap", "zap-memslot"}});
  populate(vm);
  vm.kvm->move_memslot(1, 2 * GiB);
  REQUIRE(vm.stat("kvm.slot_zap.zapped_sptes") == 1);
  REQUIRE(vm.lookup(1 * GiB).present == false);
  REQUIRE(vm.access(2 * GiB, AccessType::Read) == 1);
  REQUIRE(vm.stat("kvm.slot_zap.refaults") == 0);  // a different gfn
  vm.require_clean();
}

TEST_CASE("An unknown mmu.slot_zap is a config error", "[mmu][slot_zap]") {
  REQUIRE_THROWS_AS(Vm({{"mmu.slot_zap", "zap-some"}}), model::ConfigError);
}

TEST_CASE("A refault is counted per leaf installed over zapped memory, whatever the zapped leaf's size",
          "[mmu][slot_zap]") {
  Vm vm({{"mmu.slot_zap", "zap-all-fast"}});
  vm.kvm->create_memslot(slot(0, 0, 4 * MiB, HostBacking::Thp2M));
  vm.kvm->create_memslot(slot(1, 1 * GiB, 2 * MiB));
  vm.access(0, AccessType::Write);
  vm.access(2 * MiB, AccessType::Write);
  vm.kvm->delete_memslot(1);
  REQUIRE(vm.stat("kvm.slot_zap.zapped_sptes") == 2);
  // Dirty logging maps 4K leaves inside the zapped 2M ones: each refaults.
  vm.kvm->set_memslot_flags(0, KVM_MEM_LOG_DIRTY_PAGES);
  for (Gpa g : {Gpa{0}, Gpa{0x1000}, Gpa{2 * MiB + 0x5000}}) REQUIRE(vm.access(g, AccessType::Write) == 1);
  REQUIRE(vm.stat("kvm.slot_zap.refaults") == 3);
  vm.require_clean();
}
