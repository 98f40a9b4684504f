// Replays a trace as a user would, for tests of what an importer wrote.
#pragma once
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_util.h"

namespace septsim::test {

// `septsim replay TRACE --check --stats S.json`: requires a run with no
// broken invariant and returns the stats file.
inline nlohmann::json replay_checked(const std::string& trace) {
  auto stats = temp_dir() / "s.json";
  auto r = run_septsim("replay " + trace + " --check --stats " + stats.string());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("invariants: 0 broken") != std::string::npos);
  return nlohmann::json::parse(slurp(stats));
}

}  // namespace septsim::test
