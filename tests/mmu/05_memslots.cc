// Memslot create / delete / move and their zaps.
#include "mmu/spte.h"
#include "mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

TEST_CASE("Bad memslots are rejected", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 0, 2 * MiB));
  REQUIRE_THROWS_AS(vm.kvm->create_memslot(slot(1, 1 * MiB, 2 * MiB)), KvmError);          // overlap
  REQUIRE_THROWS_AS(vm.kvm->create_memslot(slot(0, 8 * MiB, 2 * MiB)), KvmError);          // duplicate id
  REQUIRE_THROWS_AS(vm.kvm->create_memslot(slot(1, 8 * MiB + 0x800, 2 * MiB)), KvmError);  // unaligned gpa
  REQUIRE_THROWS_AS(vm.kvm->create_memslot(slot(1, 8 * MiB, 0x1800)), KvmError);           // unaligned size
  REQUIRE_THROWS_AS(vm.kvm->create_memslot(slot(1, 8 * MiB, 0)), KvmError);                // empty
  REQUIRE_THROWS_AS(vm.kvm->create_memslot(slot(1, 1ull << 48, 2 * MiB)), KvmError);       // beyond 4-level EPT
  REQUIRE_THROWS_AS(vm.kvm->create_memslot(slot(1, 8 * MiB, 2 * MiB, HostBacking::Page4K, 0, 0x1234)), KvmError);
  REQUIRE_THROWS_AS(vm.kvm->delete_memslot(9), KvmError);
  REQUIRE_THROWS_AS(vm.kvm->set_memslot_flags(0, KVM_MEM_READONLY), KvmError);
  vm.kvm->create_memslot(slot(1, 2 * MiB, 2 * MiB));  // adjacent is fine
  REQUIRE_THROWS_AS(vm.kvm->move_memslot(1, 1 * MiB), KvmError);
  try {
    vm.kvm->create_memslot(slot(2, 3 * MiB, 4 * MiB));
    FAIL("overlap accepted");
  } catch (const KvmError& e) {
    REQUIRE(std::string(e.what()).find("overlaps memslot 1") != std::string::npos);
  }
}

TEST_CASE("Deleting a memslot zaps all roots fast and the vCPU reloads a new root", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 0, 4 * MiB, HostBacking::Thp2M));
  vm.kvm->create_memslot(slot(1, 1 * GiB, 2 * MiB));
  vm.access(0, AccessType::Write);
  vm.access(2 * MiB, AccessType::Write);
  vm.access(1 * GiB + 0x1000, AccessType::Read);
  REQUIRE(vm.kvm->pages(PG_LEVEL_2M) == 2);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 1);
  u64 frames_before = vm.mem.allocated_frames();

  vm.kvm->delete_memslot(0);
  REQUIRE(vm.stat("kvm.mmu_zap_all_fast") == 1);
  REQUIRE(vm.vcpu.requests == model::KVM_REQ_MMU_FREE_OBSOLETE_ROOTS);
  // Every leaf of every root is gone, the other slot's included; the invalid
  // root stays until the vCPU drops it.
  REQUIRE(vm.kvm->pages(PG_LEVEL_2M) == 0);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 0);
  REQUIRE(vm.stat("kvm.mmu_pages") == 1);
  // Released: slot 0's two 2M host blocks, and the tables under the root
  // (one level 3, two level 2 for gpa 0 and 1G, one level 1 for 1G + 4K).
  REQUIRE(frames_before - vm.mem.allocated_frames() == 2 * 512 + 4);
  vm.require_clean();

  // Before the request is serviced a fault only retries.
  vm.kvm->handle_ept_violation(vm.vcpu, 1 * GiB, ept::qual::kRead);
  REQUIRE(vm.stat("kvm.pf_fixed") == 3);

  vm.vcpu.invepts.clear();
  vm.enter();
  REQUIRE(vm.stat("kvm.roots_allocated") == 2);
  REQUIRE(vm.stat("kvm.mmu_pages") == 1);
  REQUIRE(vm.vcpu.invepts == std::vector<ept::Eptp>{vm.vcpu.eptp()});
  REQUIRE(vm.access(1 * GiB + 0x1000, AccessType::Read) == 1);
  REQUIRE(vm.access(0, AccessType::Read) == 3);  // slot 0 is MMIO now
  vm.require_clean();
}

