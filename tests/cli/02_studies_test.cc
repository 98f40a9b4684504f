// Each shipped study runs at a reduced size: its sweep file is valid, every
// point succeeds with no broken invariant, and the figures are drawn.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "../traces/cli_util.h"

using namespace septsim::test;
namespace fs = std::filesystem;

TEST_CASE("study tlb-walk-caches runs at reduced size", "[study]") {
  auto d = temp_dir();
  std::string cmd = "SEPTSIM=" + std::string(SEPTSIM_BINARY_DIR) + "/septsim " + SEPTSIM_SOURCE_DIR +
                    "/scripts/studies/run tlb-walk-caches --small -j 2 -o " + d.string() + " >" +
                    (d / "log").string() + " 2>&1";
  int rc = std::system(cmd.c_str());
  INFO(slurp(d / "log"));
  REQUIRE(rc == 0);
  auto m = nlohmann::json::parse(slurp(d / "results" / "manifest.json"));
  REQUIRE(m["points"].size() == 4 * 5 * 2 * 2);
  for (const auto& p : m["points"]) CHECK(p["status"] == "ok");
  for (const char* fig : {"stlb-miss-rate", "ept-refs-per-walk", "cycles-per-access"}) {
    CHECK(fs::file_size(d / (std::string(fig) + ".png")) > 1000);
    CHECK(fs::file_size(d / (std::string(fig) + ".svg")) > 1000);
  }
}
