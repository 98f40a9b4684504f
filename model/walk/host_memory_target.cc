#include "model/walk/host_memory_target.h"

#include <cstring>

namespace septsim::model {

HostMemoryTarget::HostMemoryTarget(sc_core::sc_module_name name, PhysMem& mem, const Timing& timing)
    : sc_core::sc_module(name), socket("socket"), mem_(mem), ref_latency_(timing.to_time(timing.walk_ref)) {
  socket.register_b_transport(this, &HostMemoryTarget::b_transport);
}

void HostMemoryTarget::b_transport(int /*id*/, tlm::tlm_generic_payload& trans, sc_core::sc_time& delay) {
  const tlm::tlm_command cmd = trans.get_command();
  const u64 addr = trans.get_address();
  unsigned char* data = trans.get_data_ptr();
  trans.set_dmi_allowed(false);

  if (trans.get_byte_enable_ptr()) {
    trans.set_response_status(tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE);
    return;
  }
  if (trans.get_data_length() != sizeof(u64) || trans.get_streaming_width() < sizeof(u64)) {
    trans.set_response_status(tlm::TLM_BURST_ERROR_RESPONSE);
    return;
  }
  if (!data) {
    trans.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
    return;
  }
  if (addr & (sizeof(u64) - 1)) {
    trans.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return;
  }

  switch (cmd) {
    case tlm::TLM_READ_COMMAND: {
      u64 v = mem_.read64(addr);
      std::memcpy(data, &v, sizeof v);
      break;
    }
    case tlm::TLM_WRITE_COMMAND: {
      // Writes only land in allocated frames: anything else is a model bug.
      if (!mem_.is_allocated(addr >> kPageShift)) {
        trans.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
        return;
      }
      u64 v;
      std::memcpy(&v, data, sizeof v);
      mem_.write64(addr, v);
      break;
    }
    default:  // TLM_IGNORE_COMMAND: no access, no latency
      trans.set_response_status(tlm::TLM_OK_RESPONSE);
      return;
  }
  delay += ref_latency_;
  trans.set_response_status(tlm::TLM_OK_RESPONSE);
}

}  // namespace septsim::model
