// The human summary printed after a replay.
#include <cctype>
#include <cstdio>
#include <set>
#include <sstream>

#include "traces/derived.h"
#include "traces/replayer.h"

namespace septsim::traces {

namespace {

// Sum of every "<prefix>vcpuN.<suffix>" counter (prefix "" for VM 0, "vm1." ...).
u64 per_vcpu(const std::map<std::string, u64>& t, const std::string& prefix, const std::string& suffix) {
  u64 sum = 0;
  const std::string first = prefix + "vcpu";
  for (auto it = t.lower_bound(first); it != t.end() && it->first.starts_with(first); ++it)
    if (is_vcpu_key(std::string_view(it->first).substr(prefix.size()), suffix)) sum += it->second;
  return sum;
}

u64 get(const std::map<std::string, u64>& t, const std::string& name) {
  auto it = t.find(name);
  return it == t.end() ? 0 : it->second;
}

std::string pct(u64 part, u64 whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %%", whole ? 100.0 * double(part) / double(whole) : 0.0);
  return buf;
}

std::string ratio(u64 a, u64 b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", b ? double(a) / double(b) : 0.0);
  return buf;
}

// One VM's translation and KVM MMU counters (totals).
void vm_counters(std::ostringstream& out, const std::map<std::string, u64>& t, const std::string& p, bool tdx) {
  auto row = [&](const std::string& k, const std::string& v) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "  %-34s %s\n", k.c_str(), v.c_str());
    out << buf;
  };
  auto v = [&](const char* suffix) { return per_vcpu(t, p, suffix); };
  auto n = [&](const char* name) { return std::to_string(get(t, p + name)); };
  u64 acc = v("accesses_gpa") + v("accesses_gva");
  u64 walks = v("walks");
  u64 refs = v("walk.refs.guest") + v("walk.refs.ept");
  out << " translation\n";
  row("accesses (GPA / GVA)", std::to_string(v("accesses_gpa")) + " / " + std::to_string(v("accesses_gva")));
  row("TLB hit rate (L1 + STLB)", pct(v("tlb_hits"), acc));
  row("L1 DTLB hits / misses", std::to_string(v("dtlb.hits")) + " / " + std::to_string(v("dtlb.misses")));
  row("STLB hits / misses", std::to_string(v("stlb.hits")) + " / " + std::to_string(v("stlb.misses")));
  row("page walks (1D / 2D)", std::to_string(v("walk.walks_1d")) + " / " + std::to_string(v("walk.walks_2d")));
  row("references per walk", ratio(refs, walks));
  row("EPT violations / misconfigs", std::to_string(v("ept_violations")) + " / " + std::to_string(v("ept_misconfigs")));
  row("guest page faults", std::to_string(v("guest_page_faults")));
  out << " KVM MMU\n";
  row("pf_taken / pf_fixed", n("kvm.pf_taken") + " / " + n("kvm.pf_fixed"));
  row("pf_spurious / pf_fast / pf_emulate", n("kvm.pf_spurious") + " / " + n("kvm.pf_fast") + " / " + n("kvm.pf_emulate"));
  row("pages_4k / pages_2m / pages_1g", n("kvm.pages_4k") + " / " + n("kvm.pages_2m") + " / " + n("kvm.pages_1g"));
  row("huge pages split / recovered", n("kvm.split_huge_page") + " / " + n("kvm.recover_huge_page"));
  row("remote TLB flushes", n("kvm.remote_tlb_flush"));
  row("fast zaps (mmu_valid_gen)", n("kvm.mmu_zap_all_fast"));
  if (tdx) row("2M ACCEPTs redone as 4K", n("replay.accept_2m_fallbacks"));
}

}  // namespace

