#include "traces/config_check.h"

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

}  // namespace

std::vector<std::string> config_problems(const model::Config& cfg) {
  std::vector<std::string> out;
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
