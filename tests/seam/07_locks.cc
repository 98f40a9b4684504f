// Conflicting SEAMCALLs that overlap in simulated time get TDX_OPERAND_BUSY
// with the operand id of the lock (7.1, 7.2).
#include <catch2/catch.hpp>

#include "tests/seam/seam_env.h"

using namespace septsim;
using namespace septsim::seamtest;

namespace {
SeamcallRegs mem_regs(SeamEnv& env, Gpa gpa, int level, Hpa r8 = 0) {
  SeamcallRegs r;
  r.rcx = page_info(gpa, level), r.rdx = env.td.tdr, r.r8 = r8;
  return r;
}
}  // namespace

TEST_CASE("BLOCK holds the SEPT tree exclusively: an overlapping AUG is BUSY on SEPT_TREE", "[seam]") {
  SeamEnv env;
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.map_4k(kGpa);
  const Cycles t0 = env.now + 1000;
  REQUIRE(at(env, Leaf::TDH_MEM_RANGE_BLOCK, mem_regs(env, kGpa, 0), 1, t0) == TDX_SUCCESS);
  const Cycles block_lat = env.tdx.timing().of(u16(Leaf::TDH_MEM_RANGE_BLOCK));
  CHECK(at(env, Leaf::TDH_MEM_PAGE_AUG, mem_regs(env, kGpa + 0x1000, 0, env.page()), 2, t0 + 10) ==
        with_operand(TDX_OPERAND_BUSY, operand::SEPT_TREE));
  // The same initiator, or another one after the window, succeeds.
  CHECK(at(env, Leaf::TDH_MEM_PAGE_AUG, mem_regs(env, kGpa + 0x1000, 0, env.page()), 2, t0 + block_lat) ==
        TDX_SUCCESS);
  CHECK(env.stats.value("seam.status.busy") == 1);
}

TEST_CASE("two AUGs of the same GPA overlap on the entry lock (RCX), different GPAs run in parallel", "[seam]") {
  SeamEnv env;
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.tables_for(kGpa, 0);
  const Cycles t0 = env.now + 1000;
  REQUIRE(at(env, Leaf::TDH_MEM_PAGE_AUG, mem_regs(env, kGpa, 0, env.page()), 1, t0) == TDX_SUCCESS);
  CHECK(at(env, Leaf::TDH_MEM_PAGE_AUG, mem_regs(env, kGpa, 0, env.page()), 2, t0 + 5) ==
        with_operand(TDX_OPERAND_BUSY, operand::RCX));
  CHECK(at(env, Leaf::TDH_MEM_PAGE_AUG, mem_regs(env, kGpa + 0x1000, 0, env.page()), 3, t0 + 5) == TDX_SUCCESS);
}

TEST_CASE("TRACK contends with an overlapping VP.ENTER on the epoch lock", "[seam]") {
  SeamEnv env;
  REQUIRE(env.finalize() == TDX_SUCCESS);
  const Cycles t0 = env.now + 1000;
  SeamcallRegs e;
  e.rcx = env.td.tdvpr[0];
  REQUIRE(at(env, Leaf::TDH_VP_ENTER, e, 7, t0) == TDX_SUCCESS);
  SeamcallRegs t;
  t.rcx = env.td.tdr;
  CHECK(at(env, Leaf::TDH_MEM_TRACK, t, 1, t0 + 1) == with_operand(TDX_OPERAND_BUSY, operand::TD_EPOCH));
}

TEST_CASE("a guest ACCEPT loses to a host call holding the entry", "[seam]") {
  SeamEnv env;
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.tables_for(kGpa, 0);
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  const Cycles t0 = env.now + 1000;
  REQUIRE(at(env, Leaf::TDH_MEM_PAGE_AUG, mem_regs(env, kGpa, 0, env.page()), 1, t0) == TDX_SUCCESS);
  SeamcallTxn a;
  a.in.rax = u64(TdcallLeaf::TDG_MEM_PAGE_ACCEPT);
  a.in.rcx = page_info(kGpa, 0);
  a.tdcall = true;
  a.tdvpr = env.td.tdvpr[0];
  a.initiator = 100;
  a.start = t0 + 1;
  env.tdx.transport(a);
  // tdg_mem_page_accept.c: the lock failure is reported on RCX (the TD
  // dispatcher turns HOST_PRIORITY into TDX_OPERAND_BUSY).
  CHECK(a.status() == with_operand(TDX_OPERAND_BUSY, operand::RCX));
  a.start = t0 + 100000;
  env.tdx.transport(a);
  CHECK(a.status() == TDX_SUCCESS);
}

// tdh_mem_page_remove.c (and every tdh_mem_*.c that calls
// sept_lock_acquire_host): a lost entry lock is TDX_OPERAND_BUSY on RCX with
// the entry the walk read returned in RCX/RDX by
// set_arch_septe_details_in_vmm_regs, the same registers TDH.MEM.SEPT.RD
// returns for it (RDX: level 0, state MAPPED = 4 in bits 15:8).
TEST_CASE("a call that loses the SEPT entry lock returns the entry in RCX and RDX", "[seam]") {
  SeamEnv env;
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.map_4k(kGpa);
  SeamcallRegs rd;
  REQUIRE(env.mem_op(Leaf::TDH_MEM_SEPT_RD, kGpa, 0, 0, &rd) == TDX_SUCCESS);
  REQUIRE(rd.rdx == 0x400);
  const Cycles t0 = env.now + 1000;
  REQUIRE(at(env, Leaf::TDH_MEM_SEPT_RD, mem_regs(env, kGpa, 0), 1, t0) == TDX_SUCCESS);
  SeamcallTxn t;
  t.in = mem_regs(env, kGpa, 0);
  t.in.rax = leaf_rax(Leaf::TDH_MEM_PAGE_REMOVE);
  t.initiator = 2;
  t.start = t0 + 5;
  env.tdx.transport(t);
  CHECK(t.status() == with_operand(TDX_OPERAND_BUSY, operand::RCX));
  CHECK(t.out.rcx == rd.rcx);
  CHECK(t.out.rdx == rd.rdx);
}
