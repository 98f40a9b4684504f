// Derived metrics: the ratios a user replays a trace for (TLB misses per
// 1000 accesses, share of vCPU cycles in walks, references per walk, ...),
// computed from one phase's counters. Every formula is listed by
// derived_metrics() and in docs/stats.md; the stats file carries them as each
// phase's "derived" object and the summary prints them per phase.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "model/types.h"

namespace septsim::traces {

// One VM of a replay (vm_create "vm" = its index in ReplayReport::vms).
struct ReplayVm {
  std::string prefix;  // of its statistics: "" for VM 0, "vmN." for VM N > 0
  u32 vcpus = 1;
  bool tdx = false;
  bool native = false;  // vm_type native: its vCPUs walk 1D (guest.native)
};

struct DerivedMetric {
  std::string name;     // key in the "derived" object ("tdx.seamcalls.<leaf>" stands for one key per leaf)
  std::string unit;     // "per 1000 accesses", "fraction", "cycles", ...
  std::string formula;  // in counter names; vcpuN.x means the sum over every vCPU
  std::string meaning;
  bool tdx = false;     // present only when the run had a TD
};

const std::vector<DerivedMetric>& derived_metrics();

// The "derived" object of one phase ({"counters": {...}, "histograms": {...}}
// as StatsRegistry::to_json() writes it). `td`: add the tdx.* keys. A ratio
// whose denominator is 0 is null. Values are rounded to 4 decimals so the
// JSON stays short and byte-identical.
nlohmann::json derive(const nlohmann::json& phase, bool td);

// "vcpu<digits>.<suffix>": a per-vCPU statistic of that suffix.
bool is_vcpu_key(std::string_view name, std::string_view suffix);

// True when the totals show a TD (a SEAMCALL was made or a TD exists).
bool has_td(const nlohmann::json& total_phase);

// Adds "derived" to every phase and to the total of a StatsRegistry JSON:
// VM 0's metrics, with the tdx.* keys when VM 0 is a TD or, in a one-VM
// replay, whenever the TDX module was used (raw seamcall traces). With
// several VMs, "vm_derived" holds each other VM's by its prefix without the
// dot ("vm1"), computed from its own counters and the host-wide seam.* ones.
void add_derived(nlohmann::json& stats, const std::vector<ReplayVm>& vms = {});

// The counters and histograms of VM `prefix` with the prefix removed, plus
// the host-wide seam.* counters: the input of derive() for that VM.
nlohmann::json vm_phase(const nlohmann::json& phase, const std::string& prefix);

}  // namespace septsim::traces
