// TDX_OPERAND_BUSY while userspace builds the TD image, answered as the
// merged kernel answers it (arch/x86/kvm/vmx/tdx.c):
// - tdx_mem_page_add turns a BUSY PAGE.ADD into -EBUSY: the mirror's set
//   fails, kvm_tdp_mmu_map returns RET_PF_RETRY and
//   kvm_tdp_mmu_map_private_pfn (arch/x86/kvm/mmu/tdp_mmu.c) maps again. No
//   TDX_BUG_ON, no in-place retry.
// - tdx_td_finalize returns -EBUSY to userspace on a BUSY MR.FINALIZE; the TD
//   stays unfinalized and a later KVM_TDX_FINALIZE_VM succeeds.
// - tdx_gmem_post_populate: any MR.EXTEND refusal is TDX_BUG_ON_2.
// The contention comes from another logical processor's SEAMCALL on the same
// TDR (both leaves take the TDR exclusively: the module's tdh_mem_page_add.c,
// tdh_mr_finalize.c, tdh_mr_extend.c), issued at the time the ioctl starts.
#include <catch2/catch.hpp>

#include "mmu/tdx_vm.h"
#include "seam/tdx_module.h"
#include "tests/mmu/mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

struct BuildingTd {
  // `extend_cycles`: how long another LP's MR.EXTEND holds the TDR.
  explicit BuildingTd(const char* extend_cycles)
      : vm({{"host.mem_gib", "8"}, {"latency.seam.mr_extend", extend_cycles}}, 8 * GiB),
        tdx(unique_tdx_name().c_str(), vm.cfg, vm.mem, vm.stats) {
    vm.kvm->create_memslot(slot(0, 0, 64 * MiB, HostBacking::Page4K));
    vm.kvm->create_td(tdx, TdxVmParams{}, {nullptr});
    // The first page builds the Secure-EPT tables of the 2M region, so the
    // page below needs no SEPT.ADD: its only TDR-taking call is PAGE.ADD.
    vm.kvm->td_init_mem_region(0x100000, kPageSize, 1, false);
  }
  TdxVm& td() { return *vm.kvm->tdx_vm(); }
  // Another logical processor's TDH.MR.EXTEND of the mapped page, starting at `at`.
  seam::Status other_lp_extend(Cycles at) {
    seam::SeamcallTxn t;
    t.in.rax = seam::leaf_rax(seam::Leaf::TDH_MR_EXTEND);
    t.in.rcx = 0x100000;
    t.in.rdx = td().handle().tdr;
    t.initiator = 40;
    t.start = at;
    tdx.transport(t);
    return t.status();
  }
  u64 stat(const char* name) const { return vm.stat(name); }

  Vm vm;
  seam::TdxModule tdx;
};

constexpr Cycles kAt = 1'000'000;

}  // namespace

TEST_CASE("a PAGE.ADD refused BUSY maps again until it succeeds, with no TDX_BUG_ON", "[tdx][busy]") {
  // 40 000 cycles of TDR hold: the ioctl (5 000) and the first PAGE.ADD fall
  // inside it, a later try does not.
  BuildingTd t("40000");
  REQUIRE(t.other_lp_extend(kAt) == seam::TDX_SUCCESS);
  const u64 adds = t.stat("seam.calls.tdh_mem_page_add"), busy = t.stat("seam.status.busy");
  t.vm.kvm->set_host_time(kAt);
  t.vm.kvm->td_init_mem_region(0x101000, kPageSize, 2, false);
  const u64 refused = t.stat("seam.status.busy") - busy;
  CHECK(refused >= 1);
  // Every refused try was a PAGE.ADD, and one more succeeded.
  CHECK(t.stat("seam.calls.tdh_mem_page_add") - adds == refused + 1);
  CHECK(t.td().busy_retries == refused);
  CHECK(!t.td().bugged());
  CHECK(t.td().nr_premapped() == 0);
  const auto m = t.vm.kvm->private_mapping(0x101000);
  REQUIRE(m);
  CHECK(m->added);
  CHECK(t.vm.mem.tag(m->hpa >> kPageShift) == 2);
}

TEST_CASE("a BUSY MR.FINALIZE fails KVM_TDX_FINALIZE_VM with -EBUSY and leaves the TD buildable", "[tdx][busy]") {
  BuildingTd t("40000");
  REQUIRE(t.other_lp_extend(kAt) == seam::TDX_SUCCESS);
  t.vm.kvm->set_host_time(kAt);
  const u64 finals = t.stat("seam.calls.tdh_mr_finalize");
  try {
    t.vm.kvm->td_finalize();
    FAIL("td_finalize succeeded inside another LP's TDR hold");
  } catch (const KvmError& e) {
    CHECK_THAT(e.what(), Catch::Contains("-EBUSY"));
  }
  // One call, no retry in the kernel, and nothing bugged.
  CHECK(t.stat("seam.calls.tdh_mr_finalize") - finals == 1);
  CHECK(!t.td().finalized());
  CHECK(!t.td().bugged());
  CHECK(t.td().td()->op_state == seam::OpState::INITIALIZED);
  // Userspace calls it again once the other LP is done.
  t.vm.kvm->set_host_time(kAt + 100'000);
  t.vm.kvm->td_finalize();
  CHECK(t.td().finalized());
  CHECK(t.stat("seam.calls.tdh_mr_finalize") - finals == 2);
}

TEST_CASE("a BUSY MR.EXTEND bugs the TD (TDX_BUG_ON_2 in tdx_gmem_post_populate)", "[tdx][busy]") {
  // A measured page costs the ioctl, the PAGE.ADD, then 16 MR.EXTENDs of
  // 400 000 cycles each. A twin without contention gives the time the first
  // MR.EXTEND starts; the other LP's hold starts exactly then, after the
  // PAGE.ADD's window has closed.
  constexpr Cycles kExtend = 400'000;
  BuildingTd twin("400000");
  twin.vm.kvm->set_host_time(kAt);
  const Cycles whole = twin.vm.kvm->td_init_mem_region(0x101000, kPageSize, 2, true);
  REQUIRE(whole > 16 * kExtend);
  const Cycles first_extend = kAt + whole - 16 * kExtend;

  BuildingTd t("400000");
  REQUIRE(t.other_lp_extend(first_extend) == seam::TDX_SUCCESS);
  const u64 adds = t.stat("seam.calls.tdh_mem_page_add"), extends = t.stat("seam.calls.tdh_mr_extend");
  t.vm.kvm->set_host_time(kAt);
  try {
    t.vm.kvm->td_init_mem_region(0x101000, kPageSize, 2, true);
    FAIL("the MR.EXTEND inside another LP's TDR hold succeeded");
  } catch (const KvmError& e) {
    CHECK_THAT(e.what(), Catch::Contains("TDH.MR.EXTEND"));
  }
  CHECK(t.stat("seam.calls.tdh_mem_page_add") - adds == 1);  // outside the hold
  CHECK(t.stat("seam.calls.tdh_mr_extend") - extends == 1);  // refused, not retried
  CHECK(t.td().bugged());
  CHECK_THAT(t.td().bug_reason(), Catch::Contains("TDH.MR.EXTEND"));
}
