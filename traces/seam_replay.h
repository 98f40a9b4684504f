// Executes the TDX trace events (td_create, seamcall, tdcall, td_vcpu) against
// the TDX module in the role of the VMM: fills RCX/RDX/R8 and the Dynamic PAMT
// pairs from the trace's TDs (a TDVPR from `vcpu`) and the host allocator, lets raw registers from
// the trace override them, and checks "expect" the way Linux compares
// statuses. A mismatch is recorded with the event's line.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "seam/pamt_refcount.h"
#include "seam/td_builder.h"
#include "seam/tdx_module.h"
#include "traces/event.h"

namespace septsim::traces {

class SeamReplay {
 public:
  SeamReplay(seam::TdxModule& tdx, model::PhysMem& mem, std::string trace_path)
      : tdx_(tdx), mem_(mem), dpamt_(tdx, mem), path_(std::move(trace_path)) {}

  // Runs one event starting at `now`; returns its cycles. Throws ReplayError
  // for events the replay cannot perform (a TD vCPU that is not running).
  Cycles run(const Event& e, Cycles now);
  const std::vector<std::string>& mismatches() const { return mismatches_; }

 private:
  Cycles td_create(const Event& e, Cycles now);
  Cycles seamcall(const Event& e, Cycles now);
  Cycles tdcall(const Event& e, Cycles now);
  Cycles td_vcpu(const Event& e, Cycles now);
  void fill_defaults(const Event& e, seam::SeamcallRegs& r, Cycles& cycles, Cycles now);
  Hpa page(int pg_level, Cycles& cycles, Cycles now);
  // The call's start: `sequential`, or the previous call's for "concurrent".
  Cycles start_of(const Event& e, Cycles sequential);
  Hpa tdr_of(const Event& e) const;
  bool given_flags_only(const Event& e, unsigned reg) const;
  // "expect" against the status, "expect_out" against the output registers.
  void check(const Event& e, const seam::SeamcallRegs& out, const char* what);
  [[noreturn]] void fail(const Event& e, const std::string& msg) const;

  seam::TdxModule& tdx_;
  model::PhysMem& mem_;
  seam::PamtRefcount dpamt_;
  std::string path_;
  std::map<u32, seam::TdHandle> tds_;
  std::vector<std::string> mismatches_;
  Cycles last_start_ = 0;
};

}  // namespace septsim::traces
