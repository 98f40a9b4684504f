// Two TD vCPUs racing on one 2 MiB region (tdp_mmu.c: __tdp_mmu_set_spte_atomic):
// the winner freezes each mirror entry (FROZEN_SPTE) while its hook's
// SEPT.ADD or AUG runs; the loser's cmpxchg on a frozen entry fails with no
// hook called (no SEAMCALL), the fault returns RET_PF_RETRY, and
// tdx_handle_ept_violation retries it at once until the entry is unfrozen.
// Rule 20: TRACK only under the write mmu_lock.
#include <catch2/catch.hpp>

#include "mmu/spte.h"
#include "mmu/tdx_vm.h"
#include "seam/tdx_module.h"
#include "tests/mmu/mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

// Test times start well after the TD's creation and finalize.
constexpr Cycles kStart = 10'000'000;
// Default latencies (cycles; model/config.cc, the TD transitions and AUG as
// docs/design.md "SEAMCALL latencies" derives them).
constexpr Cycles kHandler = 1500, kTdExit = 3850, kVpEnter = 3850, kSeptAdd = 4000, kAug = 7700, kAlloc = 200,
                 kSpteWrite = 30;

// vCPU 0's first fault at t: handler, TD exit, one 2M host page, then under
// the read lock three mirror tables (a page and a linking SPTE write each,
// with a SEPT.ADD in the hook) and the leaf's write with its AUG, then VP.ENTER.
constexpr Cycles kFirstFault =
    kHandler + kTdExit + kAlloc + 3 * (kAlloc + kSpteWrite + kSeptAdd) + kSpteWrite + kAug + kVpEnter;

struct RacingTd {
  explicit RacingTd(const char* huge_pages = "off")
      : vm({{"host.mem_gib", "8"}, {"mmu.tdx_huge_pages", huge_pages}}, 8 * GiB),
        tdx(unique_tdx_name().c_str(), vm.cfg, vm.mem, vm.stats) {
    vm.kvm->add_vcpu(other);
    vm.kvm->create_memslot(slot(0, 0, 64 * MiB, HostBacking::Thp2M));
    vm.kvm->create_td(tdx, TdxVmParams{}, {nullptr, nullptr});
    vm.kvm->td_finalize();
  }
  Cycles fault(FakeVcpu& v, Cycles at, Gpa gpa) {
    v.now = at;
    return vm.kvm->handle_ept_violation(v, gpa, ept::access_qual(AccessType::Write));
  }
  // vCPU 0 faults 0x200000 at kStart: the winner of every race below.
  void winner_faults() { REQUIRE(fault(vm.vcpu, kStart, 0x200000) == kFirstFault); }
  TdxVm& td() { return *vm.kvm->tdx_vm(); }
  u64 busy() const { return vm.stat("seam.status.busy"); }

  Vm vm;
  seam::TdxModule tdx;
  FakeVcpu other{1};
};


}  // namespace

TEST_CASE("two TD vCPUs racing on one 2M region: the loser finds each entry FROZEN, makes no SEAMCALL and retries",
          "[tdx][mmu_lock]") {
  RacingTd t;
  t.winner_faults();
  // vCPU 0's calls (each table's page before its SEPT.ADD, each entry's
  // SPTE write after its hook): SEPT.ADD L3 [kStart+5750, +9750), L2
  // [+9980, +13980), L1 [+14210, +18210), AUG [+18240, +25940). vCPU 1 at
  // kStart+1000 (the 2M host page is already there) walks at kStart+6350,
  // inside the first of them.
  Gpa gpa = 0;
  u64 frozen = 0, fixed = 0, spurious = 0, augs = 0;
  SECTION("the same 4K page: the three tables and the leaf found FROZEN, then the page is there") {
    gpa = 0x200000, frozen = 4, fixed = 1, spurious = 1, augs = 1;
  }
  SECTION("another page: the three tables found FROZEN, then its own AUG on another entry") {
    gpa = 0x201000, frozen = 3, fixed = 2, spurious = 0, augs = 2;
  }
  // Either way the loser spins until each entry it needs is unfrozen and
  // leaves the handler when the winner's AUG returns (kStart + kFirstFault
  // - kVpEnter - kSpteWrite); its own AUG of the other page runs beside the
  // winner's, on another entry, and ends then too.
  CHECK(t.fault(t.other, kStart + 1000, gpa) == kFirstFault - kSpteWrite - 1000);
  CHECK(t.busy() == 0);
  CHECK(t.vm.stat("kvm.tdx.frozen_retries") == frozen);
  CHECK(t.vm.stat("kvm.pf_retry") == frozen);
  CHECK(t.td().busy_retries == 0);
  CHECK(t.vm.stat("kvm.pf_fixed") == fixed);
  CHECK(t.vm.stat("kvm.pf_spurious") == spurious);
  CHECK(t.td().mapped_private() == fixed);
  // Only the winner links the three tables; the loser called no hook on them.
  CHECK(t.vm.stat("seam.calls.tdh_mem_sept_add") == 3);
  CHECK(t.vm.stat("seam.calls.tdh_mem_page_aug") == augs);
  t.vm.require_clean();
}

