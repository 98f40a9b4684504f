// Hidden measurements (run with: test_mmu "[mmu-bench]"): fault-path rate
// and host memory per mapped 4K page at 16 GiB mapped.
#include <chrono>
#include <fstream>

#include "mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {
u64 rss_bytes() {
  std::ifstream in("/proc/self/statm");
  u64 size = 0, resident = 0;
  in >> size >> resident;
  return resident * 4096;
}
}  // namespace

TEST_CASE("Bench: 16 GiB of 4K faults", "[.][mmu-bench]") {
  u64 rss0 = rss_bytes();
  Vm vm({}, 64 * GiB);
  vm.kvm->create_memslot(slot(0, 0, 16 * GiB));
  vm.enter();
  const u64 pages = 16 * GiB / kPageSize;
  auto t0 = std::chrono::steady_clock::now();
  for (u64 i = 0; i < pages; ++i) vm.kvm->handle_ept_violation(vm.vcpu, i << kPageShift, ept::qual::kWrite);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  u64 rss1 = rss_bytes();
  REQUIRE(vm.kvm->pages(PG_LEVEL_4K) == pages);
  WARN("faults/s: " << u64(double(pages) / secs) << "; RSS bytes per mapped 4K page: "
                    << double(rss1 - rss0) / double(pages) << "; mmu_pages " << vm.stat("kvm.mmu_pages"));
  auto t1 = std::chrono::steady_clock::now();
  auto v = vm.violations();
  WARN("check_invariants: " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count() << " s, "
                            << v.size() << " violations");
  REQUIRE(v.empty());
}

TEST_CASE("Bench: 2M faults over 16 GiB THP, then dirty-log enable/disable", "[.][mmu-bench]") {
  Vm vm({}, 64 * GiB);
  vm.kvm->create_memslot(slot(0, 0, 16 * GiB, HostBacking::Thp2M));
  vm.enter();
  for (u64 gpa = 0; gpa < 16 * GiB; gpa += 2 * MiB) vm.kvm->handle_ept_violation(vm.vcpu, gpa, ept::qual::kWrite);
  auto t0 = std::chrono::steady_clock::now();
  vm.kvm->set_memslot_flags(0, KVM_MEM_LOG_DIRTY_PAGES);
  auto t1 = std::chrono::steady_clock::now();
  u64 dirty = 0;
  vm.kvm->get_dirty_log(0, &dirty);
  auto t2 = std::chrono::steady_clock::now();
  vm.kvm->set_memslot_flags(0, 0);
  auto t3 = std::chrono::steady_clock::now();
  using D = std::chrono::duration<double>;
  WARN("enable (split 8192 x 2M) " << D(t1 - t0).count() << " s, get_dirty_log " << D(t2 - t1).count()
                                   << " s, disable (recover) " << D(t3 - t2).count() << " s");
  REQUIRE(vm.kvm->pages(PG_LEVEL_2M) == 8192);
}
