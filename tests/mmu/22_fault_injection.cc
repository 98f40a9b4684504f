// Fault injection (debug.inject, mmu/fault_inject.h): the MMU commits one
// class of KVM/TDX bug and `septsim replay --check` must report it with the
// rule that covers it, on a trace of the test corpus (tests/mmu/traces,
// traces/samples). Each case also replays the same trace and config without
// the bug and expects a clean run, so the report comes from the bug.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "mmu/fault_inject.h"

namespace {

struct Run {
  int exit = -1;
  nlohmann::json stats;  // the --stats file: totals, invariant_violations, vm_dead
  std::string all_reports() const {
    std::string s = stats.value("vm_dead", std::string());
    if (!s.empty()) s = "vm-dead: " + s + "\n";
    for (const auto& v : stats.value("invariant_violations", nlohmann::json::array())) s += v.get<std::string>() + "\n";
    return s;
  }
  long long total(const std::string& key) const {
    const auto& c = stats["stats"]["total"]["counters"];
    return c.contains(key) ? c[key].get<long long>() : -1;
  }
};

std::string trace_path(const std::string& name) {
  if (name == "default.jsonl") return SEPTSIM_SOURCE_DIR "/traces/samples/default.jsonl";
  return SEPTSIM_SOURCE_DIR "/tests/mmu/traces/" + name;
}

Run replay(const std::string& trace, const std::string& extra) {
  static int n = 0;
  // ctest runs test cases as separate processes, in parallel: one file each.
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/fault_injection_" + std::to_string(getpid()) + "_" +
                          std::to_string(++n) + ".json";
  std::remove(out.c_str());
  const std::string cmd = std::string(SEPTSIM_BINARY_DIR "/septsim replay ") + trace_path(trace) +
                          " --check --quiet --stats " + out + " " + extra + " >/dev/null 2>&1";
  const int rc = std::system(cmd.c_str());
  Run r;
  r.exit = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::ifstream f(out);
  if (f) r.stats = nlohmann::json::parse(f, nullptr, false);
  f.close();
  std::remove(out.c_str());
  return r;
}

const std::string kRfc = "--set mmu.tdx_huge_pages=rfc-v1 --set mmu.tdx_private_dirty_log=allow";

struct Case {
  const char* inject;  // debug.inject
  const char* trace;
  std::string config;  // extra --set options
  const char* report;  // what the report must contain: the rule (and for vm-dead, the refused leaf)
};

// Every bug class on the trace that reaches its injection point. Expected
// reports: the rule of docs/invariants.md that states what the bug breaks.
const Case kCases[] = {
    // tdx.c:tdx_track must TRACK before the kick; REMOVE then finds the
    // epoch not tracked and the module refuses it: tdx_sept_remove_leaf_spte's TDX_BUG_ON.
    {"skip-track", "03_convert_4k.jsonl", "", "TDH.MEM.PAGE.REMOVE at 0x300000 returned TDX_TLB_TRACKING_NOT_DONE"},
    // vCPU 1 stays in the guest in the old epoch (seam/tlb_tracking.h: is_tlb_tracked).
    {"skip-kick", "03_convert_4k.jsonl", "", "TDH.MEM.PAGE.REMOVE at 0x300000 returned TDX_TLB_TRACKING_NOT_DONE"},
    {"skip-kick", "03_convert_4k.jsonl", "", "stale-tlb: vcpu1 caches gpa 0x300000"},
    {"remove-without-block", "03_convert_4k.jsonl", "", "TDH.MEM.PAGE.REMOVE at 0x300000 returned TDX_GPA_RANGE_NOT_BLOCKED"},
    // The freed page is reused: the guest's ACCEPT then fails, and teardown
    // finds the mirror table's frame gone (reported, not a crash).
    {"free-linked-sept", "10_merge_refused_pending.jsonl", kRfc + " --set mmu.tdx_merge_policy=B", "rule 18:"},
    {"free-linked-sept", "10_merge_refused_pending.jsonl", kRfc + " --set mmu.tdx_merge_policy=B", "rule internal: a zapped"},
    {"pamt-put-forgotten", "05_dpamt_grow_shrink.jsonl", "--set mmu.tdx_pamt_cache=vcpu", "pamt-zero:"},
    {"pamt-put-forgotten", "05_dpamt_grow_shrink.jsonl", "--set mmu.tdx_pamt_cache=vm", "pamt-zero:"},
    {"no-remote-flush", "21_host_unmap_dirty_log.jsonl", "", "stale-tlb:"},
    {"huge-over-mixed", "03_convert_4k.jsonl", "", "rule 13:"},
    {"huge-over-mixed", "03_convert_4k.jsonl", "", "rule 22:"},
    // The stale 2M leaf is zapped by the trace's host_unmap before the next
    // full check: only the install-time rule sees it.
    {"stale-snapshot", "21_host_unmap_dirty_log.jsonl", "", "rule mmu-notifier: a fault installed gfn 0x200 level 2"},
    {"promote-without-track", "09_merge_after_dirty_log.jsonl", kRfc + " --set mmu.tdx_merge_policy=A",
     "TDH.MEM.PAGE.PROMOTE"},
    {"promote-without-track", "10_merge_refused_pending.jsonl", kRfc + " --set mmu.tdx_merge_policy=B",
     "TDH.MEM.PAGE.PROMOTE"},
    {"promote-without-track", "09_merge_after_dirty_log.jsonl", kRfc + " --set mmu.tdx_merge_policy=C",
     "TDH.MEM.PAGE.PROMOTE"},
    // The second vCPU's fault finds the first one's leaf (RET_PF_SPURIOUS) and maps it again.
    {"double-map", "07_race_2m.jsonl", "--set mmu.tdx_pending_access=count", "rule 17:"},
    {"dirty-log-no-wrprot", "21_host_unmap_dirty_log.jsonl", "", "rule dirty-log:"},
    {"dirty-log-no-wrprot", "default.jsonl", "", "rule dirty-log:"},
    // PML (mmu.pml): GET clears D bits; without the flush a vCPU's TLB still
    // holds dirty translations, whose writes the CPU never logs again.
    {"pml-no-flush", "21_host_unmap_dirty_log.jsonl", "--set mmu.pml=true", "rule dirty-log: vcpu"},
    {"slot-delete-no-zap", "default.jsonl", "", "rule 8:"},
    {"slot-delete-no-zap", "17_memslot_delete_td.jsonl", "", "rule 8:"},
    {"convert-no-removal", "03_convert_4k.jsonl", "", "rule 22:"},
    {"teardown-leak", "02_td_teardown.jsonl", "", "rule 16:"},
    {"teardown-leak", "02_td_teardown.jsonl", "", "pamt-zero:"},
};

}  // namespace

