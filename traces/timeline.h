// `septsim replay --timeline OUT.json`: what happened when, as Chrome
// trace-event JSON (Perfetto and chrome://tracing open it). One track per
// vCPU (tid 1 + i) and one for the VMM and the TDX module's calls made
// outside a vCPU's exit (tid 0):
// - VM-wide events (ioctls, TD life cycle, guest page-table setup) as slices
//   of their cycles on the VMM track; the guest's ACCEPT and MapGPA and L1's
//   nested events on their vCPU's track;
// - EPT violations handled by the MMU (kvm_page_fault, with the GPA and exit
//   qualification), fast_page_fault outcomes and huge-page splits as instants
//   on the track of the vCPU whose exit is handled (the VMM's in an ioctl),
//   and the handling of each EPT violation as a slice of the cycles it took;
// - every SEAMCALL and TDCALL as an instant with its leaf, level and status;
// - remote TLB flushes (with the IPIs sent), waits for mmu_lock (with the
//   cycles waited) and kicks of a TD's vCPUs (with the IPIs) as instants on
//   the track of the exit or ioctl that caused them, and so is each TD exit
//   (with the TD vCPU that left the guest);
// - phases as global instants and as slices on a "phases" track (tid 999999).
// Instants carry the simulated time at which their exit or ioctl began (the
// MMU adds its cycles to the vCPU's clock only when it returns). Times are
// simulated, so the file is byte-identical for the same input.
//
// Bounded: only events inside [from, to) are kept, at most `max_events` of
// them (the rest are counted in "otherData"); the phases are always kept.
// Written whole at the end (next to OUT, then renamed), or not at all.
#pragma once
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "mmu/tracepoints.h"
#include "seam/seamcall_observer.h"

namespace septsim::traces {

struct TimelineOptions {
  std::string path;
  u64 from_ps = 0;
  u64 to_ps = std::numeric_limits<u64>::max();
  u64 max_events = 1000000;
};

class TimelineWriter : public mmu::MmuTracepoints, public seam::SeamcallObserver {
 public:
  // `clock_ps(i)`: simulated time of vCPU i, of the VMM for -1.
  TimelineWriter(const TimelineOptions& opts, unsigned vcpus, std::function<u64(int)> clock_ps);

  // A slice of `dur_ps` on `track` (-1: the VMM, else a vCPU).
  void slice(int track, const std::string& name, u64 start_ps, u64 dur_ps, std::string args_json = "");
  void instant(int track, const std::string& name, u64 ts_ps, std::string args_json = "");
  // A phase starts at `ts_ps` (the previous one ends there); the first,
  // "warmup", starts at 0 and may be renamed before anything happened.
  void phase(const std::string& name, u64 ts_ps);
  void rename_phase(const std::string& name);
  // Ends the last phase at `end_ps` and writes the file; throws
  // std::runtime_error "PATH: ..." when it cannot.
  void finish(u64 end_ps);

  u64 kept() const { return events_.size(); }
  u64 dropped() const { return dropped_; }

  // mmu::MmuTracepoints
  void set_task(int vcpu_id) override { task_ = vcpu_id; }
  void kvm_page_fault(unsigned vcpu_id, u64 guest_rip, Gpa fault_address, u64 error_code) override;
  void fast_page_fault(unsigned vcpu_id, Gpa cr2_or_gpa, u64 error_code, u64 old_spte, u64 new_spte, int ret) override;
  void kvm_mmu_spte_requested(Gfn, Pfn, int) override {}
  void kvm_tdp_mmu_spte_changed(int, Gfn, int, u64, u64) override {}
  void kvm_mmu_split_huge_page(Gfn gfn, u64 spte, int level, int err) override;
  void remote_tlb_flush(unsigned ipis) override;
  void ipi_exit(unsigned target, Cycles cycles) override;
  void mmu_lock_wait(bool write, Cycles wait) override;
  void tdx_kick(unsigned ipis) override;
  void exit_handled(unsigned vcpu_id, Cycles cycles) override;
  // How long `c` cycles are, in ps (the replay's clock); without it exits
  // get no handling slice.
  void set_cycles_to_ps(std::function<u64(Cycles)> f) { cycles_ps_ = std::move(f); }
  // seam::SeamcallObserver
  void on_call(const seam::SeamcallOutcome& o) override;
  void on_td_exit(u32 vcpu) override;

