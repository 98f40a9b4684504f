// A SEAMCALL / TDCALL as a transaction: leaf + version in RAX and the
// register file in, status (RAX) and output registers back (the SEAMCALL ABI).
// Callers reach the TDX module only through SeamTransport, which returns the
// cycles the call took.
#pragma once
#include "model/types.h"
#include "seam/tdx_status.h"

namespace septsim::seam {

struct SeamcallRegs {
  u64 rax = 0, rcx = 0, rdx = 0, r8 = 0, r9 = 0, r10 = 0, r11 = 0, r12 = 0, r13 = 0;
};

struct SeamcallTxn {
  SeamcallRegs in;
  SeamcallRegs out;       // out.rax is the status
  unsigned initiator = 0;  // logical processor (host) or vCPU (guest) making the call
  Cycles start = 0;        // simulated start time, for lock windows
  bool tdcall = false;     // a guest TDCALL from the TD vCPU `tdvpr`
  bool host_interrupt = false;  // a host interrupt is pending during the call (is_interrupt_pending_host_side)
  Hpa tdvpr = 0;
  // The logical processor the SEAMCALL runs on (lp_info.lp_id): the vCPU
  // association of VP.INIT/ENTER/FLUSH and, through host.lps_per_package,
  // the package of KEY.CONFIG and CACHE.WB. kUnnamedLp: the caller does not
  // say; association is then not checked by LP and the package is 0.
  static constexpr u32 kUnnamedLp = ~u32{0};
  u32 lp = kUnnamedLp;
  Status status() const { return out.rax; }
};

class SeamTransport {
 public:
  virtual ~SeamTransport() = default;
  // Executes the call and returns its latency in cycles.
  virtual Cycles transport(SeamcallTxn& txn) = 0;
};

// RCX page_info (1.2): GPA | TDX level.
constexpr u64 page_info(Gpa gpa, int tdx_level) { return gpa | u64(tdx_level); }
// HKID bits of a keyed HPA (TDH.PHYMEM.PAGE.WBINVD): the model puts the KeyID
// at bit 40 and up (the real position depends on MAX_PA and the KeyID split).
constexpr unsigned kHkidShift = 40;
constexpr u64 keyed_hpa(Hpa hpa, u16 hkid) { return hpa | (u64(hkid) << kHkidShift); }

}  // namespace septsim::seam
