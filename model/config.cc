#include "model/config.h"

#include <algorithm>
#include <fstream>

namespace septsim::model {

namespace {

using T = Config::Type;

// Every key the model knows. Defaults are the skylake-sp preset.
const std::vector<Config::Param> kParams = {
    {"sim.quantum_ns", T::Int, "1000", "tlm_quantumkeeper global quantum in ns; 0 = strict ordering"},
    {"sim.seed", T::Int, "1", "seed for every random choice (random replacement)"},
    {"cpu.freq_mhz", T::Int, "2400", "core clock used to turn cycles into time (guess: a typical SKX SKU)"},
    {"host.mem_gib", T::Int, "1024", "host-physical memory the frame allocator may hand out"},
    {"host.maxphyaddr", T::Int, "46", "physical-address width; higher EPT address bits are reserved (SKX: 46)"},
    {"ept.levels", T::Int, "4", "EPT page-walk length: 4 or 5"},
    {"ept.ad", T::Bool, "true", "EPTP bit 6: EPT accessed/dirty flags enabled"},
    {"guest.levels", T::Int, "4", "default guest paging levels for GVA accesses: 4 or 5"},
    // TLBs: numbers.md 3.4 (Intel Optimization Manual, Skylake table 2-15).
    {"tlb.l1d.4k.entries", T::Int, "64", "L1 DTLB 4K entries (SKX: 64)"},
    {"tlb.l1d.4k.ways", T::Int, "4", "L1 DTLB 4K ways (SKX: 4)"},
    {"tlb.l1d.2m.entries", T::Int, "32", "L1 DTLB 2M entries (SKX: 32)"},
    {"tlb.l1d.2m.ways", T::Int, "4", "L1 DTLB 2M ways (SKX: 4)"},
    {"tlb.l1d.1g.entries", T::Int, "4", "L1 DTLB 1G entries (SKX: 4)"},
    {"tlb.l1d.1g.ways", T::Int, "4", "L1 DTLB 1G ways (SKX: 4)"},
    {"tlb.stlb.entries", T::Int, "1536", "STLB entries shared by 4K and 2M (SKX: 1536)"},
    {"tlb.stlb.ways", T::Int, "12", "STLB ways (SKX: 12)"},
    {"tlb.stlb_1g.entries", T::Int, "16", "STLB 1G entries (SKX: 16)"},
    {"tlb.stlb_1g.ways", T::Int, "4", "STLB 1G ways (SKX: 4)"},
    {"tlb.replacement", T::String, "lru", "TLB replacement: lru, plru (tree-PLRU) or random (seeded by sim.seed)"},
    // Paging-structure caches: sizes are not disclosed (numbers.md 3.4); ChampSim-like guesses.
    {"pwc.guest.pml5.entries", T::Int, "2", "guest PML5E cache entries (guess)"},
    {"pwc.guest.pml4.entries", T::Int, "4", "guest PML4E cache entries (guess)"},
    {"pwc.guest.pdpt.entries", T::Int, "8", "guest PDPTE cache entries (guess)"},
    {"pwc.guest.pd.entries", T::Int, "32", "guest PDE cache entries (guess)"},
    {"pwc.ept.pml5.entries", T::Int, "2", "EPT PML5E cache entries for guest-physical translations (guess)"},
    {"pwc.ept.pml4.entries", T::Int, "4", "EPT PML4E cache entries (guess)"},
    {"pwc.ept.pdpt.entries", T::Int, "8", "EPT PDPTE cache entries (guess)"},
    {"pwc.ept.pd.entries", T::Int, "32", "EPT PDE cache entries (guess)"},
    {"pwc.ways", T::Int, "4", "ways of every paging-structure cache (fully associative when >= entries)"},
    {"pwc.replacement", T::String, "lru", "paging-structure cache replacement: lru, plru or random"},
    // Latencies in cycles (numbers.md 3.3).
    {"latency.l1_tlb_hit", T::Int, "1", "L1 DTLB hit (guess: folded into the load pipeline)"},
    {"latency.stlb_hit", T::Int, "9", "STLB hit after an L1 miss (ChampSim 8, Haswell ~12: guess in between)"},
    {"latency.pwc_hit", T::Int, "1", "paging-structure cache lookup (guess)"},
    {"latency.walk_ref", T::Int, "20", "one paging-structure memory reference (Haswell cache-resident walk ~20: guess)"},
    {"latency.mem_access", T::Int, "4", "the data access itself after translation (guess: L1 hit)"},
    {"latency.vmexit", T::Int, "600", "VM exit to the host (guess)"},
    {"latency.vmentry", T::Int, "600", "VM entry back to the guest (guess)"},
    {"latency.fault_handler", T::Int, "1500", "KVM EPT-violation handler software path, excluding table walks (guess)"},
    {"latency.spte_write", T::Int, "30", "one SPTE write or cmpxchg by the MMU (guess)"},
    {"latency.page_alloc", T::Int, "200", "allocating a page-table or data page (guess)"},
    {"latency.tlb_flush", T::Int, "2000", "remote TLB flush: IPI + INVEPT per vCPU (guess)"},
    {"latency.invalidation", T::Int, "200", "INVEPT/INVVPID/INVLPG/INVPCID executed by the CPU (guess)"},
    {"latency.vm_ioctl", T::Int, "5000", "a VM ioctl (memslot, dirty log) outside the guest (guess)"},
    // MMU policy, named as KVM names the module parameters.
    {"mmu.eager_page_split", T::Bool, "true", "kvm.eager_page_split: split huge pages when dirty logging starts"},
    {"mmu.max_huge_level", T::Int, "3", "largest EPT leaf the MMU creates: 1 = 4K, 2 = 2M, 3 = 1G"},
    {"mmu.pml", T::Bool, "false", "page-modification logging: dirty logging clears D instead of write-protecting"},
    {"mmu.ad", T::Bool, "true", "KVM uses EPT A/D bits (!ad_disabled)"},
};

const std::map<std::string, std::map<std::string, std::string>> kPresets = {
    {"skylake-sp", {}},
    {"sapphire-rapids",
     {
         {"cpu.freq_mhz", "2000"},            // guess: a typical SPR SKU base clock
         {"host.maxphyaddr", "52"},           // 5-level capable platforms
         {"tlb.l1d.4k.entries", "96"},        // numbers.md 3.4: Golden Cove DTLB 96
         {"tlb.l1d.4k.ways", "6"},            // guess
         {"tlb.l1d.2m.entries", "32"},        // numbers.md marks as recalled
         {"tlb.l1d.1g.entries", "8"},         // numbers.md marks as recalled
         {"tlb.l1d.1g.ways", "8"},            // guess
         {"tlb.stlb.entries", "2048"},        // numbers.md marks as recalled
         {"tlb.stlb.ways", "16"},             // guess
         {"tlb.stlb_1g.entries", "1024"},     // numbers.md marks as recalled
         {"tlb.stlb_1g.ways", "8"},           // guess
         {"latency.stlb_hit", "8"},           // guess
     }},
};

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool parse_int(const std::string& v, u64& out) {
  if (v.empty()) return false;
  try {
    size_t pos = 0;
    out = std::stoull(v, &pos, 0);
    return pos == v.size() && v[0] != '-';
  } catch (...) {
    return false;
  }
}

void flatten(const nlohmann::json& j, const std::string& prefix, std::vector<std::pair<std::string, nlohmann::json>>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object())
      flatten(*it, key, out);
    else
      out.emplace_back(key, *it);
  }
}

}  // namespace

