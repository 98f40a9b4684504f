// replay --timeline: Chrome trace-event JSON with a track per vCPU, one for
// the VMM / TDX module and one for phases; its events agree with the stats
// counters; the window and the cap bound it; no file when the replay fails.
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "../traces/cli_util.h"

using namespace septsim::test;
namespace fs = std::filesystem;

namespace {

struct Run {
  nlohmann::json timeline, counters;
  std::string text;
};

Run replay_with_timeline(const std::string& trace, const std::string& extra = "") {
  auto d = temp_dir();
  auto r = run_septsim("replay " + trace + " -q --stats " + (d / "s.json").string() + " --timeline " +
                       (d / "t.json").string() + " " + extra);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  Run out;
  out.text = slurp(d / "t.json");
  out.timeline = nlohmann::json::parse(out.text);
  out.counters = nlohmann::json::parse(slurp(d / "s.json"))["stats"]["total"]["counters"];
  return out;
}

std::map<int, std::string> thread_names(const nlohmann::json& t) {
  std::map<int, std::string> out;
  for (const auto& e : t["traceEvents"])
    if (e["ph"] == "M" && e["name"] == "thread_name") out[e["tid"].get<int>()] = e["args"]["name"];
  return out;
}

size_t count(const nlohmann::json& t, const std::string& ph, const std::string& name) {
  size_t n = 0;
  for (const auto& e : t["traceEvents"]) n += e["ph"] == ph && e["name"] == name;
  return n;
}

}  // namespace

TEST_CASE("the timeline has a track per vCPU, the VMM's and the phases', and one EPT violation per fault handled",
          "[timeline]") {
  auto run = replay_with_timeline(sample_vm0_trace());
  auto names = thread_names(run.timeline);
  CHECK(names[0] == "VMM / TDX module");
  CHECK(names[1] == "vCPU 0");
  CHECK(names[2] == "vCPU 1");
  CHECK(names[999999] == "phases");
  CHECK(count(run.timeline, "i", "EPT violation") == run.counters["kvm.pf_taken"].get<size_t>());
  CHECK(count(run.timeline, "i", "fast_page_fault") == run.counters["kvm.pf_fast"].get<size_t>());
  // Each EPT violation's handling is a slice of the cycles it took, from
  // where its instant is.
  CHECK(count(run.timeline, "X", "EPT violation handling") == count(run.timeline, "i", "EPT violation"));
  CHECK(count(run.timeline, "X", "memslot_add") == 2);
  // Remote TLB flushes with their IPIs, and every wait for mmu_lock.
  CHECK(count(run.timeline, "i", "remote TLB flush") == run.counters["kvm.remote_tlb_flush"].get<size_t>());
  size_t ipis = 0, waits = 0;
  for (const auto& e : run.timeline["traceEvents"]) {
    if (e["name"] == "remote TLB flush") ipis += e["args"]["ipis"].get<size_t>();
    if (e["name"] == "mmu_lock wait (read)" || e["name"] == "mmu_lock wait (write)") {
      ++waits;
      CHECK(e["args"]["cycles"].get<size_t>() > 0);
    }
  }
  CHECK(ipis == run.counters["kvm.remote_tlb_flush_ipis"].get<size_t>());
  // Each IPI is an exit of its target vCPU: a slice on that vCPU's track.
  CHECK(count(run.timeline, "X", "VM exit: TLB flush IPI") == ipis);
  CHECK(waits == run.counters["kvm.mmu_lock.contended"].get<size_t>());
  // The phases tile the run: warmup ends where measured starts.
  std::map<std::string, std::pair<double, double>> phases;
  for (const auto& e : run.timeline["traceEvents"]) {
    if (e["ph"] == "X" && e["tid"] == 999999)
      phases[e["name"]] = {e["ts"].get<double>(), e["ts"].get<double>() + e["dur"].get<double>()};
    if (e["ph"] == "X" && e["name"] == "EPT violation handling") {
      CHECK(e["dur"].get<double>() > 0);
      CHECK(e["args"]["cycles"].get<size_t>() > 0);
    }
    if (e["ph"] == "i" && e["name"] == "EPT violation") {
      CHECK(e["tid"].get<int>() >= 1);
      CHECK(e["tid"].get<int>() <= 2);
      CHECK(e["args"]["gpa"].get<std::string>().starts_with("0x"));
    }
  }
  REQUIRE(phases.count("warmup") == 1);
  REQUIRE(phases.count("measured") == 1);
  CHECK(phases["warmup"].first == 0);
  CHECK(phases["warmup"].second == Approx(phases["measured"].first));
  // Simulated time only: the same input gives the same bytes.
  CHECK(replay_with_timeline(sample_vm0_trace()).text == run.text);
}

