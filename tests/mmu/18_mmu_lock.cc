// mmu_lock as a read/write lock in simulated time (docs/design.md, "mmu_lock"):
// faults share it and install with cmpxchg against their snapshot, zaps take
// it exclusively, waits are charged to whoever asked; remote flushes cost an
// IPI per other running vCPU plus the target's exit, INVEPT and entry. Every
// expected number is worked out from the default latencies: fault_handler
// 1500, page_alloc 200, spte_write 30, tlb_flush 2000, ipi 3000, vmexit 600,
// invalidation 200, vmentry 600.
#include "mmu/mmu_lock.h"
#include "mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

constexpr Cycles kHandler = 1500, kAlloc = 200, kWrite = 30, kFlush = 2000, kIpi = 3000;
constexpr Cycles kTargetFlush = 600 + 200 + 600;  // the target's exit, INVEPT and entry

// A VM with a 2 MiB slot and a second vCPU; both have loaded the root.
struct TwoVcpus {
  TwoVcpus() {
    vm.kvm->add_vcpu(other);
    vm.kvm->create_memslot(slot(0, 0, 2 * MiB));
    vm.enter();
    vm.kvm->service_requests(other, other.take_requests());
  }
  Cycles fault(FakeVcpu& v, Cycles at, Gpa gpa) {
    v.now = at;
    return vm.kvm->handle_ept_violation(v, gpa, ept::access_qual(AccessType::Write));
  }
  Vm vm;
  FakeVcpu other{1};
};

}  // namespace

TEST_CASE("mmu_lock readers share, a writer waits for readers and readers for a writer", "[mmu][mmu_lock]") {
  model::StatsRegistry stats;
  MmuLock lock(stats);
  REQUIRE(lock.acquire(MmuLockMode::Read, 0) == 0);
  lock.release(MmuLockMode::Read, 0, 100);
  REQUIRE(lock.acquire(MmuLockMode::Read, 50) == 50);  // shared
  lock.release(MmuLockMode::Read, 50, 120);
  // A writer asking inside both read windows waits for the later release.
  REQUIRE(lock.acquire(MmuLockMode::Write, 60) == 120);
  lock.release(MmuLockMode::Write, 120, 300);
  REQUIRE(lock.acquire(MmuLockMode::Read, 150) == 300);
  REQUIRE(lock.acquire(MmuLockMode::Read, 300) == 300);  // the window is half-open
  CHECK(stats.value("kvm.mmu_lock.read_acquisitions") == 4);
  CHECK(stats.value("kvm.mmu_lock.write_acquisitions") == 1);
  CHECK(stats.value("kvm.mmu_lock.contended") == 2);
  CHECK(stats.value("kvm.mmu_lock.wait_cycles") == (120 - 60) + (300 - 150));
}

TEST_CASE("two vCPUs fault on one 4K gfn at overlapping times: one FIXED, one SPURIOUS", "[mmu][mmu_lock]") {
  TwoVcpus t;
  // vCPU 0 at 10000: handler, host page, then under the read lock from
  // 11700 three tables and four SPTE writes; the leaf is visible at 12420.
  REQUIRE(t.fault(t.vm.vcpu, 10000, 0x5000) == kHandler + 4 * kAlloc + 4 * kWrite);
  // vCPU 1 at 11000 takes the read lock at 12500, while vCPU 0's window
  // [11700, 12420) has just closed: its walk sees the leaf.
  REQUIRE(t.fault(t.other, 11000, 0x5000) == kHandler);
  CHECK(t.vm.stat("kvm.pf_fixed") == 1);
  CHECK(t.vm.stat("kvm.pf_spurious") == 1);
  CHECK(t.vm.stat("kvm.pf_retry") == 0);
  CHECK(t.vm.stat("kvm.mmu_lock.contended") == 0);  // readers share
  CHECK(t.vm.kvm->pages(PG_LEVEL_4K) == 1);
  t.vm.require_clean();
}

