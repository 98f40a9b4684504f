#include "traces/stat_catalog.h"

#include <cstdio>
#include <sstream>

#include "traces/derived.h"

namespace septsim::traces {

namespace {

// "vcpu0.x" -> "vcpuN.x"
std::string generic_name(const std::string& name) {
  if (!name.starts_with("vcpu")) return name;
  size_t i = 4;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') ++i;
  if (i == 4 || i >= name.size() || name[i] != '.') return name;
  return "vcpuN" + name.substr(i);
}

const char* kind_name(model::StatsRegistry::Kind k) {
  switch (k) {
    case model::StatsRegistry::Kind::Counter: return "counter";
    case model::StatsRegistry::Kind::Gauge: return "gauge";
    default: return "histogram";
  }
}

bool has_segment(const std::string& name, const std::string& seg) {
  return name.find("." + seg) != std::string::npos || name.starts_with(seg);
}

}  // namespace

std::string stat_unit(const std::string& name, model::StatsRegistry::Kind kind) {
  if (name.find("cycles") != std::string::npos) return "cycles";
  if (kind == model::StatsRegistry::Kind::Histogram && name.ends_with(".wait")) return "cycles";
  if (name.ends_with("bytes_per_mapped_gib")) return "bytes per GiB mapped";
  if (name.find("bytes") != std::string::npos) return "bytes";
  if (name.ends_with("_mib")) return "MiB";
  if (name.find("pages") != std::string::npos) return "pages";
  if (has_segment(name, "calls")) return "calls";
  return "count";
}

std::string stat_module(const std::string& name) {
  // First matching prefix wins: the specific ones come first.
  static const std::pair<const char*, const char*> kModules[] = {
      {"vcpuN.dtlb.", "model/tlb (tlb_hierarchy)"},
      {"vcpuN.stlb.", "model/tlb (tlb_hierarchy)"},
      {"vcpuN.tlb.", "model/tlb (tlb_hierarchy)"},
      {"vcpuN.walk.", "model/walk (page_walker)"},
      {"vcpuN.psc.", "model/walk (psc)"},
      {"vcpuN.", "model (vcpu)"},
      {"kvm.mmu_lock.", "mmu (mmu_lock)"},
      {"kvm.slot_zap.", "mmu (zap_history)"},
      {"kvm.sp_meta.", "mmu (sp_metadata)"},
      {"kvm.tdx.merge.", "mmu (tdx_merge_stats: TD huge-page merges)"},
      {"kvm.tdx.", "mmu (tdx_vm: the TD side)"},
      {"kvm.", "mmu (mmu_stats)"},
      {"nested.", "mmu (nested_mmu)"},
      {"seam.", "seam (tdx_module)"},
      {"host.pamt_lock.", "seam (pamt_lock: the host kernel's Dynamic PAMT lock)"},
      {"replay.", "traces (replayer)"},
  };
  std::string n = generic_name(name);
  for (const auto& [prefix, module] : kModules)
    if (n.starts_with(prefix)) return module;
  return "";
}

std::vector<StatDescription> describe_stats(const std::vector<model::StatsRegistry::Info>& registered) {
  std::vector<StatDescription> out;
  for (const auto& s : registered)
    out.push_back({generic_name(s.name), kind_name(s.kind), stat_unit(s.name, s.kind), stat_module(s.name),
                   s.description});
  return out;
}

nlohmann::json stat_catalog_json(const std::vector<StatDescription>& stats) {
  nlohmann::json j;
  j["statistics"] = nlohmann::json::array();
  for (const auto& s : stats)
    j["statistics"].push_back(
        {{"name", s.name}, {"kind", s.kind}, {"unit", s.unit}, {"module", s.module}, {"meaning", s.meaning}});
  j["derived"] = nlohmann::json::array();
  for (const auto& d : derived_metrics())
    j["derived"].push_back({{"name", d.name},
                            {"unit", d.unit},
                            {"formula", d.formula},
                            {"meaning", d.meaning},
                            {"td_only", d.tdx}});
  return j;
}

std::string stat_catalog_text(const std::vector<StatDescription>& stats) {
  std::ostringstream out;
  char buf[512];
  out << "statistics (per phase and total in the stats file; vcpuN = each vCPU):\n";
  for (const auto& s : stats) {
    std::snprintf(buf, sizeof buf, "  %-38s %-9s %-10s %s [%s]\n", s.name.c_str(), s.kind.c_str(), s.unit.c_str(),
                  s.meaning.c_str(), s.module.c_str());
    out << buf;
  }
  out << "derived (each phase's \"derived\" object; vcpuN.x = the sum over every vCPU):\n";
  for (const auto& d : derived_metrics()) {
    std::snprintf(buf, sizeof buf, "  %-38s %-20s = %s%s\n", d.name.c_str(), d.unit.c_str(), d.formula.c_str(),
                  d.tdx ? "  (TDs only)" : "");
    out << buf;
  }
  return out.str();
}

std::string stat_catalog_markdown(const std::vector<StatDescription>& stats) {
  std::ostringstream out;
  auto esc = [](std::string s) {
    std::string r;
    for (char c : s) r += c == '|' ? std::string("\\|") : std::string(1, c);
    return r;
  };
  out << "| name | kind | unit | module | meaning |\n|---|---|---|---|---|\n";
  for (const auto& s : stats)
    out << "| `" << s.name << "` | " << s.kind << " | " << s.unit << " | " << s.module << " | " << esc(s.meaning)
        << " |\n";
  out << "\n| derived | unit | formula | meaning |\n|---|---|---|---|\n";
  for (const auto& d : derived_metrics())
    out << "| `" << d.name << "` | " << d.unit << " | `" << d.formula << "` | " << esc(d.meaning)
        << (d.tdx ? " (TDs only)" : "") << " |\n";
  return out.str();
}

}  // namespace septsim::traces
