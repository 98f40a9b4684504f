// A TLM target that passes every transaction on through an initiator port it
// does not own: a vCPU's L2 sends its misses through the port its page walker
// shares with the other vCPUs (to HostMemoryTarget and the shared LLC behind
// it), so one binding by the platform connects both.
#pragma once
#include <systemc>
#include <tlm>
#include <tlm_utils/simple_target_socket.h>

namespace septsim::model {

class Forward : public sc_core::sc_module {
 public:
  using Port = sc_core::sc_port_b<tlm::tlm_fw_transport_if<>>;
  tlm_utils::simple_target_socket_optional<Forward> socket;

  Forward(sc_core::sc_module_name name, Port& out) : sc_core::sc_module(name), socket("socket"), out_(out) {
    socket.register_b_transport(this, &Forward::b_transport);
  }

 private:
  void b_transport(tlm::tlm_generic_payload& trans, sc_core::sc_time& delay) { out_->b_transport(trans, delay); }
  Port& out_;
};

}  // namespace septsim::model
