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
//
// With memory.model = hierarchy it also holds the shared LLC and the DRAM
// (model/cache/): a timing-only line access (a payload carrying a LineAccess
// extension, sent by a vCPU's L2 on a miss) goes on to the LLC through the
// `uncore` socket and never touches PhysMem.
#pragma once
#include <memory>
#include <systemc>
#include <tlm>
#include <tlm_utils/multi_passthrough_target_socket.h>
#include <tlm_utils/simple_initiator_socket.h>

#include "model/cache/cache.h"
#include "model/cache/dram.h"
#include "model/phys_mem.h"
#include "model/timing.h"

namespace septsim::model {

class HostMemoryTarget : public sc_core::sc_module {
 public:
  tlm_utils::multi_passthrough_target_socket<HostMemoryTarget> socket;
  // Line accesses to the shared levels (bound to the LLC under memory.model = hierarchy).
  tlm_utils::simple_initiator_socket_optional<HostMemoryTarget>
      uncore;

  HostMemoryTarget(sc_core::sc_module_name name, PhysMem& mem, const Timing& timing);
  ~HostMemoryTarget() override;

  // DMI needs the backward path to revoke grants, which the socket knows only
  // from the end of elaboration on (tests that never start the simulation
  // call this by hand after completing the binding).
  void end_of_elaboration() override { elaborated_ = true; }

  // The shared levels (null under memory.model = flat).
  Cache* llc() { return llc_.get(); }
  Dram* dram() { return dram_.get(); }

 private:
  void b_transport(int id, tlm::tlm_generic_payload& trans, sc_core::sc_time& delay);
  bool get_direct_mem_ptr(int id, tlm::tlm_generic_payload& trans, tlm::tlm_dmi& dmi);
  void revoke(Pfn first, u64 frames);

  PhysMem& mem_;
  sc_core::sc_time ref_latency_;  // precomputed: no sc_time construction per reference
  bool elaborated_ = false;       // the socket can reach its initiators: DMI may be granted
  u64 listener_;                  // PhysMem release listener id
  Cycles flat_line_;              // a line access with no hierarchy: latency.walk_ref
  std::unique_ptr<Cache> llc_;
  std::unique_ptr<Dram> dram_;
};

}  // namespace septsim::model
