// What one SEAMCALL or TDCALL saw and answered, for observers of the TDX
// module (the scenario-library coverage of tests/seam, tracing tools). The
// module reports every call once, after it has returned.
#pragma once
#include "seam/sept_entry.h"
#include "seam/tdx_status.h"

namespace septsim::seam {

struct SeamcallOutcome {
  u16 leaf = 0;         // leaf number (the TDCALL number space when `tdcall`)
  bool tdcall = false;  // a guest TDCALL rather than a host SEAMCALL
  int level = 0;        // TDX level of the GPA operand (or of the leaf found, MR.EXTEND)
  bool walked = false;  // the leaf walked the Secure-EPT (else it failed before the walk)
  bool reached = false;  // the walk reached the requested level; else it stopped above
  septe::SeptState state = septe::SeptState::FREE;  // the entry where the walk ended
  Status status = TDX_SUCCESS;                      // RAX
  unsigned initiator = 0;  // 0 the VMM, 1 + i TD vCPU i (SeamcallTxn::initiator)
  Cycles start = 0;        // simulated time the call began
  Cycles cycles = 0;       // what it was charged
};

class SeamcallObserver {
 public:
  virtual ~SeamcallObserver() = default;
  virtual void on_call(const SeamcallOutcome& o) = 0;
  // TD vCPU `vcpu` (its index in the TD) left the guest: a TD exit, whether
  // the VMM asked for it (a kick, an EPT violation) or a TDCALL ended in
  // one (an ACCEPT's EPT violation or interrupt).
  virtual void on_td_exit(u32 vcpu) { (void)vcpu; }
};

}  // namespace septsim::seam