TEST_CASE("a TD's timeline has every SEAMCALL and TDCALL with its leaf and status", "[timeline][tdx]") {
  auto d = temp_dir();
  auto td = (d / "td.jsonl").string();
  REQUIRE(run_septsim("gen td-boot -o " + td + " --count 2000").exit_code == 0);
  auto run = replay_with_timeline(td);
  size_t calls = 0;
  for (const auto& [k, v] : run.counters.items())
    if (k.starts_with("seam.calls.")) calls += v.get<size_t>();
  size_t seen = 0;
  for (const auto& e : run.timeline["traceEvents"]) {
    std::string name = e["name"];
    if (e["ph"] != "i" || !(name.starts_with("TDH.") || name.starts_with("TDG."))) continue;
    ++seen;
    CHECK(e["args"].contains("status"));
    if (name == "TDG.MEM.PAGE.ACCEPT") CHECK(e["tid"] == 1);  // the guest's call, on its vCPU
  }
  CHECK(seen == calls);
  CHECK(count(run.timeline, "i", "TDH.MNG.CREATE") == 1);
  CHECK(count(run.timeline, "i", "kick TD vCPUs") == run.counters["kvm.tdx.kicks"].get<size_t>());
  CHECK(count(run.timeline, "i", "TD exit") == run.counters["seam.td_exits"].get<size_t>());
  CHECK(run.counters["seam.td_exits"].get<size_t>() > 0);
  CHECK(count(run.timeline, "X", "td_finalize") == 1);
}

TEST_CASE("replay --timeline-from, --timeline-to and --timeline-max-events bound the timeline", "[timeline]") {
  auto run = replay_with_timeline(sample_vm0_trace(), "--timeline-from 1000000 --timeline-to 3000000 --timeline-max-events 50");
  size_t kept = 0;
  for (const auto& e : run.timeline["traceEvents"]) {
    if (e["ph"] == "M" || e["tid"] == 999999) continue;  // metadata and phases are always there
    ++kept;
    CHECK(e["ts"].get<double>() >= 1000.0);  // microseconds
    CHECK(e["ts"].get<double>() < 3000.0);
  }
  CHECK(kept == 50);
  CHECK(run.timeline["otherData"]["dropped_events"].get<size_t>() > 0);
}

TEST_CASE("a replay that fails leaves no timeline file", "[timeline][badinput]") {
  auto t = write_trace("{\"type\":\"vm_create\",\"vcpus\":1}\n{\"type\":\"teleport\"}\n");
  auto out = temp_dir() / "t.json";
  auto r = run_septsim("replay " + t + " --timeline " + out.string());
  CHECK(r.exit_code == 2);
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(out.string() + ".tmp"));
  auto w = run_septsim("replay " + sample_trace() + " --timeline-from 5");
  CHECK(w.exit_code == 2);
  CHECK(w.err.find("--timeline-from and --timeline-to need --timeline OUT.json") != std::string::npos);
}

TEST_CASE("with a normal VM and a TD, the timeline's vCPU tracks are VM 0's and the TD's SEAMCALLs the VMM's",
          "[timeline][vms]") {
  // The default trace: VM 0 is a normal VM (it never calls the TDX module),
  // VM 1 a TD. Every SEAMCALL and TDCALL is VM 1's, so none may land on a
  // vCPU track, which belong to VM 0.
  auto run = replay_with_timeline(sample_trace());
  auto names = thread_names(run.timeline);
  CHECK(names.size() == 1 + 2 + 1);  // the VMM, VM 0's two vCPUs, phases
  CHECK(names.count(3) == 0);
  size_t seam_on_vmm = 0;
  for (const auto& e : run.timeline["traceEvents"]) {
    if (e["ph"] != "i") continue;
    const std::string name = e["name"];
    if (!name.starts_with("TDH.") && !name.starts_with("TDG.")) continue;
    INFO(name);
    CHECK(e["tid"] == 0);
    seam_on_vmm += e["tid"] == 0;
  }
  CHECK(seam_on_vmm > 500);  // VM 1's AUGs alone are 520
  // VM 0's faults are all on its vCPU tracks: one per EPT violation it took.
  CHECK(count(run.timeline, "i", "EPT violation") ==
        run.counters["vcpu0.ept_violations"].get<size_t>() + run.counters["vcpu1.ept_violations"].get<size_t>());
}
