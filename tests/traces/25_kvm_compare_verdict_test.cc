// kvm-compare's per-phase fault-level and census agreement and its one-line
// verdict, in the table and in --json.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_util.h"

using namespace septsim::test;

namespace {

std::string data(const std::string& name) { return std::string(SEPTSIM_SOURCE_DIR) + "/tests/data/kvm-shadow/" + name; }

std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t.substr(t.rfind('\n') + 1);
}

}  // namespace

TEST_CASE("kvm-compare ends its table with an AGREE verdict when every level and census agree", "[kvm-compare]") {
  auto json = (temp_dir() / "c.json").string();
  auto r = run_septsim("kvm-compare " + data("seq.trace") + " --kvm-stats " + data("seq.stats.json") + " --json " + json);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto meta = nlohmann::json::parse(slurp(data("seq.meta.json")));
  const unsigned long long faults = meta["event_counts"]["kvm_mmu_spte_requested"].get<unsigned long long>();
  // seq has one phase (write-4k) and every recorded fault is in it.
  CHECK_THAT(r.out, Catch::Contains("write-4k"));
  CHECK_THAT(r.out, Catch::Contains(std::to_string(faults) + "/" + std::to_string(faults) + " (100.0%)"));
  CHECK(last_line(r.out) == "verdict: AGREE: fault levels " + std::to_string(faults) + "/" + std::to_string(faults) +
                                " (100.0%), census 1/1 phases");
  auto j = nlohmann::json::parse(slurp(json));
  CHECK(j["verdict"]["agree"] == true);
  CHECK(j["verdict"]["text"] == last_line(r.out));
  CHECK(j["phases"][0]["fault_agreement"] == 1.0);
  CHECK(j["phases"][0]["census_agrees"] == true);
  CHECK(j["total"]["fault_agreement"] == 1.0);
  CHECK(j["total"]["census_agreement"] == 1.0);
}

TEST_CASE("kvm-compare says DIFFER and names the phase whose census differs", "[kvm-compare]") {
  // KVM's census of seq's only phase with one 4K page more than it had.
  auto stats = nlohmann::json::parse(slurp(data("seq.stats.json")));
  stats["phases"][0]["vm_at_end"]["pages_4k"] = stats["phases"][0]["vm_at_end"]["pages_4k"].get<unsigned long long>() + 1;
  auto bad = (temp_dir() / "bad.stats.json").string();
  std::ofstream(bad) << stats.dump();
  auto json = (temp_dir() / "c.json").string();
  auto r = run_septsim("kvm-compare " + data("seq.trace") + " --kvm-stats " + bad + " --json " + json);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(last_line(r.out), Catch::StartsWith("verdict: DIFFER: fault levels "));
  CHECK_THAT(last_line(r.out), Catch::Contains("census 0/1 phases; first differing phase: write-4k"));
  auto j = nlohmann::json::parse(slurp(json));
  CHECK(j["verdict"]["agree"] == false);
  CHECK(j["phases"][0]["census_agrees"] == false);
  CHECK(j["total"]["census_agreement"] == 0.0);
  CHECK(j["total"]["fault_agreement"] == 1.0);  // the faults still agree
}

TEST_CASE("kvm-compare without KVM stats compares the fault levels only and says so", "[kvm-compare]") {
  auto r = run_septsim("kvm-compare " + data("seq.trace"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(last_line(r.out), Catch::StartsWith("verdict: AGREE: fault levels "));
  CHECK_THAT(last_line(r.out), Catch::EndsWith("census 0/0 phases (no KVM stats given)"));
}
