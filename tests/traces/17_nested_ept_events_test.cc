// The nested-EPT events (nested_vmentry, l2_access, l1_ept_write,
// l1_invept): decoding and bad input, the nested-ept generator, and a replay
// whose root-cache outcome follows KVM's rules.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "traces/jsonl_writer.h"
#include "traces/reader.h"

using namespace septsim;
using namespace septsim::test;

namespace {

// L2 guests 0 and 1: WB, 4-level, A/D on; EPT12 roots at 1 MiB and 2 MiB.
const std::string kVm = "{\"type\":\"vm_create\",\"vcpus\":1}\n";
const std::string kEnter0 = "{\"type\":\"nested_vmentry\",\"vcpu\":0,\"eptp\":\"0x10005e\"}\n";
const std::string kEnter1 = "{\"type\":\"nested_vmentry\",\"vcpu\":0,\"eptp\":\"0x20005e\"}\n";
const std::string kRead0 = "{\"type\":\"l2_access\",\"vcpu\":0,\"gpa\":\"0x0\",\"op\":\"r\",\"count\":4,\"stride\":\"4K\"}\n";

// Guest 0 runs, guest 1 runs, L1 changes guest 0's EPT at 0x2000 and INVEPTs it, guest 0 runs again.
std::string invept_scenario() {
  return kVm + kEnter0 + kRead0 + kEnter1 + "{\"type\":\"l1_ept_write\",\"vcpu\":0,\"eptp\":\"0x10005e\",\"gpa\":\"0x2000\"}\n" +
         "{\"type\":\"l1_invept\",\"vcpu\":0,\"kind\":\"single\",\"eptp\":\"0x10005e\"}\n" + kEnter0 + kRead0;
}

nlohmann::json replay_counters(const std::string& trace, const std::string& args) {
  auto stats = temp_dir() / "s.json";
  auto r = run_septsim("replay " + trace + " -q --check --stats " + stats.string() + " " + args);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(slurp(stats));
  REQUIRE(j["invariant_violations"].empty());
  return j["stats"]["total"]["counters"];
}

}  // namespace

TEST_CASE("Upstream INVEPT frees the cached root: re-entering rebuilds it and refaults", "[nested]") {
  auto c = replay_counters(write_trace(invept_scenario()), "--set mmu.nested.invept=free");
  CHECK(c["nested.vmentries"] == 3);
  CHECK(c["nested.root_builds"] == 3);
  CHECK(c["nested.root_rebuilds"] == 1);
  CHECK(c["nested.prev_roots_hits"] == 0);
  CHECK(c["nested.refaults"] == 4);
  CHECK(c["nested.invept_single"] == 1);
}

TEST_CASE("keep-sync INVEPT keeps the cached root: a prev_roots hit, one page synced, one refault", "[nested]") {
  auto c = replay_counters(write_trace(invept_scenario()), "--set mmu.nested.invept=keep-sync");
  CHECK(c["nested.root_builds"] == 2);
  CHECK(c["nested.prev_roots_hits"] == 1);
  CHECK(c["nested.syncs"] == 1);
  CHECK(c["nested.synced_pages"] == 1);
  CHECK(c["nested.refaults"] == 1);  // the entry L1 changed
}

TEST_CASE("Bad nested events are bad input naming the line and field", "[nested][badinput]") {
  auto bad = [](const std::string& body, const std::string& where) {
    auto t = write_trace(kVm + body);
    auto r = run_septsim("replay " + t);
    CHECK(r.exit_code == 2);
    INFO(r.err);
    CHECK(r.err.find(t + ":3: " + where) != std::string::npos);
  };
  bad("{\"type\":\"nested_vmentry\",\"vcpu\":0,\"eptp\":\"0x10005d\"}\n", "field 'eptp'");  // memory type 5
  bad("{\"type\":\"nested_vmentry\",\"vcpu\":0,\"eptp\":\"0x10004e\"}\n", "field 'eptp'");  // walk length 2
  bad("{\"type\":\"l1_invept\",\"vcpu\":0,\"kind\":\"all\",\"eptp\":\"0x10005e\"}\n", "field 'eptp'");
  bad("{\"type\":\"l1_ept_write\",\"vcpu\":0,\"eptp\":\"0x10005e\",\"gpa\":\"0x2001\"}\n", "field 'gpa'");
  bad("{\"type\":\"nested_vmentry\",\"vcpu\":1,\"eptp\":\"0x10005e\"}\n", "field 'vcpu'");
  bad(kRead0, "vCPU 0 runs no L2");
}

TEST_CASE("septsim gen nested-ept is deterministic and its events read back as written", "[nested][gen]") {
  auto d = temp_dir();
  auto gen = [&](const std::string& name, int seed) {
    auto p = (d / name).string();
    auto r = run_septsim("gen nested-ept -o " + p + " --vcpus 2 --size 64M --count 200 --seed " + std::to_string(seed));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return p;
  };
  auto a = gen("a.jsonl", 2), b = gen("b.jsonl", 2), c = gen("c.jsonl", 3);
  CHECK(slurp(a) == slurp(b));
  CHECK(slurp(a) != slurp(c));
  traces::TraceReader reader(a);
  std::ifstream lines(a);
  std::string line;
  std::getline(lines, line);  // header
  traces::Event e;
  std::map<std::string, int> types;
  while (reader.next(e)) {
    std::getline(lines, line);
    REQUIRE(traces::event_to_json(e) == line);
    ++types[traces::event_type_name(e.type)];
  }
  CHECK(types["nested_vmentry"] == 2 * 6 + 200);
  CHECK(types["l1_invept"] > 0);
  CHECK(types["l1_ept_write"] == 4 * types["l1_invept"]);
  auto c2 = replay_counters(a, "");
  CHECK(c2["nested.vmentries"] == 2 * 6 + 200);
}

TEST_CASE("A nested-EPT trace is not converted to the binary format, and no output is left", "[nested][badinput]") {
  auto t = write_trace(kVm + kEnter0 + kRead0);
  auto out = temp_dir() / "n.sstb";
  auto r = run_septsim("convert " + t + " " + out.string());
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("nested_vmentry events have no binary encoding") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out));
}