 private:
  // A slice of `cycles` of host time on vCPU `vcpu_id`'s track from its clock now
  // (nothing without set_cycles_to_ps).
  void cycles_slice(unsigned vcpu_id, const char* name, Cycles cycles);
  bool keep(u64 ts_ps);
  void add(std::string event);

  TimelineOptions opts_;
  unsigned vcpus_;
  std::function<u64(int)> clock_ps_;
  std::function<u64(Cycles)> cycles_ps_;
  int task_ = -1;
  std::vector<std::string> events_;  // serialized trace events, in the order they happened in the replay
  u64 dropped_ = 0;
  std::string phase_name_;
  u64 phase_start_ = 0;
  bool in_phase_ = false;
};

// Forwards the MMU's tracepoints to two sinks (--emit-kvmmmu and --timeline).
// The tracepoints of a VM other than VM 0 while a timeline follows VM 0: its
// MMU's events are dropped, and its vCPU exits count as the VMM's, so the
// SEAMCALLs they make land on the VMM track rather than on a VM 0 vCPU's.
class OtherVmTracepoints : public mmu::MmuTracepoints {
 public:
  explicit OtherVmTracepoints(mmu::MmuTracepoints* vm0) : vm0_(vm0) {}
  void set_task(int) override { vm0_->set_task(-1); }
  void kvm_page_fault(unsigned, u64, Gpa, u64) override {}
  void fast_page_fault(unsigned, Gpa, u64, u64, u64, int) override {}
  void kvm_mmu_spte_requested(Gfn, Pfn, int) override {}
  void kvm_tdp_mmu_spte_changed(int, Gfn, int, u64, u64) override {}
  void kvm_mmu_split_huge_page(Gfn, u64, int, int) override {}

 private:
  mmu::MmuTracepoints* vm0_;
};

class TracepointTee : public mmu::MmuTracepoints {
 public:
  TracepointTee(mmu::MmuTracepoints* a, mmu::MmuTracepoints* b) : a_(a), b_(b) {}
  void set_task(int v) override { a_->set_task(v), b_->set_task(v); }
  void kvm_page_fault(unsigned v, u64 rip, Gpa gpa, u64 ec) override {
    a_->kvm_page_fault(v, rip, gpa, ec), b_->kvm_page_fault(v, rip, gpa, ec);
  }
  void fast_page_fault(unsigned v, Gpa gpa, u64 ec, u64 o, u64 n, int ret) override {
    a_->fast_page_fault(v, gpa, ec, o, n, ret), b_->fast_page_fault(v, gpa, ec, o, n, ret);
  }
  void kvm_mmu_spte_requested(Gfn gfn, Pfn pfn, int level) override {
    a_->kvm_mmu_spte_requested(gfn, pfn, level), b_->kvm_mmu_spte_requested(gfn, pfn, level);
  }
  void kvm_tdp_mmu_spte_changed(int as, Gfn gfn, int level, u64 o, u64 n) override {
    a_->kvm_tdp_mmu_spte_changed(as, gfn, level, o, n), b_->kvm_tdp_mmu_spte_changed(as, gfn, level, o, n);
  }
  void kvm_mmu_split_huge_page(Gfn gfn, u64 spte, int level, int err) override {
    a_->kvm_mmu_split_huge_page(gfn, spte, level, err), b_->kvm_mmu_split_huge_page(gfn, spte, level, err);
  }
  void remote_tlb_flush(unsigned ipis) override { a_->remote_tlb_flush(ipis), b_->remote_tlb_flush(ipis); }
  void ipi_exit(unsigned target, Cycles cycles) override { a_->ipi_exit(target, cycles), b_->ipi_exit(target, cycles); }
  void mmu_lock_wait(bool write, Cycles wait) override { a_->mmu_lock_wait(write, wait), b_->mmu_lock_wait(write, wait); }
  void tdx_kick(unsigned ipis) override { a_->tdx_kick(ipis), b_->tdx_kick(ipis); }
  void exit_handled(unsigned v, Cycles c) override { a_->exit_handled(v, c), b_->exit_handled(v, c); }

 private:
  mmu::MmuTracepoints *a_, *b_;
};

}  // namespace septsim::traces
