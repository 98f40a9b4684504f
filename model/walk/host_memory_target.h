// The default memory target for paging-structure references: reads and writes
// 8-byte entries of PhysMem and annotates a fixed latency (latency.walk_ref).
// Several walkers bind to it through a multi-passthrough socket.
#pragma once
#include <systemc>
#include <tlm>
#include <tlm_utils/multi_passthrough_target_socket.h>

#include "model/phys_mem.h"
#include "model/timing.h"

namespace septsim::model {

class HostMemoryTarget : public sc_core::sc_module {
 public:
  tlm_utils::multi_passthrough_target_socket<HostMemoryTarget> socket;

  HostMemoryTarget(sc_core::sc_module_name name, PhysMem& mem, const Timing& timing);

 private:
  void b_transport(int id, tlm::tlm_generic_payload& trans, sc_core::sc_time& delay);
  PhysMem& mem_;
  sc_core::sc_time ref_latency_;  // precomputed: no sc_time construction per reference
};

}  // namespace septsim::model
