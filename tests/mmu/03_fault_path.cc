// handle_ept_violation: outcomes, statistics and the host cycles charged.
#include "mmu/page_fault.h"
#include "mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

TEST_CASE("The exit qualification becomes KVM's PFERR error code", "[mmu]") {
  namespace q = ept::qual;
  REQUIRE(ept_violation_error_code(q::kRead) == PFERR_USER_MASK);
  REQUIRE(ept_violation_error_code(q::kWrite | q::kGpaReadable | q::kGpaExecutable) ==
          (PFERR_WRITE_MASK | PFERR_PRESENT_MASK));
  // 0x184 from a real trace: fetch, GVA valid and translated, not present.
  REQUIRE(ept_violation_error_code(0x184) == (PFERR_FETCH_MASK | PFERR_GUEST_FINAL_MASK));
  REQUIRE(ept_violation_error_code(q::kRead | q::kGlaValid) == (PFERR_USER_MASK | PFERR_GUEST_PAGE_MASK));
}

TEST_CASE("A first fault charges the handler, each SPTE write and each allocation", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 0, 2 * MiB));
  vm.enter();
  // Three tables (levels 3, 2, 1) and one host page; three links and a leaf.
  REQUIRE(vm.fault(0x5000, AccessType::Read) == 1500 + 4 * 200 + 4 * 30);
  // Same leaf table: one host page and the leaf.
  REQUIRE(vm.fault(0x6000, AccessType::Read) == 1500 + 200 + 30);
  REQUIRE(vm.stat("kvm.pf_taken") == 2);
  REQUIRE(vm.stat("kvm.pf_fixed") == 2);
  REQUIRE(vm.stat("kvm.mmu_pages") == 4);
  REQUIRE(vm.stat("kvm.cycles") >= 2420 + 1730);
  vm.require_clean();
}

TEST_CASE("A fault on an already-present mapping is spurious", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 0, 2 * MiB));
  vm.access(0x5000, AccessType::Write);
  SECTION("read: slow path, nothing written") {
    REQUIRE(vm.fault(0x5000, AccessType::Read) == 1500);
    REQUIRE(vm.stat("kvm.pf_spurious") == 1);
    REQUIRE(vm.stat("kvm.pf_fast") == 0);
  }
  SECTION("write to a present page: caught by the fast path") {
    REQUIRE(vm.fault(0x5000, AccessType::Write) == 1500);
    REQUIRE(vm.stat("kvm.pf_spurious") == 1);
    REQUIRE(vm.stat("kvm.pf_fast") == 1);
  }
  REQUIRE(vm.stat("kvm.pf_fixed") == 1);
  REQUIRE(vm.stat("kvm.pf_taken") == 2);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 1);
  vm.require_clean();
}

TEST_CASE("An access outside every memslot is MMIO: emulated, nothing mapped", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 0, 2 * MiB));
  vm.enter();
  REQUIRE(vm.fault(0xfee00000, AccessType::Write) == 1500);
  REQUIRE(vm.stat("kvm.pf_emulate") == 1);
  REQUIRE(vm.stat("kvm.pf_fixed") == 0);
  REQUIRE(vm.stat("kvm.mmu_pages") == 1);
  REQUIRE_FALSE(vm.lookup(0xfee00000).present);
  REQUIRE_FALSE(vm.kvm->gpa_in_memslot(0xfee00000));
  REQUIRE_THROWS_AS(vm.kvm->host_hpa_for_gpa(0xfee00000), KvmError);
  vm.require_clean();
}

TEST_CASE("A write to a read-only slot is emulated and a read maps it", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 0, 2 * MiB, HostBacking::Page4K, KVM_MEM_READONLY));
  REQUIRE(vm.access(0x3000, AccessType::Write) == 3);  // never becomes writable
  REQUIRE(vm.stat("kvm.pf_emulate") == 3);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 0);
  REQUIRE(vm.access(0x3000, AccessType::Read) == 1);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 1);
  REQUIRE(vm.access(0x3000, AccessType::Write) == 3);
  REQUIRE(vm.stat("kvm.pf_emulate") == 6);
  vm.require_clean();
}

TEST_CASE("A fault before the vCPU loaded a root is retried without counting an outcome", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 0, 2 * MiB));
  vm.kvm->handle_ept_violation(vm.vcpu, 0x1000, ept::qual::kRead);
  REQUIRE(vm.stat("kvm.pf_taken") == 1);
  REQUIRE(vm.stat("kvm.pf_fixed") + vm.stat("kvm.pf_spurious") + vm.stat("kvm.pf_emulate") == 0);
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == 0);
}

TEST_CASE("A 4K fault inside a present 2M leaf is spurious, not a split", "[mmu]") {
  Vm vm;
  vm.kvm->create_memslot(slot(0, 1 * GiB, 4 * MiB, HostBacking::Thp2M));
  vm.access(1 * GiB, AccessType::Read);
  REQUIRE(vm.fault(1 * GiB + 0x7000, AccessType::Read) == 1500);
  REQUIRE(vm.stat("kvm.pf_spurious") == 1);
  REQUIRE(vm.stat("kvm.split_huge_page") == 0);
  REQUIRE(vm.kvm->pages(PG_LEVEL_2M) == 1);
}

TEST_CASE("An unknown vCPU and an EPT misconfiguration are refused", "[mmu]") {
  Vm vm;
  FakeVcpu stranger(7);
  REQUIRE_THROWS_AS(vm.kvm->handle_ept_violation(stranger, 0, ept::qual::kRead), KvmError);
  REQUIRE_THROWS_AS(vm.kvm->handle_ept_misconfig(vm.vcpu, 0x1000), KvmError);
  REQUIRE_THROWS_AS(vm.kvm->add_vcpu(vm.vcpu), KvmError);
}
