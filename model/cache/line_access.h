// One 64-byte line access travelling down the memory hierarchy: a TLM generic
// payload (address, read or write, 64 bytes) carrying this extension. The
// level that serves the access says so here and writes its load-to-use
// latency in cycles; a target that does not know the extension annotates the
// payload's sc_time delay instead, which the level above converts.
//
// LineTarget and LineTargetProbe are the timing counterpart of TLM DMI: a
// level asks once what its `next` socket reaches by sending a
// TLM_IGNORE_COMMAND payload that carries a LineTargetProbe. A level of
// model/cache answers with itself (pass-through modules pass the probe on),
// and the asking level then calls it directly for every later access; a
// target of the user's own leaves the answer empty and keeps getting
// b_transport. Either way the cycles and the level that served are the same.
#pragma once
#include <tlm>

#include "model/types.h"

namespace septsim::model {

// L1I comes last: the walker's and the data path's per-level counters index
// the first kMemLevels; only instruction fetches are ever served by an L1I.
enum class MemLevel : u8 { L1D = 0, L2 = 1, LLC = 2, DRAM = 3, L1I = 4 };
constexpr unsigned kMemLevels = 4;
constexpr const char* kMemLevelNames[kMemLevels + 1] = {"l1d", "l2", "llc", "dram", "l1i"};

struct LineAccess : tlm::tlm_extension<LineAccess> {
  MemLevel served = MemLevel::DRAM;  // where the line was found
  bool row_hit = false;              // DRAM served it from an open row
  Cycles cycles = 0;                 // load-to-use latency, set by the level that served

  tlm::tlm_extension_base* clone() const override { return new LineAccess(*this); }
  void copy_from(const tlm::tlm_extension_base& other) override {
    *this = static_cast<const LineAccess&>(other);
  }
};

// A level that takes line accesses by a direct call. `whole_line`: a write of
// the whole line by the level above (a write-back), installed without a fetch.
class LineTarget {
 public:
  virtual Cycles line_access(u64 addr, bool write, bool whole_line, LineAccess& info) = 0;

 protected:
  ~LineTarget() = default;
};

struct LineTargetProbe : tlm::tlm_extension<LineTargetProbe> {
  LineTarget* target = nullptr;  // set by a level of model/cache that takes direct calls

  tlm::tlm_extension_base* clone() const override { return new LineTargetProbe(*this); }
  void copy_from(const tlm::tlm_extension_base& other) override {
    *this = static_cast<const LineTargetProbe&>(other);
  }
};

}  // namespace septsim::model
