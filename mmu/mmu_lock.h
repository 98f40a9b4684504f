// kvm->mmu_lock, an rwlock (include/linux/kvm_host.h: rwlock_t mmu_lock on x86), as windows in simulated time
// (model/lock_windows.h). Each vCPU handles its exits at its own local time;
// readers share, a writer excludes everyone.
#pragma once
#include "mmu/kvm_op.h"
#include "mmu/mmu_lock_mode.h"
#include "mmu/tracepoints.h"
#include <vector>

#include "model/lock_windows.h"
#include "model/stats.h"
#include "model/types.h"

namespace septsim::mmu {


class MmuLock {
 public:
  explicit MmuLock(model::StatsRegistry& stats);

  // The time at which a holder asking at `at` gets the lock (>= at). The
  // wait is counted; the caller charges it to whoever asked.
  Cycles acquire(MmuLockMode mode, Cycles at);
  // The holder granted at `granted` drops the lock at `released`.
  void release(MmuLockMode mode, Cycles granted, Cycles released);
  // Forgets windows that ended at or before `floor` (no future request is
  // earlier than the slowest vCPU's local time), and past 2 * kMaxWindows all
  // but the kMaxWindows latest-released (a vCPU whose clock never advances).
  void prune(Cycles floor);
  static constexpr size_t kMaxWindows = 64;
  // The latest release so far: where a VM-wide ioctl starts by default (the
  // replayer runs ioctls at a barrier, after every vCPU's work).
  Cycles last_release() const { return last_release_; }
  size_t windows() const { return windows_.size(); }
  // Where a wait is reported (Kvm::set_tracepoints), or nullptr.
  void set_tracepoints(MmuTracepoints* tp) { tp_ = tp; }
  MmuTracepoints* tracepoints() const { return tp_; }
  // Whether a MmuLockGuard holds the write side right now.
  bool write_held() const { return write_held_; }
  void set_write_held(bool held) { write_held_ = held; }

 private:
  model::LockWindows windows_;
  Cycles last_release_ = 0;
  bool write_held_ = false;
  MmuTracepoints* tp_ = nullptr;
  u64& read_acquisitions_;
  u64& write_acquisitions_;
  u64& contended_;
  u64& wait_cycles_;
  model::Histogram& wait_hist_;
};

// Holds mmu_lock for a scope on behalf of operation `op`: the wait is added
// to op.spent, and op.lock says what the operation holds until the scope
// ends (then what it held before).
class MmuLockGuard {
 public:
  MmuLockGuard(MmuLock& lock, MmuLockMode mode, KvmOp& op);
  ~MmuLockGuard();
  MmuLockGuard(const MmuLockGuard&) = delete;
  MmuLockGuard& operator=(const MmuLockGuard&) = delete;

 private:
  MmuLock& lock_;
  MmuLockMode mode_;
  KvmOp& op_;
  std::optional<MmuLockMode> held_before_;
  Cycles granted_;
};

}  // namespace septsim::mmu