std::string summary_table(const ReplayReport& r, const model::Config& cfg) {
  const auto& t = r.totals;
  std::ostringstream out;
  auto row = [&](const std::string& k, const std::string& v) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "  %-34s %s\n", k.c_str(), v.c_str());
    out << buf;
  };
  out << "septsim replay summary\n";
  row("events", std::to_string(r.events));
  row("simulated time (ns)", std::to_string(r.sim_time_ps / 1000));
  row("quantum (ns)", std::to_string(cfg.u("sim.quantum_ns")));
  if (r.vms.size() <= 1) {
    vm_counters(out, t, "", !r.vms.empty() && r.vms[0].tdx);
    out << derived_table(r.stats);
  } else {
    for (size_t i = 0; i < r.vms.size(); ++i) {
      const ReplayVm& vm = r.vms[i];
      out << "VM " << i << ": " << (vm.tdx ? "TD" : vm.native ? "native (vm_type native: 1D walks)" : "normal VM") << ", " << vm.vcpus << " vCPU"
          << (vm.vcpus == 1 ? "" : "s") << (i ? ", statistics " + vm.prefix + "*" : std::string()) << "\n";
      vm_counters(out, t, vm.prefix, vm.tdx);
      out << derived_table(r.stats, i ? vm.prefix.substr(0, vm.prefix.size() - 1) : "", true);
    }
  }
  if (r.invariant_checks) out << invariants_line(r) << "\n";
  return out.str();
}

std::string invariants_line(const ReplayReport& r) {
  return "invariants: " + std::to_string(r.violations.size()) + " broken, " + std::to_string(r.invariant_checks) +
         " checks, " + std::to_string(r.invariant_rules) + " rules (after each VM-wide event, " +
         std::to_string(r.invariant_full_sweeps) + " of them full sweeps; docs/invariants.md)";
}

nlohmann::json check_report_json(const ReplayReport& r, const std::string& trace) {
  nlohmann::json j;
  j["trace"] = trace;
  j["broken"] = r.violation_records.size();
  j["checks"] = r.invariant_checks;
  j["full_sweeps"] = r.invariant_full_sweeps;
  j["rules"] = r.invariant_rules;
  j["violations"] = nlohmann::json::array();
  for (const Violation& v : r.violation_records)
    j["violations"].push_back(
        {{"rule", v.rule}, {"event", v.event}, {"file", trace}, {"line", v.line}, {"details", v.details}});
  // A VM that KVM killed also fails --check (docs/invariants.md).
  j["vm_dead"] = r.vm_dead.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.vm_dead);
  return j;
}

namespace {

std::string cell(const nlohmann::json& d, const std::string& key, const char* fmt) {
  auto it = d.find(key);
  if (it == d.end() || it->is_null()) return "-";
  char buf[40];
  if (it->is_number_unsigned())
    std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(it->get<u64>()));
  else
    std::snprintf(buf, sizeof buf, fmt, it->get<double>());
  return buf;
}