TEST_CASE("replay --check reports every injected KVM/TDX bug class with the rule it breaks", "[inject]") {
  for (const Case& c : kCases) {
    INFO(c.inject << " on " << c.trace << " " << c.config);
    const Run clean = replay(c.trace, c.config);
    CHECK(clean.exit == 0);
    CHECK(clean.all_reports().empty());
    CHECK(clean.total("debug.inject_fired") == -1);  // not armed: the statistic does not exist
    const Run bugged = replay(c.trace, c.config + " --set debug.inject=" + c.inject);
    CHECK(bugged.total("debug.inject_fired") == 1);
    CHECK(bugged.exit == 1);
    CHECK_THAT(bugged.all_reports(), Catch::Contains(c.report));
  }
}

TEST_CASE("every bug class debug.inject knows has a case the checker must catch", "[inject]") {
  std::set<std::string> covered;
  for (const Case& c : kCases) covered.insert(c.inject);
  for (const std::string& name : septsim::mmu::inject_class_names()) {
    if (name == "none" || name == "migrate-race") continue;  // no bug
    INFO(name);
    CHECK(covered.count(name) == 1);
  }
  CHECK(covered.size() == 15);  // the 14 of issue 16 and pml-no-flush
}

// The corpus reaches every zap path the classes above live on: a host_unmap
// (kvm_zap_gfn_range) with something to flush, each merge policy's PROMOTE
// (mmu.tdx_huge_pages=rfc-v1), Dynamic PAMT's removal with either cache.
// That each injection fired once (the case table) shows its point was
// reached; here the clean runs show the paths do their work.
TEST_CASE("the fault-injection corpus reaches every zap path: host_unmap, each merge policy, both PAMT caches",
          "[inject]") {
  const Run unmap = replay("21_host_unmap_dirty_log.jsonl", "");
  CHECK(unmap.total("kvm.remote_tlb_flush") > 0);
  CHECK(unmap.total("kvm.dirty_pages_reported") > 0);
  for (const char* policy : {"A", "C"}) {
    INFO(policy);
    CHECK(replay("09_merge_after_dirty_log.jsonl", kRfc + " --set mmu.tdx_merge_policy=" + policy)
              .total("kvm.tdx.merge.promoted") > 0);
  }
  const Run b = replay("10_merge_refused_pending.jsonl", kRfc + " --set mmu.tdx_merge_policy=B");
  CHECK(b.total("kvm.tdx.merge.promoted") == 1);
  CHECK(b.total("kvm.tdx.merge.refused") == 1);  // the refused PROMOTE free-linked-sept hooks
  for (const char* cache : {"vcpu", "vm"}) {
    INFO(cache);
    const Run r = replay("05_dpamt_grow_shrink.jsonl", std::string("--set mmu.tdx_pamt_cache=") + cache);
    CHECK(r.total("kvm.tdx.pamt_remove") > 0);
    CHECK(r.total("kvm.tdx.pamt_remove") == r.total("kvm.tdx.pamt_add"));
  }
}

