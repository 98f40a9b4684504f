// `septsim replay --emit-kvmmmu`: the model's MMU decisions as kvm/kvmmmu
// tracepoint text (arch/x86/kvm/mmu/mmutrace.h), read back by the ftrace importer.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "cli_util.h"
#include "collect_sink.h"
#include "traces/ftrace_import.h"
#include "traces/kvmmmu_writer.h"
#include "traces/reader.h"

using namespace septsim;
using namespace septsim::traces;
using namespace septsim::test;

namespace {

// Two vCPUs: vCPU 0 writes a THP slot (2M leaves) and fetches from it, vCPU 1
// reads a 4K slot; dirty logging then splits the three 2M leaves (eager
// split) and write-protects them, so one write each is a fast_page_fault fix.
const char* kTrace =
    "{\"type\":\"vm_create\",\"vcpus\":2}\n"
    "{\"type\":\"memslot_add\",\"slot\":0,\"gpa\":\"0x0\",\"size\":\"64M\",\"backing\":\"thp\"}\n"
    "{\"type\":\"memslot_add\",\"slot\":1,\"gpa\":\"0x40000000\",\"size\":\"16M\",\"backing\":\"4k\"}\n"
    "{\"type\":\"phase\",\"name\":\"measured\"}\n"
    "{\"type\":\"access\",\"vcpu\":0,\"gpa\":\"0x0\",\"op\":\"w\",\"count\":4,\"stride\":\"1M\"}\n"
    "{\"type\":\"access\",\"vcpu\":1,\"gpa\":\"0x40000000\",\"op\":\"r\",\"count\":3,\"stride\":\"4K\"}\n"
    "{\"type\":\"access\",\"vcpu\":0,\"gpa\":\"0x1000000\",\"op\":\"x\"}\n"
    "{\"type\":\"dirty_log\",\"slot\":0,\"op\":\"enable\"}\n"
    "{\"type\":\"access\",\"vcpu\":0,\"gpa\":\"0x1000\",\"op\":\"w\"}\n"
    "{\"type\":\"access\",\"vcpu\":1,\"gpa\":\"0x1000008\",\"op\":\"w\"}\n";

struct Emitted {
  std::string text;       // the tracepoint file
  nlohmann::json counters;  // the replay's total counters
};

Emitted replay_with_tracepoints(const std::string& trace) {
  auto dir = temp_dir();
  std::string out = (dir / "model.trace").string(), stats = (dir / "s.json").string();
  auto r = run_septsim("replay " + trace + " -q --check --emit-kvmmmu " + out + " --stats " + stats);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_FALSE(std::filesystem::exists(out + ".part"));
  return {slurp(out), nlohmann::json::parse(slurp(stats))["stats"]["total"]["counters"]};
}

std::string write_text(const std::string& text) {
  auto p = temp_dir() / "model.trace";
  std::ofstream(p) << text;
  return p.string();
}

// A vCPU's faults as "op gpa" and what the model decided for each: "map L" or "fast".
std::vector<std::string> fault_stream(const Collect& c, int vcpu) {
  std::vector<std::string> out;
  for (const auto& e : c.events) {
    char buf[64];
    if (e.type == EventType::Access && e.vcpu == vcpu)
      std::snprintf(buf, sizeof buf, "%c %llx", "rwx"[int(e.access)], (unsigned long long)e.addr);
    else if (e.type == EventType::KvmDecision && e.vcpu == vcpu && e.decision == DecisionKind::Map)
      std::snprintf(buf, sizeof buf, "map %d", e.page_level);
    else if (e.type == EventType::KvmDecision && e.vcpu == vcpu && e.decision == DecisionKind::Fast)
      std::snprintf(buf, sizeof buf, "fast");
    else
      continue;
    out.push_back(buf);
  }
  return out;
}

}  // namespace

TEST_CASE("emitted tracepoints import back as the replay's fault stream and mapping levels", "[kvmmmu]") {
  Emitted m = replay_with_tracepoints(write_trace(kTrace));
  Collect c;
  FtraceImportReport r = import_ftrace(write_text(m.text), c);
  CHECK(r.host_mmu == "tdp");
  CHECK(r.vcpus == 2);
  CHECK(r.malformed_lines == 0);
  CHECK(r.unknown_events.empty());
  CHECK(fault_stream(c, 0) == std::vector<std::string>{"w 0", "map 2", "w 200000", "map 2", "x 1000000", "map 2", "w 1000", "fast"});
  CHECK(fault_stream(c, 1) ==
        std::vector<std::string>{"r 40000000", "map 1", "r 40001000", "map 1", "r 40002000", "map 1", "w 1000008", "fast"});
  // The same counts as the replay's own statistics.
  CHECK(r.faults == m.counters["kvm.pf_taken"].get<u64>());
  CHECK(c.decisions(DecisionKind::Fast) == m.counters["kvm.pf_fast"].get<u64>());
  CHECK(c.decisions(DecisionKind::Split) == m.counters["kvm.split_huge_page"].get<u64>());
  CHECK(c.decisions(DecisionKind::Split) == 3);
  for (const auto& e : c.of(EventType::KvmDecision))
    if (e.decision == DecisionKind::Split) CHECK(e.page_level == 2);
  // The phase comes back through its kvmrec marker.
  auto phases = c.of(EventType::Phase);
  REQUIRE(phases.size() == 1);
  CHECK(phases[0].name == "measured");
}

