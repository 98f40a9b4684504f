#include "mmu/mmu_lock.h"

#include <algorithm>

namespace septsim::mmu {

MmuLock::MmuLock(model::StatsRegistry& r)
    : read_acquisitions_(r.counter("kvm.mmu_lock.read_acquisitions", "mmu_lock taken for read (faults, root loads)")),
      write_acquisitions_(r.counter("kvm.mmu_lock.write_acquisitions",
                                    "mmu_lock taken for write (zaps, memslots, dirty log, conversions, TD removals)")),
      contended_(r.counter("kvm.mmu_lock.contended", "acquisitions that waited for a conflicting holder")),
      wait_cycles_(r.counter("kvm.mmu_lock.wait_cycles", "cycles spent waiting for mmu_lock")),
      wait_hist_(r.histogram("kvm.mmu_lock.wait", "cycles waited per contended acquisition")) {}

Cycles MmuLock::acquire(MmuLockMode mode, Cycles at) {
  ++(mode == MmuLockMode::Read ? read_acquisitions_ : write_acquisitions_);
  const Cycles t = windows_.acquire(mode == MmuLockMode::Write, at);
  if (t != at) {
    ++contended_;
    wait_cycles_ += t - at;
    wait_hist_.add(t - at);
  }
  return t;
}

void MmuLock::release(MmuLockMode mode, Cycles granted, Cycles released) {
  windows_.release(mode == MmuLockMode::Write, granted, released);
  last_release_ = std::max(last_release_, released);
}

void MmuLock::prune(Cycles floor) {
  windows_.forget_until(floor);
  windows_.cap(kMaxWindows);
}

MmuLockGuard::MmuLockGuard(MmuLock& lock, MmuLockMode mode, KvmOp& op)
    : lock_(lock), mode_(mode), op_(op), held_before_(op.lock) {
  const Cycles at = op.now();
  granted_ = lock.acquire(mode, at);
  op.spent += granted_ - at;
  op.lock = mode;
  if (granted_ != at)
    if (MmuTracepoints* tp = lock.tracepoints()) tp->mmu_lock_wait(mode == MmuLockMode::Write, granted_ - at);
  if (mode == MmuLockMode::Write) lock.set_write_held(true);
}

MmuLockGuard::~MmuLockGuard() {
  if (mode_ == MmuLockMode::Write) lock_.set_write_held(false);
  lock_.release(mode_, granted_, op_.now());
  op_.lock = held_before_;
}

}  // namespace septsim::mmu
