#include "model/cache/memory_params.h"

namespace septsim::model {

namespace {
CacheParams level(const Config& c, const std::string& name, const std::string& latency_key) {
  CacheParams p;
  p.sets = u32(c.u("memory." + name + ".sets"));
  p.ways = u32(c.u("memory." + name + ".ways"));
  p.latency = c.u(latency_key);
  if (p.sets == 0 || p.ways == 0)
    throw ConfigError("config keys 'memory." + name + ".sets' and 'memory." + name + ".ways' must be > 0");
  return p;
}
}  // namespace

MemoryParams MemoryParams::from(const Config& c) {
  MemoryParams m;
  const std::string& model = c.s("memory.model");
  if (model != "flat" && model != "hierarchy")
    throw ConfigError("config key 'memory.model' must be flat or hierarchy, got '" + model + "'");
  m.hierarchy = model == "hierarchy";
  m.replacement = c.s("memory.replacement");
  if (m.replacement != "lru" && m.replacement != "random")
    throw ConfigError("config key 'memory.replacement' must be lru or random, got '" + m.replacement + "'");
  m.seed = c.u("sim.seed");
  m.l1i = level(c, "l1i", "latency.l1i");
  m.l1d = level(c, "l1d", "latency.l1d");
  m.l2 = level(c, "l2", "latency.l2");
  m.llc = level(c, "llc", "latency.llc");
  m.dram.banks = u32(c.u("memory.dram.banks"));
  m.dram.row_bytes = c.u("memory.dram.row_bytes");
  m.dram.row_hit = c.u("latency.dram_row_hit");
  m.dram.row_miss = c.u("latency.dram_row_miss");
  if (m.dram.banks == 0 || m.dram.row_bytes < kLineBytes)
    throw ConfigError("config keys 'memory.dram.banks' must be > 0 and 'memory.dram.row_bytes' >= 64");
  return m;
}

}  // namespace septsim::model