TEST_CASE("the emitted file has the tracefs trace header and its line shape", "[kvmmmu]") {
  Emitted m = replay_with_tracepoints(write_trace(kTrace));
  std::istringstream in(m.text);
  std::string line;
  std::vector<std::string> header, events;
  while (std::getline(in, line)) (line.rfind("#", 0) == 0 ? header : events).push_back(line);
  REQUIRE(header.size() == 12);
  CHECK(header[0] == "# tracer: nop");
  CHECK(header[2] == "# entries-in-buffer/entries-written: " + std::to_string(events.size()) + "/" +
                         std::to_string(events.size()) + "   #P:3");
  CHECK(header[10] == "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION");
  std::regex shape(R"( *(CPU [01]/KVM|septsim)-\d+ +\[\d{3}\] \.{5} +\d+\.\d{6}: [a-z_]+: .*)");
  for (const auto& e : events) CHECK(std::regex_match(e, shape));
  // mmutrace.h's formats, field by field.
  auto has = [&](const std::string& want) {
    return std::any_of(events.begin(), events.end(), [&](const std::string& e) { return e.find(want) != std::string::npos; });
  };
  CHECK(has("CPU 0/KVM-4001    [000] ..... "));
  CHECK(has(": kvm_page_fault: vcpu 1 rip 0x0 address 0x0000000040000000 error_code 0x1"));
  CHECK(has(": kvm_mmu_spte_requested: gfn 200 pfn "));
  CHECK(has(": kvm_mmu_split_huge_page: gfn 1000 spte "));
  CHECK(has(" level 2 errno 0"));
  CHECK(has(": kvm_tdp_mmu_spte_changed: as id 0 gfn 40002 level 1 old_spte 8000000000000000 new_spte "));
  CHECK(has(": fast_page_fault: vcpu 0 gva 1000 error_code P|W sptep 0000000000000000 old 0x"));
  CHECK(has(" spurious 0 fixed 1"));
  CHECK(has("septsim-4000    [002] ..... "));
}

TEST_CASE("a replay that fails leaves no tracepoint file", "[kvmmmu]") {
  auto dir = temp_dir();
  std::string out = (dir / "model.trace").string();
  // vCPU 0 touches a page, then deleting an unknown slot is a replay error.
  auto r = run_septsim("replay " +
                       write_trace("{\"type\":\"vm_create\",\"vcpus\":1}\n"
                                   "{\"type\":\"memslot_add\",\"slot\":0,\"gpa\":\"0x0\",\"size\":\"2M\",\"backing\":\"4k\"}\n"
                                   "{\"type\":\"access\",\"vcpu\":0,\"gpa\":\"0x0\",\"op\":\"r\"}\n"
                                   "{\"type\":\"memslot_delete\",\"slot\":7}\n") +
                       " -q --emit-kvmmmu " + out);
  CHECK(r.exit_code == 2);
  CHECK_FALSE(std::filesystem::exists(out));
  CHECK_FALSE(std::filesystem::exists(out + ".part"));
}

TEST_CASE("fast_page_fault prints its error code as __print_flags does", "[kvmmmu]") {
  CHECK(pferr_flags(0) == "");
  CHECK(pferr_flags(0x3) == "P|W");
  CHECK(pferr_flags(0x1f) == "P|W|U|RSVD|F");
  CHECK(pferr_flags(0x10) == "F");
  CHECK(pferr_flags((u64{1} << 33) | 0x2) == "W|0x200000000");
}

TEST_CASE("kvm-compare with --memslots agrees with every mapping level of the model's own tracepoints", "[kvmmmu][compare]") {
  Emitted m = replay_with_tracepoints(write_trace(kTrace));
  std::string rec = write_text(m.text), json = (temp_dir() / "c.json").string();
  // No kvmrec start marker: without --memslots every fault replays as MMIO.
  REQUIRE(run_septsim("kvm-compare " + rec + " -q --json " + json).exit_code == 0);
  auto none = nlohmann::json::parse(slurp(json))["total"];
  CHECK(none["faults_compared"] == 6);
  CHECK(none["faults_agree"] == 0);
  auto r = run_septsim("kvm-compare " + rec + " -q --json " + json + " --memslots 0x0:64M:thp,0x40000000:16M:4k");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto total = nlohmann::json::parse(slurp(json))["total"];
  CHECK(total["faults_compared"] == 6);
  CHECK(total["faults_agree"] == 6);
}
