#include "model/cache/dram.h"

namespace septsim::model {

Dram::Dram(sc_core::sc_module_name name, const DramParams& p, const Timing& timing)
    : sc_core::sc_module(name),
      socket("socket"),
      row_bytes_(p.row_bytes ? p.row_bytes : kLineBytes),
      banks_(p.banks ? p.banks : 1),
      hit_(p.row_hit),
      miss_(p.row_miss),
      timing_(timing),
      open_(banks_, ~u64{0}) {
  socket.register_b_transport(this, &Dram::b_transport);
}

void Dram::b_transport(tlm::tlm_generic_payload& trans, sc_core::sc_time& delay) {
  const tlm::tlm_command cmd = trans.get_command();
  if (cmd == tlm::TLM_IGNORE_COMMAND) {
    if (LineTargetProbe* probe = trans.get_extension<LineTargetProbe>()) probe->target = this;
  } else {
    if (LineAccess* info = trans.get_extension<LineAccess>()) {
      access(trans.get_address(), cmd == tlm::TLM_WRITE_COMMAND, *info);
    } else {
      LineAccess local;
      delay += timing_.to_time(access(trans.get_address(), cmd == tlm::TLM_WRITE_COMMAND, local));
    }
  }
  trans.set_response_status(tlm::TLM_OK_RESPONSE);
}

}  // namespace septsim::model
