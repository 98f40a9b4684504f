// A TD VM fixture for the mmu tests: one TD vCPU (the fixture's FakeVcpu)
// on a 64 MiB THP-backed memslot at GPA 0, created through a TDX module.
#pragma once
#include <catch2/catch.hpp>
#include <iterator>
#include <string>

#include "mmu/tdx_vm.h"
#include "seam/tdx_module.h"
#include "tests/mmu/mmu_test_util.h"

namespace septsim::mmu::test {

struct TdVm {
  // `demote_feature`: the module has TDX_FEATURES0.ENHANCE_DEMOTE_INTERRUPTIBILITY.
  // `demote_lock`: mmu.tdx_demote_lock.
  explicit TdVm(bool dynamic = false, const char* huge = "off", bool demote_feature = false,
                const char* demote_lock = "none")
      : vm({{"host.mem_gib", "8"},
            {"seam.dynamic_pamt", dynamic ? "true" : "false"},
            {"mmu.tdx_huge_pages", huge},
            {"seam.enhance_demote_interruptibility", demote_feature ? "true" : "false"},
            {"mmu.tdx_demote_lock", demote_lock}},
           8 * GiB),
        tdx(unique_tdx_name().c_str(), vm.cfg, vm.mem, vm.stats) {
    vm.kvm->create_memslot(slot(0, 0, 64 * MiB, HostBacking::Thp2M));
    TdxVmParams p;
    vm.kvm->create_td(tdx, p, {nullptr});
  }
  TdxVm& td() { return *vm.kvm->tdx_vm(); }
  // A private-GPA EPT violation of TD vCPU 0.
  void fault(Gpa gpa) { vm.kvm->handle_ept_violation(vm.vcpu, gpa, ept::access_qual(AccessType::Write)); }
  int sept_state(Gpa gpa) {
    const seam::Td* t = td().td();
    const seam::SeptWalk w = t->sept->walk_to_leaf(gpa);
    return w.reached ? int(w.state) : -1;
  }

  Vm vm;
  seam::TdxModule tdx;
};

// SEAMCALL and KVM counters since the last mark().
struct Calls {
  explicit Calls(const Vm& vm) : vm(vm) { mark(); }
  void mark() {
    for (size_t i = 0; i < std::size(kLeaves); ++i) at[i] = vm.stat(kLeaves[i]);
  }
  u64 operator()(const char* leaf) const {
    for (size_t i = 0; i < std::size(kLeaves); ++i)
      if (std::string(kLeaves[i]) == leaf) return vm.stat(leaf) - at[i];
    FAIL("unknown counter " << leaf);
    return 0;
  }
  static constexpr const char* kLeaves[] = {
      "seam.calls.tdh_mem_sept_add",     "seam.calls.tdh_mem_page_aug",     "seam.calls.tdh_mem_range_block",
      "seam.calls.tdh_mem_track",        "seam.calls.tdh_mem_page_demote",  "seam.calls.tdh_mem_page_remove",
      "seam.calls.tdg_mem_page_accept",  "seam.calls.tdh_phymem_page_wbinvd", "kvm.tdx.accept_splits",
      "kvm.tdx.kicks",                  "kvm.mmu_lock.write_acquisitions"};
  const Vm& vm;
  u64 at[std::size(kLeaves)] = {};
};

}  // namespace septsim::mmu::test
