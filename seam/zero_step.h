// Zero-step (single-step) attack mitigation of one TD vCPU (the module's tdh_vp_enter.c;
// intel/tdx-module td_exit_stepping.c): EPT violations on private GPAs that
// make no forward progress (the guest RIP is where the TD was entered) are
// counted; past STEPPING_EPF_THRESHOLD the faulting GPAs are logged, and
// TDH.VP.ENTER refuses to enter while a logged GPA would still fault.
#pragma once
#include <algorithm>
#include <vector>

#include "model/types.h"

namespace septsim::seam {

constexpr unsigned kSteppingEpfThreshold = 6;  // STEPPING_EPF_THRESHOLD
constexpr unsigned kEpfGpaListSize = 32;       // EPF_GPA_LIST_SIZE

struct ZeroStep {
  u64 guest_rip = 0;         // the vCPU's RIP as of its last TD exit
  u64 rip_on_entry = 0;      // RIP at the last TD entry
  unsigned epf_count = 0;    // POSSIBLY_EPF_STEPPING
  std::vector<Gpa> epf_gpas;  // LAST_EPF_GPA_LIST

  void on_entry() { rip_on_entry = guest_rip; }
  // A TD exit at `rip`: forward progress clears the tracking.
  void on_exit(u64 rip) {
    guest_rip = rip;
    if (rip != rip_on_entry) {
      epf_count = 0;
      epf_gpas.clear();
    }
  }
  // td_exit_epf_stepping_log: an EPT violation on private `gpa` at `rip`.
  void on_private_epf(Gpa gpa, u64 rip) {
    on_exit(rip);
    if (epf_count < kSteppingEpfThreshold) {
      ++epf_count;
      return;
    }
    if (epf_gpas.size() < kEpfGpaListSize && std::find(epf_gpas.begin(), epf_gpas.end(), gpa) == epf_gpas.end())
      epf_gpas.push_back(gpa);
  }
};

}  // namespace septsim::seam
