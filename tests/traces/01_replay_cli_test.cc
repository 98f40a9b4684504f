// The septsim command as users and CI drive it: exit codes, error messages,
// whole-or-nothing stats files, determinism.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_util.h"

using namespace septsim::test;
namespace fs = std::filesystem;

TEST_CASE("replaying the default sample succeeds with no broken invariants", "[replay]") {
  auto stats = temp_dir() / "s.json";
  auto r = run_septsim("replay " + sample_trace() + " --check --stats " + stats.string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("septsim replay summary") != std::string::npos);
  auto j = nlohmann::json::parse(slurp(stats));
  CHECK(j["invariant_violations"].empty());
  // The sample's phase markers scope the statistics: the normal VM's two, then the TD's three.
  REQUIRE(j["stats"]["phases"].size() == 5);
  const char* names[] = {"warmup", "measured", "td-build", "td-run", "td-teardown"};
  for (size_t i = 0; i < 5; ++i) CHECK(j["stats"]["phases"][i]["name"] == names[i]);
}

TEST_CASE("the same trace and config give byte-identical stats", "[replay]") {
  auto d = temp_dir();
  auto a = d / "a.json", b = d / "b.json";
  REQUIRE(run_septsim("replay " + sample_trace() + " -q --stats " + a.string()).exit_code == 0);
  REQUIRE(run_septsim("replay " + sample_trace() + " -q --stats " + b.string()).exit_code == 0);
  CHECK(slurp(a) == slurp(b));
  CHECK(slurp(a).size() > 1000);
}

TEST_CASE("the quantum changes timing but not what the MMU did", "[replay]") {
  auto d = temp_dir();
  auto a = d / "a.json", b = d / "b.json";
  const std::string t = sample_vm0_trace();
  REQUIRE(run_septsim("replay " + t + " -q --quantum 0 --stats " + a.string()).exit_code == 0);
  REQUIRE(run_septsim("replay " + t + " -q --quantum 10000 --stats " + b.string()).exit_code == 0);
  auto ja = nlohmann::json::parse(slurp(a))["stats"]["total"]["counters"];
  auto jb = nlohmann::json::parse(slurp(b))["stats"]["total"]["counters"];
  // Which vCPU reaches a shared guest table first may change; what the VM did may not.
  for (const char* k : {"kvm.pf_taken", "kvm.pf_fixed", "kvm.pages_2m", "kvm.pages_4k", "vcpu0.accesses_gpa",
                        "vcpu1.accesses_gva"})
    CHECK(ja[k] == jb[k]);
  CHECK(ja["vcpu0.cycles"] != jb["vcpu0.cycles"]);
}

TEST_CASE("malformed JSON is a bad-input error naming file and line, and no stats file is left", "[replay][badinput]") {
  auto t = write_trace("{\"type\":\"vm_create\",\"vcpus\":1}\n{\"type\":\"access\",\"vcpu\":0,\n");
  auto stats = temp_dir() / "s.json";
  auto r = run_septsim("replay " + t + " --stats " + stats.string());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(t + ":3:") != std::string::npos);
  CHECK_FALSE(fs::exists(stats));
  CHECK_FALSE(fs::exists(stats.string() + ".tmp"));
}

TEST_CASE("an unknown event type is a bad-input error", "[replay][badinput]") {
  auto t = write_trace("{\"type\":\"vm_create\",\"vcpus\":1}\n{\"type\":\"teleport\"}\n");
  auto r = run_septsim("replay " + t);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(t + ":3:") != std::string::npos);
  CHECK(r.err.find("teleport") != std::string::npos);
}

TEST_CASE("an unknown field is named with the closest known one", "[replay][badinput]") {
  auto t = write_trace("{\"type\":\"vm_create\",\"vcpus\":1}\n{\"type\":\"access\",\"vcpu\":0,\"gpaa\":\"0x1000\"}\n");
  auto r = run_septsim("replay " + t);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(t + ":3: field 'gpaa'") != std::string::npos);
  CHECK(r.err.find("'gpa'") != std::string::npos);
}

