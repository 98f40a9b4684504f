// A TD VM fixture for the mmu tests: one TD vCPU (the fixture's FakeVcpu)
// on a 64 MiB THP-backed memslot at GPA 0, created through a TDX module.
#pragma once
#include "mmu/tdx_vm.h"
#include "seam/tdx_module.h"
#include "tests/mmu/mmu_test_util.h"

namespace septsim::mmu::test {

struct TdVm {
  explicit TdVm(bool dynamic = false, const char* huge = "off")
      : vm({{"host.mem_gib", "8"}, {"seam.dynamic_pamt", dynamic ? "true" : "false"}, {"mmu.tdx_huge_pages", huge}},
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

}  // namespace septsim::mmu::test
