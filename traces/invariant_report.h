// The --check mode: after VM-wide events and at the end of a replay, runs the
// MMU's invariant checks and checks every vCPU's TLBs against the current
// tables (a TLB entry that translates differently from the EPT, or grants a
// right the EPT no longer grants, is stale: a missing flush).
#pragma once
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "mmu/kvm.h"
#include "mmu/nested_mmu.h"
#include "model/vcpu.h"

namespace septsim::traces {

class InvariantReport {
 public:
  InvariantReport(const mmu::Kvm& kvm, const model::PhysMem& mem) : kvm_(kvm), mem_(mem) {}

  // Appends "event N (line L): RULE: state" lines for each violation found.
  void check(const std::vector<std::unique_ptr<model::Vcpu>>& vcpus, u64 event_index, u64 line);
  // check() now, mid-event; true when any violation was ever reported.
  bool check_now(const std::vector<std::unique_ptr<model::Vcpu>>& vcpus, u64 event_index, u64 line) {
    check(vcpus, event_index, line);
    return !violations_.empty();
  }
  // Reports `what` at this event (once), as check() reports a rule.
  void add(u64 event_index, u64 line, const std::string& what);
  std::vector<std::string>& violations() { return violations_; }
  // How many times check() ran (each runs every rule on the whole state).
  u64 checks() const { return checks_; }
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
  const mmu::Kvm& kvm_;
  const model::PhysMem& mem_;
  const mmu::NestedMmu* nested_ = nullptr;
  std::vector<std::string> violations_;
  u64 checks_ = 0;
  std::set<std::string> seen_;  // a broken state is reported once, at the first event that shows it
  static constexpr size_t kMaxReported = 1000;
};

}  // namespace septsim::traces
