// The latency table: every cost the model charges, in cycles, read once from
// the configuration. Time stays integer cycles inside the model and becomes
// sc_time only at synchronisation points (to_time).
#pragma once
#include <systemc>

#include "model/cache/memory_params.h"
#include "model/config.h"

namespace septsim::model {

struct Timing {
  u64 freq_mhz = 2400;
  Cycles l1_tlb_hit = 1;
  Cycles stlb_hit = 9;
  Cycles pwc_hit = 1;
  Cycles walk_ref = 20;
  Cycles mem_access = 4;
  Cycles vmexit = 600;
  Cycles vmentry = 600;
  Cycles fault_handler = 1500;
  Cycles spte_write = 30;
  Cycles page_alloc = 200;
  Cycles tlb_flush = 2000;
  Cycles ipi = 3000;
  Cycles invalidation = 200;
  Cycles vm_ioctl = 5000;
  // memory.model = hierarchy: caches and DRAM replace walk_ref and mem_access
  // (model/cache/); default-constructed: flat.
  MemoryParams memory;

  static Timing from(const Config& c);

  // Cycles -> picoseconds -> sc_time (time resolution is 1 ps, SystemC's default).
  u64 to_ps(Cycles c) const { return c * 1000000ull / freq_mhz; }
  sc_core::sc_time to_time(Cycles c) const { return sc_core::sc_time::from_value(to_ps(c)); }
  Cycles from_time(const sc_core::sc_time& t) const { return t.value() * freq_mhz / 1000000ull; }
};

}  // namespace septsim::model
