// The scenario library (tests/seam/traces, README there): every trace replays
// through the TDX module with all its "expect"s met, and together they hit
// every cell of the SEPT state table (the module's sept_state_tables), accepted and refused,
// plus the refusals that come before the walk (section 5 codes).
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

// Replays one trace as `septsim replay` does, on a module of its own.
void replay_file(const std::filesystem::path& path, LibraryRun& run) {
  model::Config cfg;
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

TEST_CASE("the scenario library hits every cell of the SEPT state table, accepted and refused", "[seam][library]") {
  const std::vector<std::string> missing = library_run().coverage.missing();
  INFO("cells no scenario hits:\n" << joined(missing));
  CHECK(missing.empty());
  // The table has a refusal for every leaf in every class and an acceptance
  // for each allowed state: 13 leaves, 12 state classes at most.
  CHECK(SeptCoverage::required().size() > 150);
}

TEST_CASE("coverage names every required cell until a call hits it", "[seam][library]") {
  SeptCoverage cov;
  const size_t all = SeptCoverage::required().size();
  CHECK(cov.missing().size() == all);
  seam::SeamcallOutcome o;
  o.leaf = u16(Leaf::TDH_MEM_PAGE_AUG);
  o.walked = o.reached = true;
  o.level = 1;
  o.state = seam::septe::SeptState::FREE;
  cov.on_call(o);  // accepted AUG on a FREE 2M entry
  CHECK(cov.missing().size() == all - 1);
  const auto m = cov.missing();
  CHECK(std::find(m.begin(), m.end(), "TDH.MEM.PAGE.AUG FREE@2M accepted") == m.end());
  CHECK(std::find(m.begin(), m.end(), "TDH.MEM.PAGE.AUG FREE@2M refused") != m.end());
}

TEST_CASE("the scenario library exercises the refusals that come before the SEPT walk", "[seam][library]") {
  using namespace seam;
  struct Want {
    Leaf leaf;
    Status status;
  };
  // Section 5 codes with the operand each check reports.
  const Want wants[] = {
      {Leaf::TDH_VP_ENTER, TDX_OP_STATE_INCORRECT},
      {Leaf::TDH_MR_FINALIZE, TDX_OP_STATE_INCORRECT},
      {Leaf::TDH_MEM_PAGE_ADD, TDX_OP_STATE_INCORRECT},
      {Leaf::TDH_MR_EXTEND, TDX_OP_STATE_INCORRECT},
      {Leaf::TDH_MEM_PAGE_AUG, 0xC000010000000001ull},  // OPERAND_INVALID|RCX: alignment, level, GPAW, shared bit
      {Leaf::TDH_MEM_PAGE_AUG, 0xC000010000000000ull},  // OPERAND_INVALID|RAX: version
      {Leaf::TDH_MEM_PAGE_AUG, 0xC000030000000002ull},  // PAGE_METADATA_INCORRECT|RDX: not a TDR
      {Leaf::TDH_MEM_SEPT_ADD, 0xC000010000000002ull},  // OPERAND_INVALID|RDX: reserved flag
      {Leaf::TDH_MEM_SEPT_ADD, 0xC000030000000008ull},  // PAGE_METADATA_INCORRECT|R8: page not free
      {Leaf::TDH_MEM_PAGE_AUG, 0x8000020000000092ull},  // OPERAND_BUSY|SEPT_TREE
      {Leaf::TDH_MEM_TRACK, 0x80000200000000A9ull},     // OPERAND_BUSY|TD_EPOCH
      {Leaf::TDH_MEM_TRACK, TDX_PREVIOUS_TLB_EPOCH_BUSY},
      {Leaf::TDH_MEM_PAGE_REMOVE, 0xC0000B0800000001ull},    // TLB_TRACKING_NOT_DONE|RCX
      {Leaf::TDH_MEM_RANGE_UNBLOCK, 0xC0000B0800000092ull},  // TLB_TRACKING_NOT_DONE|SEPT_TREE
      {Leaf::TDH_MEM_PAGE_AUG, TDX_MISSING_PAMT_PAGE_PAIR},
      {Leaf::TDH_MEM_SEPT_ADD, TDX_MISSING_PAMT_PAGE_PAIR},
      {Leaf::TDH_MEM_PAGE_DEMOTE, TDX_MISSING_PAMT_PAGE_PAIR},
      // 17_dynamic_pamt.jsonl: DEMOTE's R12/R13 pair checked as PAMT.ADD checks its pages.
      {Leaf::TDH_MEM_PAGE_DEMOTE, 0xC00001000000000Cull},  // OPERAND_INVALID|R12: KeyID bits
      {Leaf::TDH_MEM_PAGE_DEMOTE, 0xC00003030000000Cull},  // PAGE_NOT_FREE|R12: a PAMT page
      {Leaf::TDH_MEM_PAGE_DEMOTE, 0xC00003030000000Dull},  // PAGE_NOT_FREE|R13: the same page twice
      {Leaf::TDH_PHYMEM_PAMT_ADD, 0xC000030400000001ull},  // HPA_RANGE_NOT_FREE|RCX
      {Leaf::TDH_PHYMEM_PAMT_REMOVE, TDX_PAMT_PAGE_NOT_EMPTY},
      {Leaf::TDH_PHYMEM_PAMT_REMOVE, 0xC000030500000001ull},  // NO_PAMT_PAGE_PAIR|RCX
      // 19_teardown.jsonl: tdh_vp_enter.c (associate_vcpu), tdh_vp_flush.c, tdh_mng_vpflushdone.c,
      // tdh_mng_key_freeid.c, tdh_phymem_cache_wb.c.
      {Leaf::TDH_VP_ENTER, 0x8000070100000000ull},           // VCPU_ASSOCIATED
      {Leaf::TDH_VP_FLUSH, 0x8000020000000001ull},           // OPERAND_BUSY|RCX: the vCPU runs
      {Leaf::TDH_VP_FLUSH, 0x8000070200000000ull},           // VCPU_NOT_ASSOCIATED
      {Leaf::TDH_MNG_VPFLUSHDONE, 0x8000020000000001ull},    // OPERAND_BUSY|RCX
      {Leaf::TDH_MNG_VPFLUSHDONE, 0x8000082400000000ull},    // FLUSHVP_NOT_DONE
      {Leaf::TDH_MNG_KEY_FREEID, 0x8000020000000001ull},     // OPERAND_BUSY|RCX
      {Leaf::TDH_MNG_KEY_FREEID, 0x8000081700000000ull},     // WBCACHE_NOT_COMPLETE
      {Leaf::TDH_PHYMEM_CACHE_WB, 0x0000082100000000ull},    // NO_HKID_READY_TO_WBCACHE
      {Leaf::TDH_PHYMEM_CACHE_WB, 0xC000082300000000ull},    // WBCACHE_RESUME_ERROR
      {Leaf::TDH_PHYMEM_CACHE_WB, 0xC000010000000001ull},    // OPERAND_INVALID|RCX
      {Leaf::TDH_PHYMEM_CACHE_WB, 0x80000200000000BAull},    // OPERAND_BUSY|KOT
      {Leaf::TDH_PHYMEM_CACHE_WB, 0x80000200000000BCull},    // OPERAND_BUSY|WBCACHE
      {Leaf::TDH_PHYMEM_CACHE_WB, TDX_INTERRUPTED_RESUMABLE},  // "interrupt": true
      // 16_non_sept_refusals.jsonl: helpers.c hpa_check_with_pwr_2_alignment, tdh_mem_sept_rd.c.
      {Leaf::TDH_MEM_PAGE_AUG, 0xC000010000000008ull},       // OPERAND_INVALID|R8: KeyID bits, 2M alignment
      {Leaf::TDH_MEM_PAGE_AUG, 0xC000010000000002ull},       // OPERAND_INVALID|RDX: TDR with low bits
      {Leaf::TDH_MEM_TRACK, 0xC000010000000001ull},          // OPERAND_INVALID|RCX: TDR above MAX_PA
      {Leaf::TDH_MEM_SEPT_RD, 0xC000010000000002ull},        // OPERAND_INVALID|RDX: L2 attributes, not debug
      {Leaf::TDH_PHYMEM_PAGE_RECLAIM, 0xC000010000000001ull},
      {Leaf::TDH_PHYMEM_PAGE_RDMD, 0xC000010000000001ull},
  };
  const SeptCoverage& cov = library_run().coverage;
  for (const Want& w : wants) {
    INFO(leaf_name(u16(w.leaf)) << " " << status_string(w.status));
    CHECK(cov.returned(false, u16(w.leaf), w.status));
  }
  // tdg_mem_page_accept.c: a lost entry lock is TDX_OPERAND_BUSY on RCX.
  CHECK(cov.returned(true, u16(TdcallLeaf::TDG_MEM_PAGE_ACCEPT), 0x8000020000000001ull));
  // 20_accept_interrupt_and_lps.jsonl: a 2M ACCEPT a pending interrupt stops
  // (tdg_mem_page_accept.c; the model's external-interrupt exit report).
  CHECK(cov.returned(true, u16(TdcallLeaf::TDG_MEM_PAGE_ACCEPT), SEPTSIM_TD_EXIT_INTERRUPT));
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

TEST_CASE("the library README lists every status, with its operand id, each leaf returned", "[seam][library]") {
  INFO("tests/seam/traces/README.md is stale: the current status table is in " SEPTSIM_BINARY_DIR
       "/seam_library_statuses.md");
  CHECK(readme_holds(library_run().coverage.status_markdown(), "seam_library_statuses.md"));
}
