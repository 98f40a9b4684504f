#include "model/timing.h"

namespace septsim::model {

Timing Timing::from(const Config& c) {
  Timing t;
  t.freq_mhz = c.u("cpu.freq_mhz");
  if (t.freq_mhz == 0) throw ConfigError("config key 'cpu.freq_mhz' must be > 0");
  t.l1_tlb_hit = c.u("latency.l1_tlb_hit");
  t.stlb_hit = c.u("latency.stlb_hit");
  t.pwc_hit = c.u("latency.pwc_hit");
  t.walk_ref = c.u("latency.walk_ref");
  t.mem_access = c.u("latency.mem_access");
  t.vmexit = c.u("latency.vmexit");
  t.vmentry = c.u("latency.vmentry");
  t.fault_handler = c.u("latency.fault_handler");
  t.spte_write = c.u("latency.spte_write");
  t.page_alloc = c.u("latency.page_alloc");
  t.tlb_flush = c.u("latency.tlb_flush");
  t.ipi = c.u("latency.ipi");
  t.invalidation = c.u("latency.invalidation");
  t.vm_ioctl = c.u("latency.vm_ioctl");
  t.memory = MemoryParams::from(c);
  return t;
}

}  // namespace septsim::model
