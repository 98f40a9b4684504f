// SEPT.ADD, PAGE.ADD, PAGE.AUG (4K, 2M) and the guest's ACCEPT (3.4).
#include <catch2/catch.hpp>

#include "tests/seam/seam_env.h"

using namespace septsim;
using namespace septsim::seamtest;

TEST_CASE("SEPT.ADD builds tables level by level and refuses an existing one", "[seam]") {
  SeamEnv env;
  CHECK(env.sept_add(kGpa, 1) == with_operand(TDX_EPT_WALK_FAILED, operand::RCX));
  CHECK(env.mem_op(Leaf::TDH_MEM_SEPT_ADD, kGpa, 3, env.page()) == with_operand(TDX_OPERAND_INVALID, operand::RCX));
  CHECK(env.sept_add(kGpa, 3) == TDX_SUCCESS);  // GPA 0 | level 3: the PML4E covering 512 GiB
  CHECK(env.sept_state(0, 3) == kNlMapped);
  SeamcallRegs out;
  CHECK(env.mem_op(Leaf::TDH_MEM_SEPT_ADD, 0, 3, env.page(), &out) ==
        with_operand(TDX_EPT_ENTRY_STATE_INCORRECT, operand::RCX));
  CHECK(((out.rdx & 7) == 3 && ((out.rdx >> 8) & 0xff) == kNlMapped));
  // Version 1 with allow_existing succeeds without consuming the page.
  SeamcallRegs r;
  const Hpa p = env.page();
  r.rcx = page_info(0, 3), r.rdx = env.td.tdr | 1, r.r8 = p;
  CHECK(env.call(Leaf::TDH_MEM_SEPT_ADD, r, 0, 1) == TDX_SUCCESS);
  CHECK(r.r8 == (p | (1ull << 63)));
  CHECK(env.sept_add(kGpa, 2) == TDX_SUCCESS);
  CHECK(env.sept_add(kGpa, 1) == TDX_SUCCESS);
  CHECK(env.sept_add(kGpa, 0) == with_operand(TDX_OPERAND_INVALID, operand::RCX));  // level 0 is not a table
  CHECK(env.tdx.sept_pages() == 4);
}

TEST_CASE("SEPT.ADD's new page must be free for TDX", "[seam]") {
  SeamEnv env;
  CHECK(env.mem_op(Leaf::TDH_MEM_SEPT_ADD, 0, 3, env.td.tdr) ==
        with_operand(TDX_PAGE_METADATA_INCORRECT, operand::R8));
  CHECK(env.mem_op(Leaf::TDH_MEM_SEPT_ADD, 0, 3, 0x1234) == with_operand(TDX_OPERAND_INVALID, operand::R8));
}

TEST_CASE("page_info and GPA checks reject reserved bits, bad levels, misalignment and shared GPAs", "[seam]") {
  SeamEnv env;
  env.tables_for(kGpa, 0);
  const Status bad = with_operand(TDX_OPERAND_INVALID, operand::RCX);
  CHECK(env.aug(kGpa + 0x200000, 1, env.page()) == with_operand(TDX_OPERAND_INVALID, operand::R8));
  CHECK(env.aug(kGpa + 0x1000, 1) == bad);                // GPA not 2M aligned
  CHECK(env.aug(kGpa, 2) == bad);                         // AUG takes 4K and 2M only
  CHECK(env.aug(kGpa | (1ull << 47), 0) == bad);          // shared bit (GPAW 48)
  SeamcallRegs r;
  r.rcx = page_info(kGpa, 0) | 0x10, r.rdx = env.td.tdr, r.r8 = env.page();
  CHECK(env.call(Leaf::TDH_MEM_PAGE_AUG, r) == bad);
}

TEST_CASE("AUG makes a PENDING leaf, ACCEPT makes it MAPPED, a second ACCEPT is a warning", "[seam]") {
  SeamEnv env;
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.tables_for(kGpa, 0);
  const u64 before = env.state().chldcnt;
  REQUIRE(env.aug(kGpa, 0) == TDX_SUCCESS);
  CHECK(env.sept_state(kGpa, 0) == kPending);
  CHECK(env.state().chldcnt == before + 1);
  SeamcallRegs out;
  CHECK(env.mem_op(Leaf::TDH_MEM_PAGE_AUG, kGpa, 0, env.page(), &out) ==
        with_operand(TDX_EPT_ENTRY_STATE_INCORRECT, operand::RCX));
  CHECK(out.rdx == (0 | (kPending << 8)));
  CHECK((out.rcx & septe::kSve) != 0);
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  CHECK(env.accept(0, kGpa, 0) == TDX_SUCCESS);
  CHECK(env.sept_state(kGpa, 0) == kMapped);
  CHECK(env.accept(0, kGpa, 0) == TDX_PAGE_ALREADY_ACCEPTED);
  CHECK(!is_error(env.accept(0, kGpa, 0)));
}

TEST_CASE("AUG works before and after MR.FINALIZE, PAGE.ADD only before", "[seam]") {
  SeamEnv env;
  env.tables_for(kGpa, 0);
  CHECK(env.aug(kGpa, 0) == TDX_SUCCESS);  // INITIALIZED: the module allows it
  CHECK(env.add(kGpa + 0x1000) == TDX_SUCCESS);
  CHECK(env.sept_state(kGpa + 0x1000, 0) == kMapped);
  CHECK(env.add(kGpa + 0x1000) == with_operand(TDX_EPT_ENTRY_STATE_INCORRECT, operand::RCX));
  REQUIRE(env.finalize() == TDX_SUCCESS);
  CHECK(env.add(kGpa + 0x2000) == TDX_OP_STATE_INCORRECT);
  CHECK(env.aug(kGpa + 0x2000, 0) == TDX_SUCCESS);
}

TEST_CASE("2M AUG and ACCEPT, a 4K ACCEPT under it or a 2M ACCEPT over a table", "[seam]") {
  SeamEnv env;
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.tables_for(kGpa, 1);
  const u64 before = env.state().chldcnt;
  REQUIRE(env.aug(kGpa, 1) == TDX_SUCCESS);
  CHECK(env.state().chldcnt == before + 512);
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  CHECK(env.accept(0, kGpa + 0x3000, 0) == SEPTSIM_TD_EXIT_EPT_VIOLATION);  // pending 2M leaf: VMM must act
  CHECK(env.accept(0, kGpa, 1) == TDX_SUCCESS);
  CHECK(env.sept_state(kGpa, 1) == kMapped);
  CHECK(env.accept(0, kGpa + 0x3000, 0) == with_operand(TDX_PAGE_ALREADY_ACCEPTED, 1));
  env.tables_for(kGpa + 0x200000, 0);
  CHECK(env.accept(0, kGpa + 0x200000, 1) == TDX_PAGE_SIZE_MISMATCH);
  CHECK(env.accept(0, kGpa + 0x400000, 0) == SEPTSIM_TD_EXIT_EPT_VIOLATION);  // no table
}

TEST_CASE("a 2M AUG needs a 2M-aligned page with no 4K TDX page inside", "[seam]") {
  SeamEnv env;
  env.tables_for(kGpa, 1);
  const Hpa big = env.page(PG_LEVEL_2M);
  CHECK(env.aug(kGpa, 1, big + 0x1000) == with_operand(TDX_OPERAND_INVALID, operand::R8));
  env.tables_for(kGpa + 0x200000, 0);
  REQUIRE(env.aug(kGpa + 0x200000, 0, big + 0x5000) == TDX_SUCCESS);
  CHECK(env.aug(kGpa, 1, big) == with_operand(TDX_PAGE_METADATA_INCORRECT, operand::R8));
}