TEST_CASE("Moving a memslot keeps its memory at the new gpa", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 0, 2 * MiB));
  vm.access(0x1000, AccessType::Write);
  Hpa hpa = vm.kvm->host_hpa_for_gpa(0x1000);

  vm.kvm->move_memslot(0, 256 * MiB);
  REQUIRE(vm.stat("kvm.mmu_zap_all_fast") == 1);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 0);
  REQUIRE_FALSE(vm.kvm->gpa_in_memslot(0x1000));
  REQUIRE(vm.kvm->gpa_in_memslot(256 * MiB + 0x1000));

  REQUIRE(vm.access(256 * MiB + 0x1000, AccessType::Read) == 1);
  REQUIRE(spte_to_pfn(vm.lookup(256 * MiB + 0x1000).spte) == hpa >> kPageShift);
  vm.enter();
  vm.fault(0x1000, AccessType::Read);
  REQUIRE(vm.stat("kvm.pf_emulate") == 1);
  vm.require_clean();
}

TEST_CASE("zap_gfn_range zaps the leaves it touches, whole huge leaves included, and flushes", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 0, 4 * MiB, HostBacking::Thp2M));
  vm.kvm->create_memslot(slot(1, 1 * GiB, 2 * MiB));
  vm.access(0, AccessType::Read);
  vm.access(2 * MiB, AccessType::Read);
  vm.access(1 * GiB, AccessType::Read);
  u64 tables = vm.stat("kvm.mmu_pages");
  vm.vcpu.invepts.clear();

  vm.kvm->zap_gfn_range(1 * MiB, 4 * KiB);  // inside the first 2M leaf
  REQUIRE(vm.kvm->pages(PG_LEVEL_2M) == 1);
  REQUIRE_FALSE(vm.lookup(0).present);
  REQUIRE(vm.lookup(2 * MiB).present);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 1);
  REQUIRE(vm.stat("kvm.mmu_pages") == tables);  // leaves only
  REQUIRE(vm.stat("kvm.remote_tlb_flush") == 1);
  REQUIRE(vm.vcpu.invepts == std::vector<ept::Eptp>{vm.vcpu.eptp()});

  vm.kvm->zap_gfn_range(8 * MiB, 1 * MiB);  // nothing mapped: no flush
  REQUIRE(vm.stat("kvm.remote_tlb_flush") == 1);
  REQUIRE(vm.access(0x1000, AccessType::Read) == 1);
  REQUIRE(vm.kvm->pages(PG_LEVEL_2M) == 2);
  vm.require_clean();
}

TEST_CASE("An invalidated root lives until the last vCPU drops it", "[mmu]") {
  Vm vm;
  FakeVcpu second(1);
  vm.kvm->add_vcpu(second);
  vm.kvm->create_memslot(slot(0, 0, 2 * MiB));
  vm.enter();
  vm.kvm->service_requests(second, 0);
  vm.access(0x1000, AccessType::Read);
  REQUIRE(vm.stat("kvm.mmu_pages") == 4);

  vm.kvm->delete_memslot(0);
  REQUIRE(second.requests == model::KVM_REQ_MMU_FREE_OBSOLETE_ROOTS);
  REQUIRE(vm.stat("kvm.mmu_pages") == 1);  // the invalid root, held by both
  vm.require_clean();                      // rule 2: count 2, no TDP MMU reference

  vm.enter();  // the first vCPU moves to a new root
  REQUIRE(vm.stat("kvm.roots_allocated") == 2);
  REQUIRE(vm.stat("kvm.mmu_pages") == 2);
  vm.require_clean();

  vm.kvm->service_requests(second, second.take_requests());
  REQUIRE(vm.stat("kvm.roots_allocated") == 2);  // joins the new root
  REQUIRE(second.eptp() == vm.vcpu.eptp());
  REQUIRE(vm.stat("kvm.mmu_pages") == 1);
  vm.require_clean();
}
