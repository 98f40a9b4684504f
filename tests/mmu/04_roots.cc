// Root allocation and vCPU requests (kvm_mmu_load, KVM_REQ_*).
#include "mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

TEST_CASE("The first entry allocates a root, loads its EPTP and flushes it", "[mmu]") {
  Vm vm;
  REQUIRE(vm.enter() == 200 + 200);  // the root table page + flush_tlb_current
  REQUIRE(vm.stat("kvm.roots_allocated") == 1);
  REQUIRE(vm.stat("kvm.mmu_pages") == 1);
  REQUIRE(vm.vcpu.loads.size() == 1);
  const ept::Eptp& e = vm.vcpu.eptp();
  REQUIRE(e.root != 0);
  REQUIRE(e.levels == 4);
  REQUIRE(e.ad_enabled);
  REQUIRE(vm.vcpu.invepts == std::vector<ept::Eptp>{e});
  // Every entry of a fresh root is KVM's non-present value.
  for (unsigned i = 0; i < 512; i += 97) REQUIRE(vm.mem.read64(e.root + i * 8) == (1ull << 63));
  vm.require_clean();
}

TEST_CASE("vCPUs with the same role share one root", "[mmu]") {
  Vm vm;
  FakeVcpu second(1);
  vm.kvm->add_vcpu(second);
  vm.enter();
  vm.kvm->service_requests(second, 0);
  REQUIRE(second.eptp() == vm.vcpu.eptp());
  REQUIRE(vm.stat("kvm.roots_allocated") == 1);
  vm.require_clean();  // rule 2: two vCPU references + the TDP MMU's
}

TEST_CASE("ept.levels 5 gives a 5-level root that maps above 256 TiB", "[mmu]") {
  Vm vm({{"ept.levels", "5"}, {"host.maxphyaddr", "52"}});
  Gpa high = 1ull << 50;
  vm.kvm->create_memslot(slot(0, high, 2 * MiB));
  REQUIRE(vm.access(high + 0x1000, AccessType::Read) == 1);
  REQUIRE(vm.vcpu.eptp().levels == 5);
  REQUIRE(vm.stat("kvm.mmu_pages") == 5);
  vm.require_clean();
}

TEST_CASE("KVM_REQ_TLB_FLUSH flushes the current EPTP and LOAD_MMU_PGD reloads it", "[mmu]") {
  Vm vm;
  vm.enter();
  vm.vcpu.invepts.clear();
  REQUIRE(vm.kvm->service_requests(vm.vcpu, model::KVM_REQ_TLB_FLUSH) == 200);
  REQUIRE(vm.vcpu.invepts == std::vector<ept::Eptp>{vm.vcpu.eptp()});
  vm.kvm->service_requests(vm.vcpu, model::KVM_REQ_LOAD_MMU_PGD);
  REQUIRE(vm.vcpu.loads.size() == 2);
  REQUIRE(vm.vcpu.loads[1] == vm.vcpu.loads[0]);
  REQUIRE(vm.stat("kvm.roots_allocated") == 1);
}

TEST_CASE("A remote flush runs INVEPT on every vCPU with a root", "[mmu]") {
  Vm vm;
  FakeVcpu idle(1);
  vm.kvm->add_vcpu(idle);
  vm.kvm->create_memslot(slot(0, 0, 4 * MiB, HostBacking::Thp2M));
  vm.access(0, AccessType::Read);
  vm.vcpu.invepts.clear();
  // Enabling dirty logging ends in kvm_flush_remote_tlbs.
  vm.kvm->set_memslot_flags(0, KVM_MEM_LOG_DIRTY_PAGES);
  REQUIRE(vm.stat("kvm.remote_tlb_flush") == 1);
  REQUIRE(vm.vcpu.invepts == std::vector<ept::Eptp>{vm.vcpu.eptp()});
  REQUIRE(idle.invepts.empty());  // never entered: no EPTP to flush
}

TEST_CASE("A vCPU that lost its EPTP reloads the root it still holds", "[mmu]") {
  Vm vm;
  vm.enter();
  ept::Eptp first = vm.vcpu.eptp();
  vm.vcpu.load_eptp(ept::Eptp{0, 4, true});
  vm.enter();
  REQUIRE(vm.vcpu.eptp() == first);
  REQUIRE(vm.stat("kvm.roots_allocated") == 1);
  vm.require_clean();  // still one vCPU reference + the TDP MMU's
}
