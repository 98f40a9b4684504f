// mmu.tdx_huge_pages=v5: "TDX: Dynamic PAMT + S-EPT Hugepage" RFC PATCH v5
// (2026-01-28; docs/tdx-series.md). Counts derived from that series' tdx.c:
// - __tdx_bringup (30/45, 45/45): huge pages only when the module reports
//   TDX_FEATURES0.ENHANCE_DEMOTE_INTERRUPTIBILITY; otherwise
//   tdx_gmem_max_mapping_level answers 4K and the TD counts as the merged
//   kernel's (SEPT.ADD of three tables for a first 4K fault, no DEMOTE);
// - the SEAMCALLs of a 2M map and of a split are v3's (39/45
//   tdx_sept_split_private_spte: BLOCK, tdx_track = TRACK + one kick, DEMOTE);
// - tdx_handle_mismatched_accept (41/45): if hugepage_test_guest_inhibit at
//   level + 1 is set, return without mmu_lock; else write_lock(mmu_lock),
//   split down to the ACCEPT level, then hugepage_set_guest_inhibit at
//   level + 1 (and level + 2 for 4K). v3 took the lock only with a leaf to split.
#include <catch2/catch.hpp>

#include "tests/mmu/td_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

u64 accept(TdVm& t, Gpa gpa, int tdx_level) {
  u64 st = 0;
  t.vm.kvm->td_accept(0, gpa, TdxLevel{tdx_level}, &st);
  return st;
}

}  // namespace

// (The 2M map and the split on a 4K ACCEPT: tests/mmu/25, v3 and v5 alike.)
TEST_CASE("v5: once a 4K ACCEPT split and inhibited the frame, the next ACCEPT there takes no lock", "[tdx][huge]") {
  TdVm t(false, "v5", true);
  t.vm.kvm->td_finalize();
  t.fault(0x600000);
  REQUIRE(t.vm.kvm->private_mapping(0x600000)->level == PG_LEVEL_2M);
  REQUIRE(accept(t, 0x601000, 0) == seam::TDX_SUCCESS);
  REQUIRE(t.vm.stat("kvm.tdx.accept_splits") == 1);
  Calls calls(t.vm);
  CHECK(accept(t, 0x602000, 0) == seam::TDX_SUCCESS);
  CHECK(calls("kvm.mmu_lock.write_acquisitions") == 0);
  CHECK(calls("seam.calls.tdh_mem_page_demote") == 0);
  CHECK(calls("seam.calls.tdh_mem_page_aug") == 0);  // a piece of the split page, PENDING
  CHECK(calls("seam.calls.tdg_mem_page_accept") == 1);
  t.vm.require_clean();
}

TEST_CASE("v5 takes the write mmu_lock on the first ACCEPT exit of an uninhibited frame, v3 only to split",
          "[tdx][huge]") {
  for (const char* huge : {"v5", "v3"}) {
    INFO(huge);
    const bool v5 = std::string(huge) == "v5";
    TdVm t(false, huge, true);
    t.vm.kvm->td_finalize();
    Calls calls(t.vm);
    // A Linux guest accepts before it touches: nothing maps the frame yet.
    CHECK(accept(t, 0x800000, 0) == seam::TDX_SUCCESS);
    CHECK(calls("kvm.mmu_lock.write_acquisitions") == (v5 ? 1u : 0u));
    CHECK(calls("seam.calls.tdh_mem_sept_add") == 3);  // the fault maps 4K: three tables below the root
    CHECK(calls("seam.calls.tdh_mem_page_aug") == 1);
    CHECK(calls("seam.calls.tdh_mem_page_demote") == 0);
    calls.mark();
    CHECK(accept(t, 0x801000, 0) == seam::TDX_SUCCESS);
    CHECK(calls("kvm.mmu_lock.write_acquisitions") == 0);
    CHECK(calls("seam.calls.tdh_mem_sept_add") == 0);
    CHECK(calls("seam.calls.tdh_mem_page_aug") == 1);
    // A 2M ACCEPT's exit: v5 would take the write lock to inhibit the 1G
    // frame, but the 4K ACCEPT above did already; the fault maps 2M in both.
    calls.mark();
    CHECK(accept(t, 0xa00000, 1) == seam::TDX_SUCCESS);
    CHECK(t.vm.kvm->private_mapping(0xa00000)->level == PG_LEVEL_2M);
    CHECK(calls("kvm.mmu_lock.write_acquisitions") == 0);  // the 1G frame was inhibited by the 4K ACCEPT
    t.vm.require_clean();
  }
}

TEST_CASE("v5 without ENHANCE_DEMOTE_INTERRUPTIBILITY maps 4K, as the merged kernel", "[tdx][huge]") {
  TdVm t(false, "v5", false);
  TdVm off;
  for (TdVm* td : {&t, &off}) {
    td->vm.kvm->td_finalize();
    td->fault(0x600000);
    CHECK(td->vm.kvm->private_mapping(0x600000)->level == PG_LEVEL_4K);
    CHECK(accept(*td, 0x601000, 0) == seam::TDX_SUCCESS);
    // The fault maps 4K, so the guest's 2M ACCEPT is told to fall back to 4K.
    CHECK(seam::status_class(accept(*td, 0xa00000, 1)) == seam::TDX_PAGE_SIZE_MISMATCH);
    td->vm.kvm->td_teardown();
  }
  for (const char* leaf : Calls::kLeaves) {
    INFO(leaf);
    CHECK(t.vm.stat(leaf) == off.vm.stat(leaf));
  }
  CHECK(t.vm.stat("seam.calls.tdh_mem_page_demote") == 0);
}

// mmu.tdx_demote_lock=pamt_lock: the review of 30/45 (Yan Zhao, kvm@
// 2026-06-11; agreed for the next posting) puts a 2M DEMOTE of a Dynamic
// PAMT TD inside the host's global pamt_lock (arch/x86/virt/vmx/tdx/tdx.c of
// the Dynamic PAMT series). The split's SEAMCALLs do not change; the lock is
// taken once more per DEMOTE, and not at all for it as posted.
TEST_CASE("v5 with Dynamic PAMT: a 2M split's DEMOTE takes pamt_lock only under mmu.tdx_demote_lock=pamt_lock",
          "[tdx][huge]") {
  u64 locks[2] = {}, demotes[2] = {}, adds[2] = {};
  int i = 0;
  for (const char* lock : {"none", "pamt_lock"}) {
    INFO(lock);
    TdVm t(true, "v5", true, lock);
    t.vm.kvm->td_finalize();
    t.fault(0x600000);
    REQUIRE(t.vm.kvm->private_mapping(0x600000)->level == PG_LEVEL_2M);
    const u64 before = t.vm.stat("host.pamt_lock.acquisitions");
    const u64 adds_before = t.vm.stat("seam.calls.tdh_phymem_pamt_add");
    Calls calls(t.vm);
    REQUIRE(accept(t, 0x601000, 0) == seam::TDX_SUCCESS);
    demotes[i] = calls("seam.calls.tdh_mem_page_demote");
    adds[i] = t.vm.stat("seam.calls.tdh_phymem_pamt_add") - adds_before;
    locks[i] = t.vm.stat("host.pamt_lock.acquisitions") - before;
    t.vm.require_clean();
    ++i;
  }
  CHECK(demotes[0] == 1);
  CHECK(demotes[1] == 1);
  CHECK(adds[1] == adds[0]);
  CHECK(locks[0] == adds[0]);          // as posted: only PAMT.ADD takes it (no REMOVE during a split)
  CHECK(locks[1] == adds[1] + demotes[1]);
}