TEST_CASE("TD faults that do not overlap in time never see BUSY", "[tdx][mmu_lock]") {
  RacingTd t;
  t.winner_faults();
  REQUIRE(t.fault(t.other, kStart + kFirstFault, 0x201000) == kHandler + kTdExit + kSpteWrite + kAug + kVpEnter);
  REQUIRE(t.fault(t.other, 2 * kStart, 0x200000) == kHandler + kTdExit + kVpEnter);  // already mapped
  CHECK(t.busy() == 0);
  CHECK(t.vm.stat("kvm.pf_retry") == 0);
  CHECK(t.vm.stat("kvm.pf_spurious") == 1);
}

TEST_CASE("rule 20: TRACK outside the write mmu_lock is reported, a conversion's TRACK is not", "[tdx][mmu_lock]") {
  RacingTd t;
  t.fault(t.vm.vcpu, kStart, 0x200000);
  t.fault(t.vm.vcpu, kStart, 0x201000);
  t.vm.kvm->set_memory_attributes(0x200000, kPageSize, false);  // BLOCK, TRACK, kick, REMOVE under the write lock
  CHECK(t.td().mapped_private() == 1);
  t.vm.require_clean();
  KvmOp c;  // an operation of the VMM (its hooks draw on the VM's caches)
  c.start = t.vm.kvm->latest_time();
  const auto left = t.vm.kvm->private_mapping(0x201000);
  REQUIRE(left);
  // The removal hook called without mmu_lock (the mirror keeps the leaf).
  REQUIRE(t.td().set_external_spte(Gfn{0x201}, PG_LEVEL_4K, left->hpa | SPTE_MMU_PRESENT_MASK, SHADOW_NONPRESENT_VALUE, 0, c));
  const auto v = t.vm.violations();
  CHECK(has_rule(v, 20));
}

// arch/x86/kvm/vmx/tdx.c:tdh_do_no_vcpus. A BLOCK that finds the SEPT
// entry held by a guest's TDG.MEM.PAGE.ACCEPT (a TDCALL the VMM cannot see)
// answers TDX_OPERAND_BUSY; KVM then blocks entry, kicks every vCPU out of
// the guest - the TD exit interrupts the ACCEPT, which drops its lock - and
// retries once, which succeeds. A 2M ACCEPT holds its entry for 400 000
// cycles (latency.seam.mem_page_accept_2m), far longer than the kick, so
// only the interruption lets the retry through. Here the BLOCK is the
// split's (mmu.tdx_huge_pages=rfc-v1: a 4K piece of the accepted 2M page
// goes shared): BLOCK twice (BUSY, then the retry), two kicks (the retry's
// and tdx_track's), one TRACK and DEMOTE, then the piece's own BLOCK, TRACK
// and REMOVE; the VM lives.
TEST_CASE("a BLOCK refused BUSY by a guest's ACCEPT kicks the vCPUs out and succeeds on its one retry",
          "[tdx][mmu_lock]") {
  RacingTd t("rfc-v1");
  t.vm.vcpu.now = kStart;
  u64 st = 0;
  t.vm.kvm->td_accept(0, 0x400000, TdxLevel{1}, &st);  // faults, AUGs 2M, then ACCEPTs it
  REQUIRE(st == seam::TDX_SUCCESS);
  REQUIRE(t.vm.kvm->private_mapping(0x400000)->level == PG_LEVEL_2M);
  const u64 blocks = t.vm.stat("seam.calls.tdh_mem_range_block"), tracks = t.vm.stat("seam.calls.tdh_mem_track");
  const u64 kicks = t.td().kicks;
  // The first ACCEPT (its EPT-violation exit) and the fault take about
  // 440 000 cycles, then the second ACCEPT holds the 2M entry for 400 000:
  // the VMM converts 0x401000 inside that window.
  t.vm.kvm->set_host_time(kStart + 600'000);
  t.vm.kvm->set_memory_attributes(0x401000, kPageSize, false);
  CHECK(t.vm.stat("kvm.tdx.busy_kicks") == 1);
  CHECK(t.vm.stat("seam.calls.tdh_mem_range_block") - blocks == 2 + 1);
  CHECK(t.vm.stat("seam.calls.tdh_mem_track") - tracks == 1 + 1);
  CHECK(t.td().kicks - kicks == 3);
  CHECK(t.vm.stat("seam.calls.tdh_mem_page_demote") == 1);
  CHECK(t.vm.stat("seam.calls.tdh_mem_page_remove") == 1);
  CHECK(!t.td().bugged());
  CHECK(t.vm.kvm->dead_reason().empty());
  CHECK(!t.vm.kvm->private_mapping(0x401000));
}
