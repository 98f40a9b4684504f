#include "traces/kvm_compare.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "traces/binary_trace.h"
#include "traces/reader.h"
#include "traces/replayer.h"

namespace septsim::traces {

namespace {

constexpr size_t kMaxReported = 20;
// Phase markers: kvmrec's, and the vocabulary's (docs/markers.md).
constexpr std::string_view kBeginPhase = "kvmrec: begin phase ", kBeginAction = "kvmrec: begin action ",
                           kEndPhase = "kvmrec: end phase ", kVocabBegin = "septsim: phase begin ",
                           kVocabEnd = "septsim: phase end ";

std::string phase_name(std::string_view text, std::string_view prefix) {
  if (text.substr(0, prefix.size()) != prefix) return {};
  std::string_view n = text.substr(prefix.size());
  return std::string(n.substr(0, n.find(' ')));
}

std::string hex(u64 v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

// "(97.9%)", or "(-)" when nothing was compared.
std::string percent(u64 agree, u64 n) {
  if (!n) return "(-)";
  char b[24];
  std::snprintf(b, sizeof b, "(%.1f%%)", 100.0 * double(agree) / double(n));
  return b;
}

std::string when(u64 ts_ns) {
  char b[40];
  std::snprintf(b, sizeof b, "%llu.%06llu", static_cast<unsigned long long>(ts_ns / 1000000000ull),
                static_cast<unsigned long long>(ts_ns % 1000000000ull / 1000));
  return b;
}

// KVM's stats file: {"phases":[{"name":..,"vm_at_end":{"pages_4k":..}}], "vm_stats":{..}}.
struct KvmStats {
  std::vector<std::pair<std::string, std::array<u64, 4>>> phases;
};

KvmStats read_kvm_stats(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not JSON: " + e.what());
  }
  KvmStats s;
  if (!j.is_object() || !j.contains("phases") || !j["phases"].is_array())
    throw std::runtime_error(path + ": field 'phases': missing (expected KVM stats from kvmrec-vmm)");
  size_t i = 0;
  for (const auto& p : j["phases"]) {
    ++i;
    auto* end = p.is_object() && p.contains("vm_at_end") ? &p["vm_at_end"] : nullptr;
    if (!end || !end->is_object())
      throw std::runtime_error(path + ": field 'phases[" + std::to_string(i - 1) + "].vm_at_end': missing");
    std::array<u64, 4> pages{};
    const char* keys[4] = {nullptr, "pages_4k", "pages_2m", "pages_1g"};
    for (int l = 1; l <= 3; ++l) {
      const auto& v = (*end)[keys[l]];
      if (!v.is_number_unsigned())
        throw std::runtime_error(path + ": field 'phases[" + std::to_string(i - 1) + "].vm_at_end." + keys[l] +
                                 "': expected a non-negative integer");
      pages[size_t(l)] = v.get<u64>();
    }
    s.phases.push_back({p.value("name", std::string()), pages});
  }
  return s;
}

void add_excluded(std::map<std::string, u64>& m, const std::string& reason) { ++m[reason]; }

const char* kGuestCap = "guest page smaller than the model's mapping (shadow MMU maps at most the guest page size)";
// Where the shadow MMU and the model's TDP MMU take different paths with a
// huge page, the census cannot agree from then on (docs/kvm-compare.md).
const char* kShadowHuge =
    "the model split or rebuilt a huge page in place (tdp_mmu.c tdp_mmu_split_huge_page, "
    "kvm_tdp_mmu_recover_huge_pages); the shadow MMU drops the huge SPTE and maps one 4K page "
    "(mmu.c drop_large_spte), and zaps collapsible SPTEs when dirty logging stops "
    "(kvm_rmap_zap_collapsible_sptes)";

}  // namespace

KvmCompareResult kvm_compare(const KvmCompareOptions& opts) {
  KvmCompareResult res;
  namespace fs = std::filesystem;
  fs::path work = opts.work_dir.empty() ? fs::temp_directory_path() : fs::path(opts.work_dir);
  fs::path imported = work / ("septsim-kvm-compare-" + std::to_string(::getpid()) + ".sstb");
  {
    BinaryTraceWriter w(imported.string());
    res.import = import_ftrace(opts.trace_path, w, opts.import);
    w.finish();
  }

  int current = -1;
  ReplayOptions ro;
  ro.trace_path = imported.string();
  ro.config = opts.config;
  if (res.import.host_mmu == "shadow") {
    // Eager splitting acts on TDP MMU roots only (mmu.c:
    // kvm_mmu_slot_try_split_huge_pages returns without the TDP MMU; the
    // shadow MMU's rmap split is for nested MMUs), whatever
    // kvm.eager_page_split says: dirty logging only write-protects.
    ro.config.set("mmu.eager_page_split", "false", "kvm-compare (shadow MMU recording)");
    res.settings.push_back("mmu.eager_page_split=false: the shadow MMU does not split huge pages when dirty logging starts");
  }
  ro.on_annotation = [&](const Event& e, const AnnotationState& st) {
    if (e.type == EventType::Marker) {
      std::string begin = phase_name(e.name, kBeginPhase);
      if (begin.empty()) begin = phase_name(e.name, kBeginAction);
      if (begin.empty()) begin = phase_name(e.name, kVocabBegin);
      if (!begin.empty()) {
        res.phases.push_back(PhaseComparison{});
        res.phases.back().name = begin;
        current = int(res.phases.size()) - 1;
        return;
      }
      std::string end = phase_name(e.name, kEndPhase);
      if (end.empty()) end = phase_name(e.name, kVocabEnd);
      if (!end.empty() && current >= 0) {
        PhaseComparison& p = res.phases[size_t(current)];
        for (int l = 1; l <= 3; ++l) p.model_pages[l] = st.pages[l];
        p.huge_in_place = st.huge_splits + st.huge_recoveries;
        current = -1;
      }
      return;
    }
    PhaseComparison* p = current >= 0 ? &res.phases[size_t(current)] : nullptr;
    if (e.decision == DecisionKind::Prefetch) {
      if (p) ++p->prefetches;
      return;
    }
    if (e.decision != DecisionKind::Map || e.vcpu < 0) return;
    int rec = e.page_level, model = st.model_level, guest = e.guest_level;
    if (guest > 0 && rec <= guest && model > guest) {
      add_excluded(res.faults_excluded, kGuestCap);
      if (p) add_excluded(p->faults_excluded, kGuestCap);
      return;
    }
    ++res.faults_compared;
    if (p) ++p->faults_compared;
    if (rec == model) {
      ++res.faults_agree;
      if (p) ++p->faults_agree;
    } else if (res.disagreements.size() < kMaxReported) {
      res.disagreements.push_back(opts.trace_path + ": t=" + when(e.ts_ns) + " vcpu " + std::to_string(e.vcpu) +
                                  " gpa " + hex(e.gpa) + ": kernel mapped level " + std::to_string(rec) +
                                  ", model level " + std::to_string(model) +
                                  (model == 0 ? " (no mapping)" : ""));
    }
  };
  ReplayReport rr;
  try {
    rr = replay(ro);
  } catch (...) {
    fs::remove(imported);
    throw;
  }
  fs::remove(imported);

  if (res.phases.empty()) {
    // No kvmrec phase markers: the whole recording is one phase.
    PhaseComparison p;
    p.name = "all";
    p.faults_compared = res.faults_compared;
    p.faults_agree = res.faults_agree;
    p.faults_excluded = res.faults_excluded;
    p.prefetches = res.import.prefetches;
    const char* keys[4] = {nullptr, "kvm.pages_4k", "kvm.pages_2m", "kvm.pages_1g"};
    for (int l = 1; l <= 3; ++l) p.model_pages[l] = rr.totals.count(keys[l]) ? rr.totals.at(keys[l]) : 0;
    for (const char* k : {"kvm.split_huge_page", "kvm.recover_huge_page"})
      p.huge_in_place += rr.totals.count(k) ? rr.totals.at(k) : 0;
    res.phases.push_back(p);
  }

  if (!opts.stats_path.empty()) {
    KvmStats ks = read_kvm_stats(opts.stats_path);
    if (ks.phases.size() != res.phases.size())
      res.warnings.push_back(opts.stats_path + ": " + std::to_string(ks.phases.size()) + " phases, the trace has " +
                             std::to_string(res.phases.size()) + " phase markers; compared in order");
    for (size_t i = 0; i < res.phases.size() && i < ks.phases.size(); ++i) {
      PhaseComparison& p = res.phases[i];
      if (ks.phases[i].first != p.name && p.name != "all")
        res.warnings.push_back(opts.stats_path + ": phase " + std::to_string(i) + " is '" + ks.phases[i].first +
                               "' in the stats but '" + p.name + "' in the trace");
      p.have_kvm = true;
      for (int l = 1; l <= 3; ++l) p.kvm_pages[l] = ks.phases[i].second[size_t(l)];
      p.census_agrees = std::equal(p.model_pages + 1, p.model_pages + 4, p.kvm_pages + 1);
      if (p.prefetches)
        p.census_excluded = std::to_string(p.prefetches) + " SPTEs prefetched by the shadow MMU (a TDP MMU does not prefetch)";
      else if (p.faults_excluded.count(kGuestCap))
        p.census_excluded = "guest 4K pages over huge host pages: the shadow MMU maps 4K where a TDP MMU maps huge";
      else if (res.import.host_mmu == "shadow" && p.huge_in_place)
        p.census_excluded = kShadowHuge;
      if (p.census_excluded.empty()) {
        ++res.census_compared;
        if (p.census_agrees) ++res.census_agree;
      }
    }
  }
  return res;
}

nlohmann::json KvmCompareResult::to_json() const {
  using nlohmann::json;
  auto ratio = [](u64 a, u64 n) { return n ? json(double(a) / double(n)) : json(nullptr); };
  auto pages = [](const u64* p) { return json{{"pages_4k", p[1]}, {"pages_2m", p[2]}, {"pages_1g", p[3]}}; };
  json out;
  out["import"] = {{"lines", import.lines},
                   {"event_lines", import.event_lines},
                   {"malformed_lines", import.malformed_lines},
                   {"event_counts", import.event_counts},
                   {"unknown_events", import.unknown_events},
                   {"unknown_marker_count", import.unknown_marker_count},
                   {"unknown_markers", import.unknown_markers},
                   {"lost_events", import.lost_events},
                   {"write_protects", import.write_protects},
                   {"inferences", import.inferences},
                   {"faults", import.faults},
                   {"decisions", import.decisions},
                   {"prefetches", import.prefetches},
                   {"emulator_walks", import.emulator_walks},
                   {"host_unmaps", import.host_unmaps},
                   {"vcpus", import.vcpus},
                   {"host_mmu", import.host_mmu}};
  out["phases"] = json::array();
  for (const PhaseComparison& p : phases) {
    json j;
    j["name"] = p.name;
    j["model"] = pages(p.model_pages);
    j["kvm"] = p.have_kvm ? pages(p.kvm_pages) : json(nullptr);
    j["census_agrees"] = p.have_kvm ? json(p.census_agrees) : json(nullptr);
    j["census_excluded"] = p.census_excluded.empty() ? json(nullptr) : json(p.census_excluded);
    j["faults"] = {{"compared", p.faults_compared},
                   {"agree", p.faults_agree},
                   {"excluded", p.faults_excluded},
                   {"agreement", ratio(p.faults_agree, p.faults_compared)}};
    j["prefetches"] = p.prefetches;
    j["fault_agreement"] = ratio(p.faults_agree, p.faults_compared);
    out["phases"].push_back(j);
  }
  out["total"] = {{"faults_compared", faults_compared},
                  {"faults_agree", faults_agree},
                  {"faults_excluded", faults_excluded},
                  {"fault_agreement", ratio(faults_agree, faults_compared)},
                  {"census_compared", census_compared},
                  {"census_agree", census_agree},
                  {"census_agreement", ratio(census_agree, census_compared)}};
  out["verdict"] = {{"agree", agrees()}, {"text", verdict()}};
  out["disagreements"] = disagreements;
  out["warnings"] = warnings;
  out["settings"] = settings;
  return out;
}

std::string KvmCompareResult::table() const {
  std::ostringstream o;
  char line[256];
  o << "septsim kvm-compare (" << (import.host_mmu.empty() ? "no faults" : import.host_mmu + " MMU recording") << ", "
    << import.faults << " faults, " << import.decisions << " kernel decisions)\n";
  std::snprintf(line, sizeof line, "%-16s %21s %21s %-9s %s\n", "phase", "model 4k/2m/1g", "kvm 4k/2m/1g", "census",
                "fault levels agree (%)");
  o << line;
  for (const PhaseComparison& p : phases) {
    char m[48], k[48], f[64];
    std::snprintf(m, sizeof m, "%llu/%llu/%llu", (unsigned long long)p.model_pages[1], (unsigned long long)p.model_pages[2],
                  (unsigned long long)p.model_pages[3]);
    if (p.have_kvm)
      std::snprintf(k, sizeof k, "%llu/%llu/%llu", (unsigned long long)p.kvm_pages[1], (unsigned long long)p.kvm_pages[2],
                    (unsigned long long)p.kvm_pages[3]);
    else
      std::snprintf(k, sizeof k, "-");
    u64 excl = 0;
    for (const auto& [r, n] : p.faults_excluded) excl += n;
    std::snprintf(f, sizeof f, "%llu/%llu %s%s", (unsigned long long)p.faults_agree, (unsigned long long)p.faults_compared,
                  percent(p.faults_agree, p.faults_compared).c_str(),
                  excl ? (" (+" + std::to_string(excl) + " excluded)").c_str() : "");
    std::snprintf(line, sizeof line, "%-16s %21s %21s %-9s %s\n", p.name.c_str(), m, k,
                  !p.have_kvm ? "-" : !p.census_excluded.empty() ? "excluded" : p.census_agrees ? "agree" : "DIFFER", f);
    o << line;
  }
  std::snprintf(line, sizeof line, "total: fault levels %llu/%llu agree, census %llu/%llu phases agree\n",
                (unsigned long long)faults_agree, (unsigned long long)faults_compared, (unsigned long long)census_agree,
                (unsigned long long)census_compared);
  o << line;
  for (const auto& [r, n] : faults_excluded) o << "excluded: " << n << " faults: " << r << "\n";
  // One line per reason, naming its phases in order.
  std::vector<std::pair<std::string, std::string>> why;  // reason, phases
  for (const PhaseComparison& p : phases) {
    if (p.census_excluded.empty()) continue;
    auto it = std::find_if(why.begin(), why.end(), [&](const auto& w) { return w.first == p.census_excluded; });
    if (it == why.end()) why.push_back({p.census_excluded, p.name});
    else it->second += ", " + p.name;
  }
  for (const auto& [reason, names] : why)
    o << "excluded: census of phase" << (names.find(", ") != std::string::npos ? "s " : " ") << names << ": " << reason
      << "\n";
  for (const auto& d : disagreements) o << "differ: " << d << "\n";
  for (const auto& w : warnings) o << "warning: " << w << "\n";
  for (const auto& w : settings) o << "model: " << w << "\n";
  for (const auto& i : import.inferences) o << "inferred: " << i << "\n";
  o << verdict() << "\n";
  return o.str();
}

bool KvmCompareResult::agrees() const {
  return (faults_compared || census_compared) && faults_agree == faults_compared && census_agree == census_compared;
}

std::string KvmCompareResult::verdict() const {
  if (!faults_compared && !census_compared) return "verdict: NOTHING COMPARED (no kernel mapping decisions, no KVM stats)";
  std::string both = "fault levels " + std::to_string(faults_agree) + "/" + std::to_string(faults_compared) + " " +
                     percent(faults_agree, faults_compared) + ", census " + std::to_string(census_agree) + "/" +
                     std::to_string(census_compared) + " phases" +
                     (census_compared ? ""
                      : std::any_of(phases.begin(), phases.end(), [](const PhaseComparison& p) { return p.have_kvm; })
                          ? " (every census excluded)"
                          : " (no KVM stats given)");
  if (agrees()) return "verdict: AGREE: " + both;
  std::string first;
  for (const PhaseComparison& p : phases)
    if (p.faults_agree != p.faults_compared || (p.have_kvm && p.census_excluded.empty() && !p.census_agrees)) {
      first = "; first differing phase: " + p.name;
      break;
    }
  return "verdict: DIFFER: " + both + first;
}

}  // namespace septsim::traces
