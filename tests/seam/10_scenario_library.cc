// The scenario library (tests/seam/traces, README there): every trace replays
// through the TDX module with all its "expect"s met, and together they hit
// every cell of the SEPT state table (the module's sept_state_tables), accepted and refused,
// and every operand-id path of the coverage observer's table
// (seam/sept_coverage.cc: each status with its operand id, from the module file and function).
#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/config.h"
#include "model/phys_mem.h"
#include "model/stats.h"
#include "seam/sept_coverage.h"
#include "seam/tdx_module.h"
#include "tests/seam/seam_env.h"
#include "traces/event_source.h"
#include "traces/seam_replay.h"

namespace {

using namespace septsim;
using seam::Leaf;
using seam::SeptCoverage;

const std::string kDir = SEPTSIM_SOURCE_DIR "/tests/seam/traces";

// The library: every trace but the 9x_* ones, which must fail.
std::vector<std::filesystem::path> library() {
  std::vector<std::filesystem::path> files;
  for (const auto& f : std::filesystem::directory_iterator(kDir))
    if (f.path().extension() == ".jsonl" && f.path().filename().string()[0] != '9') files.push_back(f.path());
  std::sort(files.begin(), files.end());
  return files;
}

struct LibraryRun {
  SeptCoverage coverage;
  std::vector<std::string> problems;  // expect mismatches and replay errors
};

// The config keys a scenario needs (host.packages for KEY.CONFIG): the
// lines "key=value" of FILE.set beside it, as `septsim replay FILE --set
// key=value` takes them.
void apply_set_file(const std::filesystem::path& trace, model::Config& cfg) {
  std::ifstream in(std::filesystem::path(trace).replace_extension(".set"));
  for (std::string line; std::getline(in, line);) {
    const size_t eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    cfg.set(line.substr(0, eq), line.substr(eq + 1));
  }
}

// Replays one trace as `septsim replay` does, on a module of its own.
void replay_file(const std::filesystem::path& path, LibraryRun& run) {
  model::Config cfg;
  apply_set_file(path, cfg);
  model::StatsRegistry stats;
  model::PhysMem mem(cfg.u("host.mem_gib") << 30);
  seam::TdxModule tdx(seamtest::unique_name("library").c_str(), cfg, mem, stats);
  tdx.set_observer(&run.coverage);
  traces::SeamReplay replay(tdx, mem, path.string());
  auto src = traces::open_event_source(path.string());
  traces::Event e;
  Cycles now = 0;
  try {
    while (src->next(e)) {
      run.coverage.set_where(path.filename().string() + ":" + std::to_string(e.line));
      now += replay.run(e, now);
    }
  } catch (const std::exception& ex) {
    run.problems.push_back(ex.what());
  }
  for (const std::string& m : replay.mismatches()) run.problems.push_back(m);
}

LibraryRun& library_run() {
  static LibraryRun run = [] {
    LibraryRun r;
    for (const auto& f : library()) replay_file(f, r);
    return r;
  }();
  return run;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

}  // namespace

TEST_CASE("every scenario of the library replays with all its expects met", "[seam][library]") {
  REQUIRE(library().size() >= 8);
  const LibraryRun& run = library_run();
  INFO(joined(run.problems));
  CHECK(run.problems.empty());
}

TEST_CASE("the scenario library hits every cell of the SEPT state table and every operand-id path of the module source", "[seam][library]") {
  const std::vector<std::string> missing = library_run().coverage.missing();
  INFO("cells no scenario hits and operand-id paths no scenario reaches:\n" << joined(missing));
  CHECK(missing.empty());
  // The table has a refusal for every leaf in every class and an acceptance
  // for each allowed state: 13 leaves, 12 state classes at most.
  CHECK(SeptCoverage::required().size() > 150);
  // Every leaf of the cell table has its walk failure and state refusal among
  // the paths, plus the pre-walk, lock, epoch, teardown and Dynamic PAMT ones.
  CHECK(SeptCoverage::required_statuses().size() > 80);
}

TEST_CASE("coverage names every required cell and operand-id path until a call reaches it", "[seam][library]") {
  SeptCoverage cov;
  const size_t all = SeptCoverage::required().size() + SeptCoverage::required_statuses().size();
  CHECK(cov.missing().size() == all);
  seam::SeamcallOutcome o;
  o.leaf = u16(Leaf::TDH_MEM_PAGE_AUG);
  o.walked = o.reached = true;
  o.level = 1;
  o.state = seam::septe::SeptState::FREE;
  cov.on_call(o);  // accepted AUG on a FREE 2M entry
  CHECK(cov.missing().size() == all - 1);
  auto m = cov.missing();
  CHECK(std::find(m.begin(), m.end(), "TDH.MEM.PAGE.AUG FREE@2M accepted") == m.end());
  CHECK(std::find(m.begin(), m.end(), "TDH.MEM.PAGE.AUG FREE@2M refused") != m.end());
  // TDH.MEM.TRACK's epoch lock (tdh_mem_track.c): OPERAND_BUSY | TD_EPOCH (169).
  const std::string track_busy =
      "TDH.MEM.TRACK never returned " + seam::status_string(0x80000200000000A9ull) + " (tdh_mem_track.c: TD_EPOCH lock)";
  CHECK(std::find(m.begin(), m.end(), track_busy) != m.end());
  seam::SeamcallOutcome t;
  t.leaf = u16(Leaf::TDH_MEM_TRACK);
  t.status = 0x80000200000000A9ull;
  cov.on_call(t);
  m = cov.missing();
  CHECK(m.size() == all - 2);
  CHECK(std::find(m.begin(), m.end(), track_busy) == m.end());
  // The same status with another operand id is another path.
  seam::SeamcallOutcome b = t;
  b.status = 0x8000020000000001ull;
  cov.on_call(b);
  CHECK(cov.missing().size() == all - 2);
}

// Whether the library README holds `table`; if not, the current one is
// written to BUILD/`stale_name` for the README.
static bool readme_holds(const std::string& table, const std::string& stale_name) {
  std::ifstream in(kDir + "/README.md");
  std::stringstream readme;
  readme << in.rdbuf();
  if (readme.str().find(table) != std::string::npos) return true;
  std::ofstream(std::string(SEPTSIM_BINARY_DIR "/") + stale_name) << table;
  return false;
}

TEST_CASE("the library README shows which scenario covers each cell of the table", "[seam][library]") {
  INFO("tests/seam/traces/README.md is stale: the current table is in " SEPTSIM_BINARY_DIR "/seam_library_table.md");
  CHECK(readme_holds(library_run().coverage.markdown(), "seam_library_table.md"));
}

TEST_CASE("the library README shows which scenario reaches each operand-id path of the module source", "[seam][library]") {
  INFO("tests/seam/traces/README.md is stale: the current path table is in " SEPTSIM_BINARY_DIR
       "/seam_library_paths.md");
  CHECK(readme_holds(library_run().coverage.required_status_markdown(), "seam_library_paths.md"));
}

TEST_CASE("the library README lists every status, with its operand id, each leaf returned", "[seam][library]") {
  INFO("tests/seam/traces/README.md is stale: the current status table is in " SEPTSIM_BINARY_DIR
       "/seam_library_statuses.md");
  CHECK(readme_holds(library_run().coverage.status_markdown(), "seam_library_statuses.md"));
}
