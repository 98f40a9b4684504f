// The default memory target for paging-structure references: reads and writes
// 8-byte entries of PhysMem and annotates a fixed latency (latency.walk_ref).
// Several walkers bind to it through a multi-passthrough socket.
//
// Once elaboration has finished it also grants TLM DMI, one 4 KiB frame at a
// time: read access to a frame with contents, write access too when the frame
// is allocated (the checks b_transport makes), with latency.walk_ref as the
// DMI read and write latency. Frames without contents are not granted (they
// read as zeros and must not be allocated by a read). When PhysMem::free()
// releases frames that have contents, their grants are revoked on every
// bound initiator.
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
  ~HostMemoryTarget() override;

  // DMI needs the backward path to revoke grants, which the socket knows only
  // from the end of elaboration on (tests that never start the simulation
  // call this by hand after completing the binding).
  void end_of_elaboration() override { elaborated_ = true; }

 private:
  void b_transport(int id, tlm::tlm_generic_payload& trans, sc_core::sc_time& delay);
  bool get_direct_mem_ptr(int id, tlm::tlm_generic_payload& trans, tlm::tlm_dmi& dmi);
  void revoke(Pfn first, u64 frames);

  PhysMem& mem_;
  sc_core::sc_time ref_latency_;  // precomputed: no sc_time construction per reference
  bool elaborated_ = false;       // the socket can reach its initiators: DMI may be granted
  u64 listener_;                  // PhysMem release listener id
};

}  // namespace septsim::model