// "tdh_mem_page_aug" -> "TDH.MEM.PAGE.AUG"
std::string leaf_title(const std::string& key) {
  std::string s = key;
  for (char& ch : s) ch = ch == '_' ? '.' : char(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

}  // namespace

std::string derived_table(const nlohmann::json& stats, const std::string& vm, bool active_only) {
  if (!stats.contains("total") || !stats["total"].contains("derived")) return "";
  auto of = [&](const nlohmann::json& ph) -> const nlohmann::json* {
    if (vm.empty()) return &ph["derived"];
    if (!ph.contains("vm_derived") || !ph["vm_derived"].contains(vm)) return nullptr;
    return &ph["vm_derived"][vm];
  };
  // A phase in which the VM accessed memory or called the TDX module.
  auto active = [](const nlohmann::json& d) {
    auto positive = [&](const char* k) { return d.contains(k) && d[k].is_number_unsigned() && d[k].get<u64>() > 0; };
    return positive("accesses") || positive("tdx.seamcalls") || positive("tdx.tdcalls");
  };
  // One column per phase, and the total when there is more than one phase.
  std::vector<std::pair<std::string, const nlohmann::json*>> cols;
  for (const auto& ph : stats["phases"])
    if (const nlohmann::json* d = of(ph); d && (!active_only || active(*d)))
      cols.emplace_back(ph["name"].get<std::string>(), d);
  const nlohmann::json* total = of(stats["total"]);
  if (!total) return "";
  if (cols.size() != 1) cols.emplace_back("total", total);
  std::ostringstream out;
  auto line = [&](const std::string& title, const std::vector<std::string>& cells) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "  %-34s", title.c_str());
    out << buf;
    for (const auto& c : cells) {
      std::snprintf(buf, sizeof buf, " %14s", c.c_str());
      out << buf;
    }
    out << "\n";
  };
  auto row = [&](const std::string& title, const std::string& key, const char* fmt = "%.2f") {
    std::vector<std::string> cells;
    for (const auto& [name, d] : cols) cells.push_back(cell(*d, key, fmt));
    line(title, cells);
  };
  std::vector<std::string> names;
  for (const auto& [name, d] : cols) names.push_back(name.size() > 14 ? name.substr(0, 13) + "~" : name);
  {
    char buf[64];
    std::snprintf(buf, sizeof buf, " %-35s", "per phase (docs/stats.md)");
    out << buf;
    for (const auto& n : names) {
      std::snprintf(buf, sizeof buf, " %14s", n.c_str());
      out << buf;
    }
    out << "\n";
  }
  row("accesses", "accesses");
  row("L1 DTLB misses / 1000 accesses", "l1_dtlb_misses_per_1k_accesses");
  row("STLB misses / 1000 accesses", "stlb_misses_per_1k_accesses");
  row("  walks to 4K pages / 1000 acc.", "walks_completed_per_1k_accesses.4k");
  row("  walks to 2M pages / 1000 acc.", "walks_completed_per_1k_accesses.2m");
  row("  walks to 1G pages / 1000 acc.", "walks_completed_per_1k_accesses.1g");
  {
    std::vector<std::string> cells;
    for (const auto& [name, d] : cols) {
      auto it = d->find("walk_cycle_share");
      cells.push_back(it == d->end() || it->is_null() ? "-" : pct(u64(it->get<double>() * 1e6), 1000000));
    }
    line("share of vCPU cycles in walks", cells);
  }
  row("guest refs / walk", "refs_per_walk.guest");
  row("EPT refs / walk", "refs_per_walk.ept");
  row("cycles / access", "cycles_per_access");
  row("EPT violations / 1000 accesses", "ept_violations_per_1k_accesses");
  row("VM exits / 1000 accesses", "vmexits_per_1k_accesses");
  if (!cols.back().second->contains("tdx.seamcalls")) return out.str();
  out << " TDX module\n";
  row("SEAMCALLs", "tdx.seamcalls");
  // Every leaf called in any phase, in name order.
  std::set<std::string> leaves;
  for (const auto& [name, d] : cols)
    for (const auto& [k, v] : d->items())
      if (k.starts_with("tdx.seamcalls.")) leaves.insert(k);
  for (const auto& k : leaves) {  // a leaf not called in a phase has no key there
    std::vector<std::string> cells;
    for (const auto& [name, d] : cols) cells.push_back(d->contains(k) ? cell(*d, k, "%.0f") : "0");
    const std::string leaf = k.substr(std::string("tdx.seamcalls.").size());
    line("  " + leaf_title(leaf), cells);
    const std::string ck = "tdx.seam_cycles." + leaf;
    cells.clear();
    for (const auto& [name, d] : cols) cells.push_back(d->contains(ck) ? cell(*d, ck, "%.0f") : "0");
    line("    cycles", cells);
  }
  row("TDCALLs (TDG.MEM.PAGE.ACCEPT)", "tdx.tdcalls");
  row("TD exits", "tdx.td_exits");
  row("SEAMCALL + TDCALL + TD exit cycles", "tdx.seam_cycles");
  row("cycles / call", "tdx.seam_cycles_per_seamcall", "%.0f");
  row("Secure-EPT pages (phase end)", "tdx.sept_pages");
  row("TD private pages, 4K (phase end)", "tdx.private_pages");
  row("PAMT bytes (phase end)", "tdx.pamt_bytes");
  row("private 2M ranges split", "tdx.splits");
  row("  merged back", "tdx.merges");
  row("BUSY retries", "tdx.busy_retries");
  return out.str();
}

}  // namespace septsim::traces