Config::Config() {
  for (const auto& p : kParams) values_[p.key] = p.default_value;
}

const std::vector<Config::Param>& Config::params() { return kParams; }

std::vector<std::string> Config::preset_names() {
  std::vector<std::string> names;
  for (const auto& [n, _] : kPresets) names.push_back(n);
  return names;
}

void Config::apply_preset(const std::string& name) {
  auto it = kPresets.find(name);
  if (it == kPresets.end()) {
    std::string known;
    for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw ConfigError("unknown preset '" + name + "' (known: " + known + ")");
  }
  for (const auto& p : kParams) values_[p.key] = p.default_value;
  for (const auto& [k, v] : it->second) values_[k] = v;
}

std::vector<std::string> Config::close_matches(const std::string& key) {
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& p : kParams) {
    size_t d = edit_distance(key, p.key);
    // A key that contains the text, or ends with the same last component, is close too.
    auto dot = p.key.rfind('.');
    bool suffix = dot != std::string::npos && key.size() > 2 && key.ends_with(p.key.substr(dot + 1));
    if (d <= std::max<size_t>(3, key.size() / 3) || p.key.find(key) != std::string::npos || suffix)
      scored.emplace_back(d, p.key);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && i < 3; ++i) out.push_back(scored[i].second);
  return out;
}

