// septsim kvm-compare against the real recordings: the TDP model's census and
// mapping levels against what the shadow-MMU kernel did (golden values from
// the recordings' stats.json).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli_util.h"

using namespace septsim::test;

namespace {

std::string data(const std::string& name) { return std::string(SEPTSIM_SOURCE_DIR) + "/tests/data/kvm-shadow/" + name; }

nlohmann::json compare(const std::string& name) {
  auto out = temp_dir() / "cmp.json";
  auto r = run_septsim("kvm-compare " + data(name + ".trace") + " --kvm-stats " + data(name + ".stats.json") +
                       " -q --json " + out.string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(slurp(out));
}

}  // namespace

TEST_CASE("kvm-compare: the model agrees with KVM on seq, random and memslot-churn", "[kvm-compare]") {
  for (const char* name : {"seq", "random", "memslot-churn"}) {
    INFO(name);
    auto j = compare(name);
    auto stats = nlohmann::json::parse(slurp(data(std::string(name) + ".stats.json")));
    auto meta = nlohmann::json::parse(slurp(data(std::string(name) + ".meta.json")));
    // Every fault with a recorded level was compared, and the levels agree.
    CHECK(j["total"]["faults_compared"] == meta["event_counts"]["kvm_mmu_spte_requested"]);
    CHECK(j["total"]["faults_agree"] == j["total"]["faults_compared"]);
    CHECK(j["total"]["faults_excluded"].empty());
    CHECK(j["disagreements"].empty());
    // The census at every phase end is KVM's vm_at_end.
    REQUIRE(j["phases"].size() == stats["phases"].size());
    for (size_t i = 0; i < j["phases"].size(); ++i) {
      const auto& p = j["phases"][i];
      const auto& k = stats["phases"][i];
      CHECK(p["name"] == k["name"]);
      for (const char* key : {"pages_4k", "pages_2m", "pages_1g"}) {
        CHECK(p["kvm"][key] == k["vm_at_end"][key]);
        CHECK(p["model"][key] == k["vm_at_end"][key]);
      }
      CHECK(p["census_agrees"] == true);
      CHECK(p["census_excluded"].is_null());
    }
    CHECK(j["total"]["census_agree"] == stats["phases"].size());
    CHECK(j["warnings"].empty());
  }
}

TEST_CASE("kvm-compare: a missing stats file is a bad-input error", "[kvm-compare][badinput]") {
  auto r = run_septsim("kvm-compare " + data("seq.trace") + " --kvm-stats " + data("nope.json") + " -q");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("nope.json") != std::string::npos);
}
