// Replays a trace through the model: builds the VM (PhysMem, Kvm, vCPUs, the
// memory target), runs the SystemC simulation, and returns the statistics.
// Per-vCPU events go to the vCPU threads in batches; VM-wide events (memslot
// and dirty-log ioctls, guest page-table setup, phases) run at a barrier once
// every vCPU has drained its queue, so results do not depend on the quantum
// except through timing.
#pragma once
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/stats.h"
#include "traces/derived.h"
#include "traces/event.h"
#include "traces/violation.h"
#include "traces/timeline.h"

namespace septsim::traces {

// Bad input found while replaying (an ioctl the VM refuses, a guest mapping
// that cannot be built): "FILE:LINE: message".
struct ReplayError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The model's state when the replay reaches an annotation (marker,
// kvm_decision), after every earlier event has run.
struct AnnotationState {
  int model_level = 0;  // kvm_decision with a vCPU: level of the model's leaf mapping gpa (0 = none)
  u64 pages[4] = {};    // present leaf SPTEs per level (index PG_LEVEL_4K..PG_LEVEL_1G)
  // So far in the replay: huge leaves split in place, tables replaced in
  // place by a huge leaf (kvm.split_huge_page, kvm.recover_huge_page).
  u64 huge_splits = 0, huge_recoveries = 0;
};

struct ReplayOptions {
  std::string trace_path;
  // The name errors and the stats file give the trace ("-" for standard
  // input, the compressed file's name); empty = trace_path.
  std::string display_path;
  model::Config config;
  bool check = false;     // run the invariant checker after VM-wide events and at the end
  bool progress = false;  // events/s and percent on stderr
  std::string emit_kvmmmu;  // when set: write the MMU's tracepoints here as ftrace text (traces/kvmmmu_writer.h)
  TimelineOptions timeline;  // when its path is set: write the timeline there (traces/timeline.h)
  // When set, each annotation waits for the vCPUs and is reported here
  // (kvm-compare); otherwise annotations are skipped.
  std::function<void(const Event&, const AnnotationState&)> on_annotation;
};

// The TDX module's pages after one VM-wide event (ReplayReport::td_series).
struct TdSample {
  u64 time_ns;        // simulated time
  u64 private_pages;  // seam.td_pages_4k: 4K-equivalent pages owned by TDs
  u64 sept_pages;     // seam.sept.pages: Secure-EPT pages, roots included
};

struct ReplayReport {
  u64 events = 0;
  std::vector<ReplayVm> vms;           // the trace's VMs, by id
  // When a VM is a TD: the module's pages after each VM-wide event (at most
  // 100 000 samples), for "a TD's private pages over time".
  std::vector<TdSample> td_series;
  u64 trace_fnv1a = 0;                 // checksum of the trace bytes (FNV-1a 64)
  u64 sim_time_ps = 0;                 // simulated time at the end
  std::vector<std::string> violations;  // invariant violations (--check), as Violation::text()
  std::vector<Violation> violation_records;  // the same, field by field
  u64 invariant_checks = 0;             // times --check ran (incremental checks and full sweeps)
  u64 invariant_full_sweeps = 0;        // of those, full sweeps of every rule over the whole state
  u64 invariant_rules = 0;              // rules of docs/invariants.md the checks applied
  std::vector<std::string> expect_mismatches;  // seamcall/tdcall "expect" not met: "FILE:LINE: ..." 
  // "FILE:LINE: why" when KVM killed the VM (KVM_BUG_ON, kvm_vm_dead); the
  // events after it were not replayed. Empty when the VM lived.
  std::string vm_dead;
  nlohmann::json stats;                 // StatsRegistry::to_json(), each phase with its "derived" section (traces/derived.h)
  std::map<std::string, u64> totals;    // flat totals
};

// Runs the whole replay; may be called once per process (SystemC cannot be
// restarted). Throws TraceError / ConfigError / KvmError with a message that
// names the file, line and field.
ReplayReport replay(const ReplayOptions& opts);

// Every statistic a replay registers (one vCPU: "vcpu0." stands for each
// vCPU), without running anything. Builds the model's modules, so call it
// at most once per process and not in one that replays.
std::vector<model::StatsRegistry::Info> registered_stats(const model::Config& config);

// The human summary table, with the derived metrics per phase and, after
// --check, the invariants line.
std::string summary_table(const ReplayReport& r, const model::Config& cfg);
// The derived metrics of a stats JSON (with "derived" sections) as a table,
// one column per phase: VM 0's, or with `vm` ("vm1") that VM's
// ("vm_derived"). `active_only`: only the phases in which the VM accessed
// memory or called the TDX module (and the total).
std::string derived_table(const nlohmann::json& stats, const std::string& vm = "", bool active_only = false);
// "invariants: K broken, N checks, M rules (...)"
std::string invariants_line(const ReplayReport& r);
// --check-report: the verdict and each violation (rule, event, file, line,
// details) for CI tools; `trace` is the name the file is given as.
nlohmann::json check_report_json(const ReplayReport& r, const std::string& trace);

}  // namespace septsim::traces
