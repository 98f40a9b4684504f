#include "traces/config_check.h"

#include <vector>

#include "model/types.h"

namespace septsim::traces {

namespace {

// Arrays above this size would not fit the u32 geometry of SetAssoc.
constexpr u64 kMaxEntries = u64{1} << 24;

std::string kv(const std::string& key, u64 v) { return key + " = " + std::to_string(v); }

void check_array(const model::Config& cfg, const std::string& entries_key, const std::string& ways_key,
                 bool zero_disables, bool wide_ways_ok, std::vector<std::string>& out) {
  u64 entries = cfg.u(entries_key), ways = cfg.u(ways_key);
  if (entries == 0) {
    if (!zero_disables) out.push_back(kv(entries_key, 0) + ": an array needs at least one entry (zero sets)");
    return;
  }
  if (entries > kMaxEntries) {
    out.push_back(kv(entries_key, entries) + ": more than " + std::to_string(kMaxEntries) + " entries");
    return;
  }
  if (ways == 0) {
    out.push_back(kv(ways_key, 0) + ": an array needs at least one way (zero ways)");
    return;
  }
  if (ways > entries) {
    if (wide_ways_ok) return;  // fully associative, as documented for the key
    out.push_back(kv(ways_key, ways) + " exceeds " + kv(entries_key, entries) +
                  " (ways > entries: set " + ways_key + " = " + std::to_string(entries) + " for a fully associative array)");
    return;
  }
  if (entries % ways != 0)
    out.push_back(kv(entries_key, entries) + " is not a multiple of " + kv(ways_key, ways) + " (" +
                  std::to_string(entries / ways) + " sets of " + std::to_string(ways) + " ways hold only " +
                  std::to_string(entries / ways * ways) + " entries)");
}

// The keys whose value is a word, with every word their readers take
// (aliases last). The readers (model/tlb/replacement.cc, model/walk/psc.cc,
// model/cache/memory_params.cc, mmu/sp_layout.cc, mmu/nested_mmu.cc,
// mmu/memslot_flush.cc, mmu/kvm.cc, mmu/tdx_merge_policy.cc,
// mmu/tdx_huge_pages.cc) would refuse any other only when the model is
// built: checked here, a sweep refuses it before its first point runs.
// tests/cli/05_sweep_safety_test.cc replays every word listed.
struct Choice {
  const char* key;
  std::vector<const char*> words;
};

const std::vector<Choice>& choices() {
  static const std::vector<Choice> kChoices = {
      {"tlb.replacement", {"lru", "plru", "random", "tree-plru"}},
      {"pwc.replacement", {"lru", "plru", "random", "tree-plru"}},
      {"memory.model", {"hierarchy", "flat"}},
      {"memory.replacement", {"lru", "random"}},
      {"mmu.sp_layout", {"external-in-union", "external-separate", "shadow-tdp-union", "tdp-only"}},
      {"mmu.nested.invept", {"free", "keep-sync"}},
      {"mmu.slot_zap", {"zap-all-fast", "zap-memslot"}},
      {"mmu.tdx_pamt_cache", {"vcpu", "vm", "kmem-cache"}},
      {"mmu.tdx_dpamt_series", {"v6", "rfc-v5"}},
      {"mmu.tdx_merge_policy", {"none", "A", "B", "C", "a", "b", "c"}},
      {"mmu.tdx_huge_pages", {"off", "rfc-v1", "v3", "v5"}},
      {"mmu.tdx_pending_access", {"kill", "count"}},
      {"mmu.tdx_private_dirty_log", {"refuse", "allow"}},
  };
  return kChoices;
}

void check_choice(const model::Config& cfg, const Choice& c, std::vector<std::string>& out) {
  const std::string& v = cfg.s(c.key);
  std::string known;
  for (const char* w : c.words) {
    if (v == w) return;
    known += std::string(known.empty() ? "" : ", ") + w;
  }
  out.push_back(std::string(c.key) + " = '" + v + "' is not one of its values (" + known + ")");
}

// Integer keys the model takes only in a range (mmu/kvm.cc, mmu/nested_mmu.cc).
void check_range(const model::Config& cfg, const char* key, u64 lo, u64 hi, std::vector<std::string>& out) {
  u64 v = cfg.u(key);
  if (v < lo || v > hi)
    out.push_back(kv(key, v) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
}

}  // namespace

std::vector<std::string> config_problems(const model::Config& cfg) {
  std::vector<std::string> out;
  for (const auto& c : choices()) check_choice(cfg, c, out);
  check_range(cfg, "ept.levels", 4, 5, out);
  check_range(cfg, "mmu.max_huge_level", 1, 3, out);
  check_range(cfg, "mmu.prev_roots", 0, 16, out);
  check_range(cfg, "host.mem_gib", 0, 16384, out);
  // mmu/kvm.cc: a merge policy needs split private 2M pages to merge.
  const std::string& merge = cfg.s("mmu.tdx_merge_policy");
  if (merge != "none" && cfg.s("mmu.tdx_huge_pages") == "off")
    out.push_back("mmu.tdx_merge_policy = '" + merge +
                  "' merges split private 2M pages, which need mmu.tdx_huge_pages = rfc-v1 or v3 (it is off)");
  for (const char* a : {"tlb.l1d.4k", "tlb.l1d.2m", "tlb.l1d.1g", "tlb.stlb", "tlb.stlb_1g"})
    check_array(cfg, std::string(a) + ".entries", std::string(a) + ".ways", false, false, out);
  // Paging-structure caches: 0 entries disables one; pwc.ways >= entries is
  // fully associative (the key's documented meaning).
  for (const char* side : {"guest", "ept"})
    for (const char* level : {"pml5", "pml4", "pdpt", "pd"})
      check_array(cfg, std::string("pwc.") + side + "." + level + ".entries", "pwc.ways", true, true, out);
  return out;
}

void check_config(const model::Config& cfg, const std::string& where) {
  auto problems = config_problems(cfg);
  if (!problems.empty()) throw model::ConfigError(where + ": " + problems.front());
}

}  // namespace septsim::traces
