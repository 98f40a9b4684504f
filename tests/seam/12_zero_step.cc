// Zero-step mitigation (the module's tdh_vp_enter.c): EPT-violation exits that make no
// forward progress are counted; past 6 the GPAs are logged and VP.ENTER
// refuses to enter while one would still fault, holding the SEPT tree.
#include <catch2/catch.hpp>

#include "tests/seam/seam_env.h"

using namespace septsim;
using namespace septsim::seamtest;

namespace {

constexpr u64 kRip = 0xffffffff81000000ull;

// `n` EPT-violation exits on `gpa`, each after a VP.ENTER, with the guest stuck at kRip.
void stuck_exits(SeamEnv& env, Gpa gpa, unsigned n) {
  for (unsigned i = 0; i < n; ++i) {
    REQUIRE(env.enter(0) == TDX_SUCCESS);
    env.now += env.tdx.td_exit_ept_violation(env.td.tdvpr[0], gpa, kRip);
  }
}

const ZeroStep& zs(SeamEnv& env) { return const_cast<Td&>(env.state()).vcpu(env.td.tdvpr[0])->zero_step; }

}  // namespace

TEST_CASE("the 7th no-progress EPT violation logs the GPA and VP.ENTER exits for it until it is mapped", "[seam]") {
  SeamEnv env(false, 1);
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.tables_for(kGpa, 0);
  // The first exit at kRip is progress from RIP 0; then 6 more at the same RIP.
  stuck_exits(env, kGpa, 1 + kSteppingEpfThreshold - 1);
  CHECK(zs(env).epf_count == kSteppingEpfThreshold);
  CHECK(zs(env).epf_gpas.empty());
  stuck_exits(env, kGpa, 1);
  REQUIRE(zs(env).epf_gpas.size() == 1);

  SeamcallRegs r;
  r.rcx = env.td.tdvpr[0];
  CHECK(env.call(Leaf::TDH_VP_ENTER, r) == SEPTSIM_TD_EXIT_EPT_VIOLATION);
  CHECK(r.r8 == kGpa);
  CHECK(!const_cast<Td&>(env.state()).vcpu(env.td.tdvpr[0])->in_guest);
  CHECK(env.stats.value("seam.zero_step_exits") == 1);

  REQUIRE(env.aug(kGpa, 0) == TDX_SUCCESS);  // the guest can now take #VE and accept it
  CHECK(env.enter(0) == TDX_SUCCESS);
}

TEST_CASE("forward progress (an exit at another RIP) clears the zero-step log", "[seam]") {
  SeamEnv env(false, 1);
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.tables_for(kGpa, 0);
  stuck_exits(env, kGpa, kSteppingEpfThreshold + 1);
  REQUIRE(zs(env).epf_gpas.size() == 1);
  CHECK(env.enter(0) == SEPTSIM_TD_EXIT_EPT_VIOLATION);
  // The vCPU did not enter, so there is no exit to log.
  CHECK(env.tdx.td_exit_ept_violation(env.td.tdvpr[0], kGpa, kRip) == 0);
  CHECK(zs(env).epf_gpas.size() == 1);
  REQUIRE(env.aug(kGpa, 0) == TDX_SUCCESS);
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  // An exit on a shared GPA is not logged, but its RIP shows progress.
  env.now += env.tdx.td_exit_ept_violation(env.td.tdvpr[0], 0x800000000000ull | kGpa, kRip + 4);
  CHECK(zs(env).epf_count == 0);
  CHECK(zs(env).epf_gpas.empty());
}

TEST_CASE("a VP.ENTER filtering logged GPAs holds the SEPT tree: a concurrent AUG gets BUSY|SEPT_TREE", "[seam]") {
  SeamEnv env(false, 1);
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.tables_for(kGpa, 0);
  stuck_exits(env, kGpa, kSteppingEpfThreshold + 1);
  REQUIRE(env.aug(kGpa, 0) == TDX_SUCCESS);
  const Cycles t = env.now;
  SeamcallRegs enter;
  enter.rcx = env.td.tdvpr[0];
  REQUIRE(env.tdx.seamcall(Leaf::TDH_VP_ENTER, enter, 0, t) == TDX_SUCCESS);
  SeamcallRegs aug;
  aug.rcx = page_info(kGpa + kPageSize, 0), aug.rdx = env.td.tdr, aug.r8 = env.page();
  CHECK(env.tdx.seamcall(Leaf::TDH_MEM_PAGE_AUG, aug, 1, t) == 0x8000020000000092ull);
}

// tdh_vp_enter.c (tdh_vp_enter): adjust_tlb_tracking_state takes the TD epoch
// lock before handle_stepping_filter runs td_entry_stepping_filter, which
// takes the SEPT tree exclusively only when GPAs are logged
// (td_exit_stepping.c) and answers TDX_OPERAND_BUSY on SEPT_TREE (146) when
// another call holds it. TD_EPOCH is operand 169 (tdx_error_codes_defs.h).
TEST_CASE("VP.ENTER takes the epoch lock before the stepping filter takes the SEPT tree", "[seam]") {
  SeamEnv env(false, 1);
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.tables_for(kGpa, 0);
  stuck_exits(env, kGpa, kSteppingEpfThreshold + 1);
  REQUIRE(zs(env).epf_gpas.size() == 1);
  SeamcallRegs enter;
  enter.rcx = env.td.tdvpr[0];
  // Inside a TRACK: the epoch, though the logged GPA would make the filter exit.
  Cycles t = env.now + 1000;
  SeamcallRegs track;
  track.rcx = env.td.tdr;
  REQUIRE(env.tdx.seamcall(Leaf::TDH_MEM_TRACK, track, 1, t) == TDX_SUCCESS);
  CHECK(env.tdx.seamcall(Leaf::TDH_VP_ENTER, enter, 0, t) == 0x80000200000000A9ull);
  // Inside a BLOCK (the SEPT tree exclusively, refused here on a FREE entry):
  // the filter cannot take the tree.
  t += 1000000;
  SeamcallRegs block;
  block.rcx = page_info(kGpa, 0), block.rdx = env.td.tdr;
  REQUIRE(env.tdx.seamcall(Leaf::TDH_MEM_RANGE_BLOCK, block, 1, t) == 0xC0000B0D00000001ull);
  CHECK(env.tdx.seamcall(Leaf::TDH_VP_ENTER, enter, 0, t) == 0x8000020000000092ull);
  CHECK(env.stats.value("seam.zero_step_exits") == 0);
  // Alone, the filter finds the logged GPA still faulting.
  CHECK(env.tdx.seamcall(Leaf::TDH_VP_ENTER, enter, 0, t + 1000000) == SEPTSIM_TD_EXIT_EPT_VIOLATION);
}
