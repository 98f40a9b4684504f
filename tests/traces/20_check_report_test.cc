// --check's verdict line and --check-report (docs/invariants.md): the
// violations as JSON for CI tools, and the same verdict whether each check
// is incremental or a full sweep.
#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>

#include <nlohmann/json.hpp>

#include "cli_util.h"

using namespace septsim::test;

namespace {

// A guest process maps gva 0x400000, reads it (the TLB caches the
// translation), then the guest kernel points the gva at another page
// without INVLPG (line 8 of the file; write_trace adds the header as line 1).
const char* kRemapWithoutInvlpg =
    R"({"type":"vm_create","vcpus":1}
{"type":"memslot_add","slot":0,"gpa":"0x0","size":"1G","backing":"4k"}
{"type":"guest_pt_pool","gpa":"0x3ff01000","size":"1020K"}
{"type":"guest_map","cr3":"0x3ff00000","gva":"0x400000","gpa":"0x8000000","size":"4K","page":"4k"}
{"type":"set_cr3","vcpu":0,"cr3":"0x3ff00000","pcid":1}
{"type":"access","vcpu":0,"gva":"0x400000","op":"r"}
{"type":"guest_map","cr3":"0x3ff00000","gva":"0x400000","gpa":"0x9000000","size":"4K","page":"4k"}
{"type":"access","vcpu":0,"gpa":"0x1000","op":"r"}
)";

}  // namespace

TEST_CASE("replay --check ends with the verdict, the checks and the rules even when nothing broke", "[check]") {
  auto r = run_septsim("replay " + sample_vm0_trace() + " --check");
  REQUIRE(r.exit_code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(r.out, m, std::regex("invariants: 0 broken, ([0-9]+) checks, ([0-9]+) rules")));
  CHECK(std::stoul(m[1]) > 1);
  // A VM (not a TD): the 12 rules of the TDP MMU table of docs/invariants.md.
  CHECK(m[2] == "12");
  // The default trace adds a TD: its 13 rules too.
  auto both = run_septsim("replay " + sample_trace() + " --check");
  REQUIRE(both.exit_code == 0);
  REQUIRE(std::regex_search(both.out, m, std::regex("invariants: 0 broken, ([0-9]+) checks, ([0-9]+) rules")));
  CHECK(m[2] == "25");
}

TEST_CASE("replay --check-report names the rule, event, file and line of a TLB entry left stale by a remap", "[check]") {
  const std::string trace = write_trace(kRemapWithoutInvlpg);
  const auto out = temp_dir() / "report.json";
  auto r = run_septsim("replay " + trace + " --check-report " + out.string() + " -q");
  CHECK(r.exit_code == 1);  // --check-report implies --check
  CHECK(r.err.find("stale-tlb: vcpu0 caches gva 0x400000") != std::string::npos);
  REQUIRE(std::filesystem::exists(out));
  CHECK_FALSE(std::filesystem::exists(out.string() + ".tmp"));
  const auto j = nlohmann::json::parse(slurp(out));
  REQUIRE(j["violations"].size() == 1);
  const auto& v = j["violations"][0];
  CHECK(v["rule"] == "stale-tlb");
  CHECK(v["file"] == trace);
  CHECK(v["line"] == 8);
  CHECK(v["event"] == 7);
  CHECK(v["details"].get<std::string>().starts_with("vcpu0 caches gva 0x400000 -> hpa "));
  CHECK(j["broken"] == 1);
  CHECK(j["rules"] == 12);
  CHECK(j["checks"].get<unsigned>() >= 2);
  CHECK(j["vm_dead"].is_null());
}

TEST_CASE("an incremental check reports what a full sweep after every event reports, at the same event", "[check]") {
  for (const std::string& trace : {write_trace(kRemapWithoutInvlpg), sample_trace()}) {
    INFO(trace);
    const auto inc = temp_dir() / "inc.json", full = temp_dir() / "full.json";
    auto a = run_septsim("replay " + trace + " -q --check-report " + inc.string());
    auto b = run_septsim("replay " + trace + " -q --check-report " + full.string() +
                         " --set check.full_sweep_interval=1");
    CHECK(a.exit_code == b.exit_code);
    const auto ji = nlohmann::json::parse(slurp(inc)), jf = nlohmann::json::parse(slurp(full));
    CHECK(ji["violations"] == jf["violations"]);
    CHECK(ji["checks"] == jf["checks"]);
    CHECK(jf["full_sweeps"] == jf["checks"]);
    CHECK(ji["full_sweeps"].get<unsigned>() < ji["checks"].get<unsigned>());
  }
}

TEST_CASE("replay --check-report of a clean replay lists no violation", "[check]") {
  const auto out = temp_dir() / "clean.json";
  auto r = run_septsim("replay " + sample_trace() + " -q --check --check-report " + out.string());
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(slurp(out));
  CHECK(j["violations"].empty());
  CHECK(j["broken"] == 0);
  CHECK(j["trace"] == sample_trace());
}