TEST_CASE("a fault whose walk read the entry before another vCPU's install loses the cmpxchg", "[mmu][mmu_lock]") {
  TwoVcpus t;
  REQUIRE(t.fault(t.vm.vcpu, 10000, 0x5000) == kHandler + 4 * kAlloc + 4 * kWrite);  // visible at 12420
  // vCPU 1 at 10500 walks at 12000: non-present then, so its cmpxchg fails.
  REQUIRE(t.fault(t.other, 10500, 0x5000) == kHandler + kWrite);
  CHECK(t.vm.stat("kvm.pf_retry") == 1);
  CHECK(t.vm.stat("kvm.pf_fixed") == 1);
  CHECK(t.vm.stat("kvm.pf_spurious") == 0);
  // The vCPU's own install is visible to it at once, whatever the time.
  REQUIRE(t.fault(t.vm.vcpu, 10000, 0x5000) == kHandler);
  CHECK(t.vm.stat("kvm.pf_spurious") == 1);
  t.vm.require_clean();
}

TEST_CASE("faults overlapping a zap wait for its write lock, charged to the vCPU", "[mmu][mmu_lock]") {
  TwoVcpus t;
  t.fault(t.vm.vcpu, 0, 0x5000);
  // The zap at 100000: one SPTE write, then the remote flush: an IPI to each
  // of the two running vCPUs (neither is the caller) and the flush itself.
  t.vm.kvm->set_host_time(100000);
  const Cycles zap = kWrite + 2 * kIpi + kFlush;
  REQUIRE(t.vm.kvm->zap_gfn_range(0x5000, kPageSize) == zap);  // holds [100000, 108030)
  CHECK(t.vm.vcpu.charged == kTargetFlush);
  CHECK(t.other.charged == kTargetFlush);
  CHECK(t.vm.stat("kvm.remote_tlb_flush_ipis") == 2);
  // vCPU 0 at 101000 asks for the read lock at 102500 and waits until 108030;
  // the leaf table is still there: one write.
  const Cycles wait = 100000 + zap - (101000 + kHandler);
  REQUIRE(t.fault(t.vm.vcpu, 101000, 0x5000) == kHandler + wait + kWrite);
  // vCPU 1 asking after the release does not wait.
  REQUIRE(t.fault(t.other, 100000 + zap, 0x6000) == kHandler + kAlloc + kWrite);
  CHECK(t.vm.stat("kvm.mmu_lock.contended") == 1);
  CHECK(t.vm.stat("kvm.mmu_lock.wait_cycles") == wait);
  t.vm.require_clean();
}

TEST_CASE("a zap that asks while a fault holds the read lock waits for its release", "[mmu][mmu_lock]") {
  TwoVcpus t;
  // vCPU 1 at 200000: handler and host page, then the read lock from 201700
  // for three tables and four writes, until 202420.
  REQUIRE(t.fault(t.other, 200000, 0x6000) == kHandler + 4 * kAlloc + 4 * kWrite);
  t.vm.kvm->set_host_time(201710);
  const Cycles hold_end = 200000 + kHandler + 4 * kAlloc + 4 * kWrite;
  REQUIRE(t.vm.kvm->zap_gfn_range(0x6000, kPageSize) == (hold_end - 201710) + kWrite + 2 * kIpi + kFlush);
  CHECK(t.vm.stat("kvm.mmu_lock.wait_cycles") == hold_end - 201710);
}

TEST_CASE("a remote flush sends an IPI to each running vCPU and none to a vCPU without a root", "[mmu][mmu_lock]") {
  TwoVcpus t;
  FakeVcpu idle(2);  // never entered: no root, not running
  t.vm.kvm->add_vcpu(idle);
  t.vm.kvm->set_host_time(0);
  t.vm.kvm->zap_gfn_range(0, kPageSize);  // nothing mapped: no flush
  CHECK(t.vm.stat("kvm.remote_tlb_flush") == 0);
  t.vm.kvm->set_host_time(0);
  t.vm.kvm->delete_memslot(0);  // fast zap: requests, no flush
  CHECK(t.vm.stat("kvm.remote_tlb_flush_ipis") == 0);
  t.vm.kvm->create_memslot(slot(0, 0, 2 * MiB));
  t.vm.kvm->set_host_time(0);
  t.vm.kvm->set_memslot_flags(0, KVM_MEM_LOG_DIRTY_PAGES);  // unconditional flush: two running vCPUs
  CHECK(t.vm.stat("kvm.remote_tlb_flush_ipis") == 2);
  CHECK(idle.charged == 0);
}
