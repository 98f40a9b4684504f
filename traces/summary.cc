// The human summary printed after a replay.
#include <cstdio>
#include <sstream>

#include "traces/replayer.h"

namespace septsim::traces {

namespace {

// Sum of every "vcpuN.<suffix>" counter.
u64 per_vcpu(const std::map<std::string, u64>& t, const std::string& suffix) {
  u64 sum = 0;
  for (const auto& [name, v] : t) {
    if (!name.starts_with("vcpu") || !name.ends_with("." + suffix)) continue;
    size_t digits = name.size() - suffix.size() - 1 - 4;
    if (digits > 0 && name.find_first_not_of("0123456789", 4) == 4 + digits) sum += v;
  }
  return sum;
}

u64 get(const std::map<std::string, u64>& t, const std::string& name) {
  auto it = t.find(name);
  return it == t.end() ? 0 : it->second;
}

std::string pct(u64 part, u64 whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %%", whole ? 100.0 * double(part) / double(whole) : 0.0);
  return buf;
}

std::string ratio(u64 a, u64 b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", b ? double(a) / double(b) : 0.0);
  return buf;
}

}  // namespace

std::string summary_table(const ReplayReport& r, const model::Config& cfg) {
  const auto& t = r.totals;
  std::ostringstream out;
  auto row = [&](const std::string& k, const std::string& v) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "  %-34s %s\n", k.c_str(), v.c_str());
    out << buf;
  };
  u64 acc = per_vcpu(t, "accesses_gpa") + per_vcpu(t, "accesses_gva");
  u64 walks = per_vcpu(t, "walks");
  u64 refs = per_vcpu(t, "walk.refs.guest") + per_vcpu(t, "walk.refs.ept");
  out << "septsim replay summary\n";
  row("events", std::to_string(r.events));
  row("simulated time (ns)", std::to_string(r.sim_time_ps / 1000));
  row("quantum (ns)", std::to_string(cfg.u("sim.quantum_ns")));
  out << " translation\n";
  row("accesses (GPA / GVA)", std::to_string(per_vcpu(t, "accesses_gpa")) + " / " +
                                  std::to_string(per_vcpu(t, "accesses_gva")));
  row("TLB hit rate (L1 + STLB)", pct(per_vcpu(t, "tlb_hits"), acc));
  row("L1 DTLB hits / misses", std::to_string(per_vcpu(t, "dtlb.hits")) + " / " +
                                   std::to_string(per_vcpu(t, "dtlb.misses")));
  row("STLB hits / misses", std::to_string(per_vcpu(t, "stlb.hits")) + " / " +
                                std::to_string(per_vcpu(t, "stlb.misses")));
  row("page walks (1D / 2D)", std::to_string(per_vcpu(t, "walk.walks_1d")) + " / " +
                                  std::to_string(per_vcpu(t, "walk.walks_2d")));
  row("references per walk", ratio(refs, walks));
  row("EPT violations / misconfigs", std::to_string(per_vcpu(t, "ept_violations")) + " / " +
                                         std::to_string(per_vcpu(t, "ept_misconfigs")));
  row("guest page faults", std::to_string(per_vcpu(t, "guest_page_faults")));
  out << " KVM MMU\n";
  row("pf_taken / pf_fixed", std::to_string(get(t, "kvm.pf_taken")) + " / " + std::to_string(get(t, "kvm.pf_fixed")));
  row("pf_spurious / pf_fast / pf_emulate", std::to_string(get(t, "kvm.pf_spurious")) + " / " +
                                                std::to_string(get(t, "kvm.pf_fast")) + " / " +
                                                std::to_string(get(t, "kvm.pf_emulate")));
  row("pages_4k / pages_2m / pages_1g", std::to_string(get(t, "kvm.pages_4k")) + " / " +
                                            std::to_string(get(t, "kvm.pages_2m")) + " / " +
                                            std::to_string(get(t, "kvm.pages_1g")));
  row("huge pages split / recovered", std::to_string(get(t, "kvm.split_huge_page")) + " / " +
                                          std::to_string(get(t, "kvm.recover_huge_page")));
  row("remote TLB flushes", std::to_string(get(t, "kvm.remote_tlb_flush")));
  row("fast zaps (mmu_valid_gen)", std::to_string(get(t, "kvm.mmu_zap_all_fast")));
  if (!r.violations.empty()) row("INVARIANT VIOLATIONS", std::to_string(r.violations.size()));
  return out.str();
}

}  // namespace septsim::traces