TEST_CASE("a truncated file is a bad-input error", "[replay][badinput]") {
  auto t = write_trace("{\"type\":\"vm_create\",\"vcpus\":1}\n{\"type\":\"memslot_add\",\"slot\":0,\"gp");
  auto r = run_septsim("replay " + t);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(t + ":3:") != std::string::npos);
  CHECK(r.err.find("truncated") != std::string::npos);
}

TEST_CASE("a missing trace file is a bad-input error", "[replay][badinput]") {
  auto r = run_septsim("replay /nonexistent/trace.jsonl");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("/nonexistent/trace.jsonl") != std::string::npos);
}

TEST_CASE("an unknown --set key is an error that names close matches", "[replay][badinput]") {
  auto r = run_septsim("replay " + sample_trace() + " --set tlb.stlb.entires=2048");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("unknown config key 'tlb.stlb.entires'") != std::string::npos);
  CHECK(r.err.find("'tlb.stlb.entries'") != std::string::npos);
}

TEST_CASE("a config value of the wrong kind is an error", "[replay][badinput]") {
  auto r = run_septsim("replay " + sample_trace() + " --set tlb.stlb.entries=many");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("tlb.stlb.entries") != std::string::npos);
  auto d = temp_dir();
  std::ofstream(d / "c.json") << "{\"tlb\": {\"stlb\": {\"ways\": true}}}";
  auto r2 = run_septsim("replay " + sample_trace() + " --config " + (d / "c.json").string());
  CHECK(r2.exit_code == 2);
  CHECK(r2.err.find("tlb.stlb.ways") != std::string::npos);
}

TEST_CASE("a malformed config file is an error naming the file", "[replay][badinput]") {
  auto d = temp_dir();
  std::ofstream(d / "c.json") << "{\"tlb\": ";
  auto r = run_septsim("replay " + sample_trace() + " --config " + (d / "c.json").string());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find((d / "c.json").string()) != std::string::npos);
}

TEST_CASE("an ioctl the VM refuses is reported with the trace line", "[replay][badinput]") {
  auto t = write_trace(
      "{\"type\":\"vm_create\",\"vcpus\":1}\n"
      "{\"type\":\"memslot_add\",\"slot\":0,\"gpa\":\"0x0\",\"size\":\"1G\",\"backing\":\"thp\"}\n"
      "{\"type\":\"memslot_add\",\"slot\":1,\"gpa\":\"0x100000\",\"size\":\"2M\",\"backing\":\"4k\"}\n");
  auto r = run_septsim("replay " + t);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(t + ":4:") != std::string::npos);
}

TEST_CASE("an access to a vCPU the VM does not have is a bad-input error", "[replay][badinput]") {
  auto t = write_trace("{\"type\":\"vm_create\",\"vcpus\":1}\n{\"type\":\"access\",\"vcpu\":3,\"gpa\":\"0x0\"}\n");
  auto r = run_septsim("replay " + t);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(t + ":3: field 'vcpu'") != std::string::npos);
}

TEST_CASE("an access outside every memslot is an MMIO exit that KVM emulates", "[replay]") {
  auto t = write_trace(
      "{\"type\":\"vm_create\",\"vcpus\":1}\n"
      "{\"type\":\"memslot_add\",\"slot\":0,\"gpa\":\"0x0\",\"size\":\"1G\",\"backing\":\"thp\"}\n"
      "{\"type\":\"access\",\"vcpu\":0,\"gpa\":\"0xfee00000\",\"op\":\"w\",\"count\":3}\n");
  auto stats = temp_dir() / "s.json";
  auto r = run_septsim("replay " + t + " --check -q --stats " + stats.string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto c = nlohmann::json::parse(slurp(stats))["stats"]["total"]["counters"];
  CHECK(c["kvm.pf_emulate"] == 3);
  CHECK(c["vcpu0.emulated"] == 3);
  CHECK(c["kvm.pages_4k"] == 0);
}

TEST_CASE("septsim answers --version and --help with exit 0", "[replay]") {
  auto v = run_septsim("--version");
  CHECK(v.exit_code == 0);
  CHECK(v.out.rfind("septsim ", 0) == 0);
  auto h = run_septsim("replay --help");
  CHECK(h.exit_code == 0);
  CHECK(h.out.find("--quantum") != std::string::npos);
}
