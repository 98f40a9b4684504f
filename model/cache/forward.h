// A TLM target that passes every transaction on through an initiator port it
// does not own: a vCPU's L2 sends its misses through the port its page walker
// shares with the other vCPUs (to HostMemoryTarget and the shared LLC behind
// it), so one binding by the platform connects both. Or to another target's
// interface: the L1I's misses join the L1D's at the L2's socket, which takes
// one initiator.
#pragma once
#include <systemc>
#include <tlm>
#include <tlm_utils/simple_target_socket.h>

namespace septsim::model {

class Forward : public sc_core::sc_module {
 public:
  using Port = sc_core::sc_port_b<tlm::tlm_fw_transport_if<>>;
  tlm_utils::simple_target_socket_optional<Forward> socket;

  Forward(sc_core::sc_module_name name, Port& out) : sc_core::sc_module(name), socket("socket"), port_(&out) {
    socket.register_b_transport(this, &Forward::b_transport);
  }
  Forward(sc_core::sc_module_name name, tlm::tlm_fw_transport_if<>& out)
      : sc_core::sc_module(name), socket("socket"), target_(&out) {
    socket.register_b_transport(this, &Forward::b_transport);
  }

 private:
  void b_transport(tlm::tlm_generic_payload& trans, sc_core::sc_time& delay) {
    if (target_)
      target_->b_transport(trans, delay);
    else
      (*port_)->b_transport(trans, delay);
  }
  Port* port_ = nullptr;
  tlm::tlm_fw_transport_if<>* target_ = nullptr;
};

}  // namespace septsim::model
