// `septsim kvm-compare`: replays the fault stream imported from a real KVM
// recording (traces/ftrace_import.h) through the model and sets the model's
// decisions next to the kernel's: per phase (marker to marker) the
// pages_4k/2m/1g census against KVM's own `vm_at_end` stats, and per fault
// the model's mapping level against kvm_mmu_spte_requested. Cases where a TDP
// model and a shadow-MMU recording must differ are counted apart, not as
// disagreement (docs/kvm-compare.md).
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/config.h"
#include "traces/ftrace_import.h"

namespace septsim::traces {

struct KvmCompareOptions {
  std::string trace_path;  // ftrace text
  std::string stats_path;  // KVM's stats JSON (optional)
  std::string work_dir;    // where the imported trace is written (removed afterwards)
  model::Config config;
  FtraceImportOptions import;
};

struct PhaseComparison {
  std::string name;
  u64 model_pages[4] = {};  // PG_LEVEL_4K..PG_LEVEL_1G at the phase end
  bool have_kvm = false;
  u64 kvm_pages[4] = {};
  bool census_agrees = false;
  std::string census_excluded;  // why the census is kept out of the agreement ("" = compared)
  u64 faults_compared = 0, faults_agree = 0, prefetches = 0;
  std::map<std::string, u64> faults_excluded;  // reason -> faults
  u64 huge_in_place = 0;  // the model's in-place huge splits and recoveries, replay start to phase end
};

struct KvmCompareResult {
  FtraceImportReport import;
  std::vector<PhaseComparison> phases;
  u64 faults_compared = 0, faults_agree = 0;
  std::map<std::string, u64> faults_excluded;
  u64 census_compared = 0, census_agree = 0;
  std::vector<std::string> disagreements;  // the first few, "trace:LINE: ..."
  std::vector<std::string> warnings;
  // Model settings the recording's MMU decided ("mmu.eager_page_split=false: ..."),
  // over the options given.
  std::vector<std::string> settings;
  nlohmann::json to_json() const;
  std::string table() const;
  // Every compared fault level and every compared phase census agree (and
  // something was compared).
  bool agrees() const;
  // One line: "verdict: AGREE ..." or "verdict: DIFFER ..." with both numbers.
  std::string verdict() const;
};

// May run once per process (it starts the SystemC simulation). Throws
// TraceError / ReplayError / std::runtime_error naming the file at fault.
KvmCompareResult kvm_compare(const KvmCompareOptions& opts);

}  // namespace septsim::traces
