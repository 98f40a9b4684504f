#include "traces/derived.h"

#include <cmath>

#include "model/types.h"

namespace septsim::traces {

bool is_vcpu_key(std::string_view name, std::string_view suffix) {
  if (!name.starts_with("vcpu") || name.size() <= 4 + 1 + suffix.size() || !name.ends_with(suffix) ||
      name[name.size() - suffix.size() - 1] != '.')
    return false;
  size_t digits_end = name.size() - suffix.size() - 1;
  for (size_t i = 4; i < digits_end; ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  return digits_end > 4;
}

namespace {

u64 vcpu_sum(const nlohmann::json& counters, const std::string& suffix) {
  u64 sum = 0;
  for (const auto& [name, v] : counters.items())
    if (is_vcpu_key(name, suffix)) sum += v.get<u64>();
  return sum;
}

u64 vcpu_hist_sum(const nlohmann::json& hists, const std::string& suffix) {
  u64 sum = 0;
  for (const auto& [name, h] : hists.items())
    if (is_vcpu_key(name, suffix)) sum += h["sum"].get<u64>();
  return sum;
}

u64 get(const nlohmann::json& counters, const char* name) {
  auto it = counters.find(name);
  return it == counters.end() ? 0 : it->get<u64>();
}

nlohmann::json ratio(u64 num, u64 den, double scale = 1.0) {
  if (den == 0) return nullptr;
  return std::round(scale * double(num) / double(den) * 1e4) / 1e4;
}

constexpr const char* kSeamcallPrefix = "seam.calls.tdh_";
constexpr const char* kTdcallPrefix = "seam.calls.tdg_";

}  // namespace

const std::vector<DerivedMetric>& derived_metrics() {
  static const std::vector<DerivedMetric> k = {
      {"accesses", "accesses", "vcpuN.accesses_gpa + vcpuN.accesses_gva",
       "guest memory accesses replayed (a run of count N is N accesses)"},
      {"l1_dtlb_misses_per_1k_accesses", "per 1000 accesses", "1000 * vcpuN.dtlb.misses / accesses",
       "L1 DTLB misses (all page sizes; permission and clean-write misses included)"},
      {"stlb_misses_per_1k_accesses", "per 1000 accesses", "1000 * vcpuN.stlb.misses / accesses",
       "STLB misses, each of which starts a page walk"},
      {"walks_completed_per_1k_accesses.4k", "per 1000 accesses", "1000 * vcpuN.tlb.fills_4k / accesses",
       "walks that found a 4K page (the TLB misses of 4K pages, as perf's WALK_COMPLETED_4K)"},
      {"walks_completed_per_1k_accesses.2m", "per 1000 accesses", "1000 * vcpuN.tlb.fills_2m / accesses",
       "walks that found a 2M page"},
      {"walks_completed_per_1k_accesses.1g", "per 1000 accesses", "1000 * vcpuN.tlb.fills_1g / accesses",
       "walks that found a 1G page"},
      {"tlb_hit_rate", "fraction", "vcpuN.tlb_hits / accesses", "accesses translated by an L1 DTLB or STLB hit"},
      {"walk_cycle_share", "fraction", "sum of vcpuN.walk.cycles / vcpuN.cycles",
       "share of the vCPUs' cycles spent in page walks (paging-structure cache lookups and memory references)"},
      {"refs_per_walk.guest", "references per walk", "vcpuN.walk.refs.guest / vcpuN.walks",
       "guest paging-structure entries read per walk (0 for guest-physical traces)"},
      {"refs_per_walk.ept", "references per walk", "vcpuN.walk.refs.ept / vcpuN.walks",
       "EPT entries read per walk, nested (for each guest table) and final"},
      {"refs_per_walk.total", "references per walk", "(vcpuN.walk.refs.guest + vcpuN.walk.refs.ept) / vcpuN.walks",
       "memory references per walk in both dimensions (at most 24 for a 4-level 2D walk)"},
      {"cycles_per_access", "cycles per access", "vcpuN.cycles / accesses",
       "vCPU cycles per access: translation, the access itself, VM exits and their handling"},
      {"ept_violations_per_1k_accesses", "per 1000 accesses", "1000 * vcpuN.ept_violations / accesses",
       "VM exits for EPT violations"},
      {"vmexits_per_1k_accesses", "per 1000 accesses", "1000 * vcpuN.vmexits / accesses", "VM exits of any reason"},
      {"tdx.seamcalls", "calls", "sum of seam.calls.tdh_*", "SEAMCALLs made to the TDX module (all leaves)", true},
      {"tdx.seamcalls.<leaf>", "calls", "seam.calls.tdh_<leaf>", "SEAMCALLs of one leaf (only leaves called)", true},
      {"tdx.tdcalls", "calls", "sum of seam.calls.tdg_*", "TDCALLs made by the guest (TDG.MEM.PAGE.ACCEPT)", true},
      {"tdx.seam_cycles.<leaf>", "cycles", "seam.leaf_cycles.tdh_<leaf>",
       "cycles charged for the SEAMCALLs of one leaf (only leaves called)", true},
      {"tdx.td_exits", "exits", "seam.td_exits", "TD exits back to the VMM", true},
      {"tdx.seam_cycles", "cycles", "seam.cycles", "cycles charged for SEAMCALLs, TDCALLs and TD exits", true},
      {"tdx.seam_cycles_per_seamcall", "cycles per call", "seam.cycles / (tdx.seamcalls + tdx.tdcalls)",
       "average cost of a call into the TDX module (TD exits included in the numerator)", true},
      {"tdx.pamt_bytes", "bytes", "seam.pamt.bytes (at the phase end)",
       "PAMT memory: static arrays plus Dynamic PAMT page pairs", true},
      {"tdx.sept_pages", "pages", "seam.sept.pages (at the phase end)",
       "Secure-EPT pages of every TD, roots included", true},
      {"tdx.private_pages", "pages", "seam.td_pages_4k (at the phase end)",
       "4K-equivalent private pages owned by TDs (TDR.CHLDCNT summed)", true},
      {"tdx.pamt_pair_bytes", "bytes", "seam.pamt.pair_bytes (at the phase end)",
       "Dynamic PAMT_4K page pairs installed", true},
      {"tdx.splits", "ranges", "kvm.tdx.merge.split_ranges", "private 2M leaves split into 4K tables", true},
      {"tdx.merges", "ranges", "kvm.tdx.merge.promoted", "split private ranges merged back into a 2M leaf", true},
      {"tdx.busy_retries", "calls", "kvm.tdx.busy_retries", "SEAMCALLs retried after TDX_OPERAND_BUSY", true},
  };
  return k;
}

bool has_td(const nlohmann::json& total) {
  const auto& c = total["counters"];
  if (get(c, "seam.tds") > 0) return true;
  for (const auto& [name, v] : c.items())
    if ((name.starts_with(kSeamcallPrefix) || name.starts_with(kTdcallPrefix)) && v.get<u64>() > 0) return true;
  return false;
}

nlohmann::json derive(const nlohmann::json& phase, bool td) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  const nlohmann::json& c = phase.contains("counters") ? phase["counters"] : kEmpty;
  const nlohmann::json& h = phase.contains("histograms") ? phase["histograms"] : kEmpty;
  nlohmann::json d = nlohmann::json::object();
  u64 acc = vcpu_sum(c, "accesses_gpa") + vcpu_sum(c, "accesses_gva");
  u64 walks = vcpu_sum(c, "walks");
  u64 refs_g = vcpu_sum(c, "walk.refs.guest"), refs_e = vcpu_sum(c, "walk.refs.ept");
  u64 cycles = vcpu_sum(c, "cycles");
  d["accesses"] = acc;
  d["l1_dtlb_misses_per_1k_accesses"] = ratio(vcpu_sum(c, "dtlb.misses"), acc, 1000);
  d["stlb_misses_per_1k_accesses"] = ratio(vcpu_sum(c, "stlb.misses"), acc, 1000);
  d["walks_completed_per_1k_accesses.4k"] = ratio(vcpu_sum(c, "tlb.fills_4k"), acc, 1000);
  d["walks_completed_per_1k_accesses.2m"] = ratio(vcpu_sum(c, "tlb.fills_2m"), acc, 1000);
  d["walks_completed_per_1k_accesses.1g"] = ratio(vcpu_sum(c, "tlb.fills_1g"), acc, 1000);
  d["tlb_hit_rate"] = ratio(vcpu_sum(c, "tlb_hits"), acc);
  d["walk_cycle_share"] = ratio(vcpu_hist_sum(h, "walk.cycles"), cycles);
  d["refs_per_walk.guest"] = ratio(refs_g, walks);
  d["refs_per_walk.ept"] = ratio(refs_e, walks);
  d["refs_per_walk.total"] = ratio(refs_g + refs_e, walks);
  d["cycles_per_access"] = ratio(cycles, acc);
  d["ept_violations_per_1k_accesses"] = ratio(vcpu_sum(c, "ept_violations"), acc, 1000);
  d["vmexits_per_1k_accesses"] = ratio(vcpu_sum(c, "vmexits"), acc, 1000);
  if (!td) return d;
  u64 seamcalls = 0, tdcalls = 0;
  for (const auto& [name, v] : c.items()) {
    u64 n = v.get<u64>();
    if (name.starts_with(kSeamcallPrefix)) {
      seamcalls += n;
      if (n) {
        const std::string leaf = name.substr(std::string("seam.calls.").size());
        d["tdx.seamcalls." + leaf] = n;
        d["tdx.seam_cycles." + leaf] = get(c, ("seam.leaf_cycles." + leaf).c_str());
      }
    } else if (name.starts_with(kTdcallPrefix)) {
      tdcalls += n;
    }
  }
  d["tdx.seamcalls"] = seamcalls;
  d["tdx.tdcalls"] = tdcalls;
  d["tdx.td_exits"] = get(c, "seam.td_exits");
  d["tdx.seam_cycles"] = get(c, "seam.cycles");
  d["tdx.seam_cycles_per_seamcall"] = ratio(get(c, "seam.cycles"), seamcalls + tdcalls);
  d["tdx.sept_pages"] = get(c, "seam.sept.pages");
  d["tdx.private_pages"] = get(c, "seam.td_pages_4k");
  d["tdx.pamt_bytes"] = get(c, "seam.pamt.bytes");
  d["tdx.pamt_pair_bytes"] = get(c, "seam.pamt.pair_bytes");
  d["tdx.splits"] = get(c, "kvm.tdx.merge.split_ranges");
  d["tdx.merges"] = get(c, "kvm.tdx.merge.promoted");
  d["tdx.busy_retries"] = get(c, "kvm.tdx.busy_retries");
  return d;
}

nlohmann::json vm_phase(const nlohmann::json& phase, const std::string& prefix) {
  nlohmann::json out = {{"counters", nlohmann::json::object()}, {"histograms", nlohmann::json::object()}};
  for (const char* part : {"counters", "histograms"}) {
    if (!phase.contains(part)) continue;
    for (const auto& [name, v] : phase[part].items()) {
      if (name.starts_with(prefix))
        out[part][name.substr(prefix.size())] = v;
      else if (name.starts_with("seam."))
        out[part][name] = v;
    }
  }
  return out;
}

void add_derived(nlohmann::json& stats, const std::vector<ReplayVm>& vms) {
  bool td0 = vms.size() > 1 ? vms[0].tdx : has_td(stats["total"]);
  auto add = [&](nlohmann::json& ph) {
    ph["derived"] = derive(ph, td0);
    for (size_t i = 1; i < vms.size(); ++i) {
      std::string key = vms[i].prefix.substr(0, vms[i].prefix.size() - 1);
      ph["vm_derived"][key] = derive(vm_phase(ph, vms[i].prefix), vms[i].tdx);
    }
  };
  for (auto& ph : stats["phases"]) add(ph);
  add(stats["total"]);
}

}  // namespace septsim::traces
