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
#include "model/vcpu.h"
#include "model/walk/host_memory_target.h"

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

// Maps every faulting GPA to the next 4 KiB of host memory from `first`.
struct MapOnFault : Hypervisor {
  walktest::Ept& ept;
  Hpa next;
  MapOnFault(walktest::Ept& e, Hpa first) : ept(e), next(first) {}
  Cycles handle_ept_violation(VcpuControl&, Gpa gpa, u64) override {
    ept.map(gpa & ~(kPageSize - 1), next);
    next += kPageSize;
    return 0;
  }
  Cycles handle_ept_misconfig(VcpuControl&, Gpa) override { return 0; }
  Cycles service_requests(VcpuControl& v, u32) override {
    v.load_eptp(ept.eptp());
    return 0;
  }
};

// One vCPU (prefix "vcpu0") on its own host memory target and EPT; the
// first GPA it touches lands at host frame kVcpuFirstFrame, the next at the
// frame after it, and so on.
constexpr Hpa kVcpuFirstFrame = 0x4000000000ull;

struct VcpuEnv {
  Config cfg;
  Timing timing;
  StatsRegistry stats;
  PhysMem mem{u64{64} << 30};
  walktest::Ept ept{mem, 4};
  MapOnFault hv;
  HostMemoryTarget target;
  Vcpu vcpu;
  explicit VcpuEnv(const Config& c, Hpa first_frame = kVcpuFirstFrame)
      : cfg(c),
        timing(Timing::from(cfg)),
        hv(ept, first_frame),
        target(unique_name("hostmem").c_str(), mem, timing),
        vcpu(unique_name("vcpu").c_str(), 0, cfg, timing, stats, hv) {
    vcpu.walker().mem.bind(target.socket);
    walktest::complete_binding(target, vcpu.walker().mem);
  }
  u64 stat(const std::string& n) const { return stats.value("vcpu0." + n); }
};

}  // namespace septsim::cachetest
