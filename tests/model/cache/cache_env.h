// Test helpers for the memory hierarchy (model/cache/): a walker environment
// (walk_env.h) whose HostMemoryTarget holds the shared LLC and DRAM, with a
// vCPU-style L1D -> L2 -> uplink chain in front of the walker.
#pragma once
#include <memory>
#include <string>

#include "../walk/walk_env.h"
#include "model/cache/cache.h"
#include "model/cache/dram.h"
#include "model/cache/forward.h"

namespace septsim::cachetest {

using namespace septsim::model;
using walktest::unique_name;

inline Config hierarchy_config() {
  Config c;
  c.set("memory.model", "hierarchy");
  return c;
}

// A walker (prefix "t") whose references go through L1D and L2 to the
// target's LLC and DRAM.
struct HierWalker {
  walktest::Env env;
  std::unique_ptr<Cache> l1d, l2;
  std::unique_ptr<Forward> uplink;

  explicit HierWalker(int ept_levels = 4, Config c = hierarchy_config()) : env(ept_levels, c) {
    const MemoryParams& m = env.timing.memory;
    l1d = std::make_unique<Cache>(unique_name("l1d").c_str(), MemLevel::L1D, m.l1d, m.replacement, 1, env.timing,
                                  &env.stats, "t.mem.l1d");
    l2 = std::make_unique<Cache>(unique_name("l2").c_str(), MemLevel::L2, m.l2, m.replacement, 2, env.timing,
                                 &env.stats, "t.mem.l2");
    uplink = std::make_unique<Forward>(unique_name("uplink").c_str(), env.walker->mem);
    l1d->next.bind(l2->socket);
    l2->next.bind(uplink->socket);
    env.walker->attach_l1d(l1d.get());
  }

  // Sum of "t.mem.pte.<dim>.l<level>.<where>" over dims and levels.
  u64 pte_served(const std::string& where) const {
    u64 n = 0;
    for (const char* dim : {"guest", "ept"})
      for (int level = 1; level <= 5; ++level)
        n += env.stats.value(std::string("t.mem.pte.") + dim + ".l" + std::to_string(level) + "." + where);
    return n;
  }
};

}  // namespace septsim::cachetest
