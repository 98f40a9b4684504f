// The --check mode: runs the MMU's invariant checks (docs/invariants.md) and
// checks every vCPU's TLBs against the current tables (a TLB entry that
// translates differently from the EPT, or grants a right the EPT no longer
// grants, is stale: a missing flush).
//
// Between full sweeps a check is incremental: the MMU notes what changes
// (mmu/check_log.h: the gfn ranges of SPTE changes and Secure-EPT SEAMCALLs,
// whether a change took rights away) and only that is checked, plus the
// rules that cost O(roots + vCPUs). A full sweep runs when the caller asks
// (the end of the trace, an event the log cannot describe) and every
// `full_sweep_interval`-th check (0: never on its own).
#pragma once
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "mmu/check_log.h"
#include "mmu/kvm.h"
#include "mmu/nested_mmu.h"
#include "model/vcpu.h"
#include "traces/violation.h"

namespace septsim::traces {

class InvariantReport {
 public:
  InvariantReport(const mmu::Kvm& kvm, const model::PhysMem& mem) : kvm_(kvm), mem_(mem) {}
  ~InvariantReport();
  InvariantReport(const InvariantReport&) = delete;
  InvariantReport& operator=(const InvariantReport&) = delete;

  // Attaches the change log to `kvm` (the one given to the constructor):
  // from now on checks between full sweeps are incremental. Without it
  // every check is a full sweep.
  void attach(mmu::Kvm& kvm);
  void set_full_sweep_interval(u64 n) { full_sweep_interval_ = n; }
  // What changed outside the MMU's own writes: guest memory attributes or
  // host mappings over [gpa, gpa + size), guest page tables (TLB entries).
  void touch_gpa_range(Gpa gpa, u64 size);
  void guest_tables_changed() { log_.tlb_may_be_stale = true; }

  // Checks the state after event `event_index` (trace line `line`); `full`
  // sweeps every rule over the whole state. Records each violation once.
  void check(const std::vector<std::unique_ptr<model::Vcpu>>& vcpus, u64 event_index, u64 line, bool full);
  // check() now with a full sweep, mid-event; true when any violation was
  // ever reported (a refused guest ACCEPT is then the bug's symptom).
  bool check_now(const std::vector<std::unique_ptr<model::Vcpu>>& vcpus, u64 event_index, u64 line) {
    check(vcpus, event_index, line, true);
    return !records_.empty();
  }
  // Reports `what` ("NAME: details") at this event (once), as check() reports a rule.
  void add(u64 event_index, u64 line, const std::string& what);
  const std::vector<Violation>& records() const { return records_; }
  // The records as text(), in order.
  std::vector<std::string> violations() const;
  // How many times check() ran, and how many of those were full sweeps.
  u64 checks() const { return checks_; }
  u64 full_sweeps() const { return full_sweeps_; }
  // How many rules of docs/invariants.md the checks applied (a TD adds its own).
  u64 rules() const;
  // Also checks the nested-EPT root references (rule 5 for guest_mmu).
  void set_nested(const mmu::NestedMmu* nested) { nested_ = nested; }

  // The stale-TLB rule alone, for tests. `shared_bit`: a TD's shared GPA bit
  // (0 for a normal VM); a TD vCPU's private GPAs translate through its Secure EPT.
  static std::vector<std::string> stale_tlb_entries(const model::Vcpu& vcpu, const model::PhysMem& mem,
                                                    unsigned shared_bit = 0);
  // The dirty-log rule with PML: a TLB entry that lets the vCPU write
  // without a walk (dirty) must translate a GPA of a PML-logged slot whose
  // EPT leaf has D set; otherwise its writes set no D bit and are never
  // logged (the CPU logs a GPA when it sets D: SDM "Page-Modification Logging").
  static std::vector<std::string> unlogged_dirty_tlb_entries(const model::Vcpu& vcpu, const model::PhysMem& mem,
                                                             const mmu::Kvm& kvm, unsigned shared_bit = 0);

 private:
  void record(const std::string& found, u64 event_index, u64 line);

  const mmu::Kvm& kvm_;
  const model::PhysMem& mem_;
  const mmu::NestedMmu* nested_ = nullptr;
  mmu::Kvm* attached_ = nullptr;
  mmu::CheckLog log_;
  std::vector<bool> tlb_due_;  // per vCPU: a change since its TLB was last compared
  struct TlbSeen {
    model::TlbContext ctx;
    u64 eptp = 0, cr3 = 0;
    bool operator==(const TlbSeen&) const = default;
  };
  std::vector<TlbSeen> tlb_seen_;  // per vCPU: what its TLB was tagged with at the last check
  u64 full_sweep_interval_ = 0;
  bool saw_td_ = false;
  std::vector<Violation> records_;
  u64 checks_ = 0, full_sweeps_ = 0;
  size_t bad_frees_seen_ = 0;
  std::set<std::string> seen_;  // a broken state is reported once, at the first event that shows it
  static constexpr size_t kMaxReported = 1000;
};

}  // namespace septsim::traces
