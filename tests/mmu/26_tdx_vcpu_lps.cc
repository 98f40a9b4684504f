// The LP a TD vCPU runs on, named on its SEAMCALLs (arch/x86/kvm/vmx/tdx.c:
// tdx_vcpu_init runs TDH.VP.INIT on the vCPU's own thread, tdx_vcpu_run
// enters on the CPU the vCPU is loaded on, tdx_flush_vp_on_cpu flushes on
// the CPU it last ran on). The model pins TD vCPU i to LP i mod the
// platform's LPs; the TDX module (tdh_vp_init, tdh_vp_enter, tdh_vp_flush)
// keeps the association and refuses a flush from another LP.
#include <catch2/catch.hpp>

#include "mmu/tdx_vm.h"
#include "seam/tdx_module.h"
#include "tests/mmu/mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

// Three TD vCPUs on one package of two LPs: vCPUs 0 and 2 on LP 0, vCPU 1 on LP 1.
struct PinnedTd {
  PinnedTd()
      : vm({{"host.mem_gib", "8"}, {"host.packages", "1"}, {"host.lps_per_package", "2"}}, 8 * GiB),
        tdx(unique_tdx_name().c_str(), vm.cfg, vm.mem, vm.stats) {
    vm.kvm->add_vcpu(one);
    vm.kvm->add_vcpu(two);
    vm.kvm->create_memslot(slot(0, 0, 64 * MiB, HostBacking::Thp2M));
    vm.kvm->create_td(tdx, TdxVmParams{}, {nullptr, nullptr, nullptr});
  }
  TdxVm& td() { return *vm.kvm->tdx_vm(); }
  const seam::TdVcpu& vcpu(u32 i) { return td().td()->vcpus.at(i); }

  Vm vm;
  seam::TdxModule tdx;
  FakeVcpu one{1}, two{2};
};

}  // namespace

TEST_CASE("a TD vCPU's VP.INIT and VP.ENTER run on its LP, and the module associates it there", "[tdx][lp]") {
  PinnedTd t;
  for (u32 i = 0; i < 3; ++i) {
    CHECK(t.td().lp_of(i) == i % 2);
    CHECK(t.vcpu(i).associated);
    CHECK(t.vcpu(i).assoc_lp == i % 2);
  }
  t.vm.kvm->td_finalize();  // each vCPU's first VP.ENTER, on its own LP: no TDX_VCPU_ASSOCIATED
  CHECK(t.vm.stat("seam.calls.tdh_vp_enter") == 3);
  CHECK(t.vm.stat("seam.status.errors") == 0);
  for (u32 i = 0; i < 3; ++i) CHECK(t.vcpu(i).assoc_lp == i % 2);
}

TEST_CASE("teardown flushes each TD vCPU on its own LP, which the module accepts", "[tdx][lp]") {
  PinnedTd t;
  // From another LP the module refuses the flush (tdh_vp_flush: TDX_VCPU_NOT_ASSOCIATED).
  seam::SeamcallTxn wrong;
  wrong.in.rax = seam::leaf_rax(seam::Leaf::TDH_VP_FLUSH);
  wrong.in.rcx = t.td().handle().tdvpr.at(1);
  wrong.lp = 0;
  wrong.start = t.vm.kvm->latest_time();
  t.tdx.transport(wrong);
  CHECK(seam::status_class(wrong.status()) == seam::TDX_VCPU_NOT_ASSOCIATED);
  const u64 errors = t.vm.stat("seam.status.errors");
  t.vm.kvm->td_finalize();
  // tdx_mmu_release_hkid: three VP.FLUSHes, each on the vCPU's LP, all succeed.
  t.vm.kvm->td_teardown(false);
  CHECK(t.vm.stat("seam.calls.tdh_vp_flush") == 1 + 3);
  CHECK(t.vm.stat("seam.status.errors") == errors);
}

TEST_CASE("a TD vCPU moved to another LP is flushed on the old one and enters on the new one", "[tdx][lp]") {
  PinnedTd t;
  t.vm.kvm->td_finalize();
  const u64 enters = t.vm.stat("seam.calls.tdh_vp_enter");
  // Already on LP 1: nothing to do.
  t.vm.kvm->td_vcpu_migrate(1, 1);
  CHECK(t.vm.stat("seam.calls.tdh_vp_flush") == 0);
  // tdx_vcpu_load on LP 0: the vCPU leaves the guest, TDH.VP.FLUSH runs on
  // LP 1 (accepted there only), and VP.ENTER on LP 0 associates it anew.
  t.vm.kvm->td_vcpu_migrate(1, 0);
  CHECK(t.vm.stat("seam.calls.tdh_vp_flush") == 1);
  CHECK(t.vm.stat("seam.calls.tdh_vp_enter") == enters + 1);
  CHECK(t.vm.stat("seam.status.errors") == 0);
  CHECK(t.td().lp_of(1) == 0);
  CHECK(t.vcpu(1).in_guest);
  CHECK(t.vcpu(1).assoc_lp == 0);
  // The teardown's flush of vCPU 1 now runs on LP 0.
  t.vm.kvm->td_teardown(false);
  CHECK(t.vm.stat("seam.calls.tdh_vp_flush") == 1 + 3);
  CHECK(t.vm.stat("seam.status.errors") == 0);
}

TEST_CASE("moving a TD vCPU to an LP the platform does not have is refused", "[tdx][lp]") {
  PinnedTd t;
  CHECK_THROWS_WITH(t.vm.kvm->td_vcpu_migrate(0, 2), Catch::Contains("LP 2 is not on the platform"));
  CHECK_THROWS_WITH(t.vm.kvm->td_vcpu_migrate(3, 0), Catch::Contains("vCPU 3 does not exist"));
}