TEST_CASE("a host page migration between a fault's fault-in and its map makes the fault retry, and no rule breaks",
          "[inject][mmu-notifier]") {
  const Run clean = replay("21_host_unmap_dirty_log.jsonl", "");
  const Run raced = replay("21_host_unmap_dirty_log.jsonl", "--set debug.inject=migrate-race");
  CHECK(raced.total("debug.inject_fired") == 1);
  CHECK(raced.exit == 0);
  CHECK(raced.all_reports().empty());
  // is_page_fault_stale: the raced fault returns RET_PF_RETRY once.
  CHECK(raced.total("kvm.pf_retry") == clean.total("kvm.pf_retry") + 1);
}

TEST_CASE("debug.inject at the Nth opportunity fires there and is caught", "[inject]") {
  // The dirty-logged slot is enabled once in the trace: a second opportunity never comes.
  const Run second = replay("21_host_unmap_dirty_log.jsonl", "--set debug.inject=dirty-log-no-wrprot@2");
  CHECK(second.total("debug.inject_fired") == 0);
  CHECK(second.exit == 0);
  // host_unmap zaps once: the first opportunity.
  const Run first = replay("21_host_unmap_dirty_log.jsonl", "--set debug.inject=no-remote-flush@1");
  CHECK(first.total("debug.inject_fired") == 1);
  CHECK(first.exit == 1);
}

TEST_CASE("debug.inject at random fires at some opportunities, the same ones for the same seed", "[inject]") {
  // Teardown removes 525 private pages (tests/mmu/12_tdx_traces.cc), each
  // with a tdx_track: 525 opportunities to skip the kick. The vCPUs are
  // already stopped then, so skipping it is harmless and the run stays clean.
  const std::string opts = "--set debug.inject=skip-kick@random --set debug.inject_seed=";
  const Run a = replay("02_td_teardown.jsonl", opts + "7"), b = replay("02_td_teardown.jsonl", opts + "7"),
            c = replay("02_td_teardown.jsonl", opts + "8");
  CHECK(a.exit == 0);
  CHECK(a.total("debug.inject_fired") > 0);
  CHECK(a.total("debug.inject_fired") < 525);
  CHECK(a.stats["stats"]["total"] == b.stats["stats"]["total"]);
  CHECK(a.total("debug.inject_fired") != c.total("debug.inject_fired"));
}

TEST_CASE("an unknown debug.inject class is refused naming the key", "[inject]") {
  const std::string cmd = std::string(SEPTSIM_BINARY_DIR "/septsim replay ") + trace_path("default.jsonl") +
                          " --set debug.inject=skip-everything 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  const int rc = pclose(p);
  CHECK(WEXITSTATUS(rc) == 2);
  CHECK_THAT(out, Catch::Contains("debug.inject") && Catch::Contains("skip-everything"));
}