const Config::Param& Config::param(const std::string& key, const std::string& origin) const {
  for (const auto& p : kParams)
    if (p.key == key) return p;
  std::string msg = origin + ": unknown config key '" + key + "'";
  auto close = close_matches(key);
  if (!close.empty()) {
    msg += "; did you mean ";
    for (size_t i = 0; i < close.size(); ++i) msg += (i ? ", '" : "'") + close[i] + "'";
    msg += "?";
  }
  throw ConfigError(msg);
}

void Config::set(const std::string& key, const std::string& value, const std::string& origin) {
  const Param& p = param(key, origin);
  std::string v = value;
  if (p.type == Type::Int) {
    u64 n;
    if (!parse_int(v, n)) throw ConfigError(origin + ": key '" + key + "' wants a non-negative integer, got '" + value + "'");
  } else if (p.type == Type::Bool) {
    if (v == "1" || v == "on" || v == "yes") v = "true";
    if (v == "0" || v == "off" || v == "no") v = "false";
    if (v != "true" && v != "false") throw ConfigError(origin + ": key '" + key + "' wants true or false, got '" + value + "'");
  }
  values_[key] = v;
}

void Config::load_json(const nlohmann::json& j, const std::string& origin) {
  if (!j.is_object()) throw ConfigError(origin + ": a config file must hold a JSON object");
  if (j.contains("preset")) {
    if (!j["preset"].is_string()) throw ConfigError(origin + ": field 'preset' must be a string");
    apply_preset(j["preset"].get<std::string>());
  }
  std::vector<std::pair<std::string, nlohmann::json>> flat;
  flatten(j, "", flat);
  for (const auto& [k, v] : flat) {
    if (k == "preset") continue;
    std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    if (v.is_array() || v.is_null()) throw ConfigError(origin + ": key '" + k + "' has a value of the wrong kind");
    set(k, text, origin);
  }
}

void Config::load_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open config file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw ConfigError(path + ": malformed JSON: " + e.what());
  }
  load_json(j, path);
}

u64 Config::u(const std::string& key) const {
  const Param& p = param(key, "config");
  u64 n = 0;
  if (p.type != Type::Int || !parse_int(values_.at(key), n)) throw ConfigError("config key '" + key + "' is not an integer");
  return n;
}

bool Config::b(const std::string& key) const {
  const Param& p = param(key, "config");
  if (p.type != Type::Bool) throw ConfigError("config key '" + key + "' is not a boolean");
  return values_.at(key) == "true";
}

const std::string& Config::s(const std::string& key) const {
  param(key, "config");
  return values_.at(key);
}

nlohmann::json Config::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& p : kParams) {
    const std::string& v = values_.at(p.key);
    if (p.type == Type::Int)
      out[p.key] = u(p.key);
    else if (p.type == Type::Bool)
      out[p.key] = v == "true";
    else
      out[p.key] = v;
  }
  return out;
}

}  // namespace septsim::model
