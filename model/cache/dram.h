// DRAM behind the last cache level: a fixed load-to-use latency per access,
// lower when the bank's open row already holds the line (row-buffer hit) than
// when the bank must open another row (precharge + activate). Addresses map
// to banks row by row: `row_bytes` consecutive bytes share a row of one bank,
// the next `row_bytes` go to the next bank. Every bank starts with no row open.
#pragma once
#include <systemc>
#include <tlm>
#include <tlm_utils/simple_target_socket.h>
#include <vector>

#include "model/cache/line_access.h"
#include "model/cache/memory_params.h"
#include "model/timing.h"

namespace septsim::model {

class Dram : public sc_core::sc_module, public LineTarget {
 public:
  tlm_utils::simple_target_socket_optional<Dram> socket;

  Dram(sc_core::sc_module_name name, const DramParams& p, const Timing& timing);

  Cycles access(u64 addr, bool /*write*/, LineAccess& info) {
    const u64 row_index = addr / row_bytes_;
    const u64 bank = row_index % banks_, row = row_index / banks_;
    info.served = MemLevel::DRAM;
    info.row_hit = open_[bank] == row;
    open_[bank] = row;
    ++(info.row_hit ? row_hits_ : row_misses_);
    info.cycles = info.row_hit ? hit_ : miss_;
    return info.cycles;
  }
  Cycles line_access(u64 addr, bool write, bool /*whole_line*/, LineAccess& info) override {
    return access(addr, write, info);
  }
  u64 row_hits() const { return row_hits_; }
  u64 row_misses() const { return row_misses_; }

 private:
  void b_transport(tlm::tlm_generic_payload& trans, sc_core::sc_time& delay);

  u64 row_bytes_, banks_;
  Cycles hit_, miss_;
  const Timing& timing_;
  std::vector<u64> open_;  // open row per bank; ~0 = none
  u64 row_hits_ = 0, row_misses_ = 0;
};

}  // namespace septsim::model
