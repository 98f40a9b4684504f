// One 64-byte line access travelling down the memory hierarchy: a TLM generic
// payload (address, read or write, 64 bytes) carrying this extension. The
// level that serves the access says so here and writes its load-to-use
// latency in cycles; a target that does not know the extension annotates the
// payload's sc_time delay instead, which the level above converts.
#pragma once
#include <tlm>

#include "model/types.h"

namespace septsim::model {

enum class MemLevel : u8 { L1D = 0, L2 = 1, LLC = 2, DRAM = 3 };
constexpr unsigned kMemLevels = 4;
constexpr const char* kMemLevelNames[kMemLevels] = {"l1d", "l2", "llc", "dram"};

struct LineAccess : tlm::tlm_extension<LineAccess> {
  MemLevel served = MemLevel::DRAM;  // where the line was found
  bool row_hit = false;              // DRAM served it from an open row
  Cycles cycles = 0;                 // load-to-use latency, set by the level that served

  tlm::tlm_extension_base* clone() const override { return new LineAccess(*this); }
  void copy_from(const tlm::tlm_extension_base& other) override {
    *this = static_cast<const LineAccess&>(other);
  }
};

}  // namespace septsim::model
