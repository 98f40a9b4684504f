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
  // Version 1 with allow_existing succeeds without consuming the page
  // (tdh_mem_sept_add.c, process_l1_page: R8 comes back with bit 63 set).
  SeamcallRegs r;
  const Hpa p = env.page();
  r.rcx = page_info(0, 3), r.rdx = env.td.tdr | 1, r.r8 = p, r.r9 = r.r10 = r.r11 = ~0ull;
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
  // async_tdexit_ept_violation (tdg_mem_page_accept.c): the vCPU left the TD.
  CHECK_FALSE(env.state().vcpus[0].in_guest);
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  CHECK(env.accept(0, kGpa, 1) == TDX_SUCCESS);
  CHECK(env.sept_state(kGpa, 1) == kMapped);
  CHECK(env.accept(0, kGpa + 0x3000, 0) == with_operand(TDX_PAGE_ALREADY_ACCEPTED, 1));
  env.tables_for(kGpa + 0x200000, 0);
  // check_tdaccept_failure: a non-leaf entry at the requested level; the
  // operand is the level the walk reached (1 = 2M).
  CHECK(env.accept(0, kGpa + 0x200000, 1) == with_operand(TDX_PAGE_SIZE_MISMATCH, 1));
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

// tdh_mem_sept_add.c (tdh_mem_sept_add, process_l1_page, process_l2_pages,
// add_l1_and_l2_pages): NULL_PA (all ones) in R8 asks for no page; R9-R11
// name L2 VMs' pages, which a TD without L2 VMs refuses unless NULL_PA; bit 63
// of a page operand is ignored; R8-R11 come back on every version-1 path.
TEST_CASE("SEPT.ADD version 1 takes NULL_PA for no page and needs R9-R11 NULL_PA without L2 VMs", "[seam]") {
  SeamEnv env;
  constexpr u64 kNull = ~0ull;
  auto v1 = [&](Gpa gpa, int level, u64 rdx, u64 r8, u64 r9, SeamcallRegs& r) {
    r = SeamcallRegs{};
    r.rcx = page_info(gpa, level), r.rdx = rdx, r.r8 = r8, r.r9 = r9, r.r10 = r.r11 = kNull;
    return env.call(Leaf::TDH_MEM_SEPT_ADD, r, 0, 1);
  };
  SeamcallRegs r;
  // No table yet: NULL_PA needs an existing one.
  CHECK(v1(0, 3, env.td.tdr, kNull, kNull, r) == with_operand(TDX_EPT_ENTRY_STATE_INCORRECT, operand::RCX));
  CHECK(r.r8 == kNull);
  // R9 = 0 is a page for L2 VM 1, which the TD does not have.
  const Hpa p = env.page();
  CHECK(v1(0, 3, env.td.tdr, p, 0, r) == with_operand(TDX_OPERAND_INVALID, operand::R9));
  CHECK(r.r8 == p);
  CHECK(r.r9 == 0);
  CHECK(env.sept_state(0, 3) == kFree);
  // Bit 63 of R8 is ignored; the page used comes back as NULL_PA.
  CHECK(v1(0, 3, env.td.tdr, p | (1ull << 63), kNull, r) == TDX_SUCCESS);
  CHECK(r.r8 == kNull);
  CHECK(env.sept_state(0, 3) == kNlMapped);
  // NULL_PA on an existing table: nothing to add, success.
  CHECK(v1(0, 3, env.td.tdr, kNull, kNull, r) == TDX_SUCCESS);
  CHECK(r.r8 == kNull);
  // Version 0: NULL_PA is an invalid R8, and allow_existing works there too.
  SeamcallRegs r0;
  r0.rcx = page_info(0, 3), r0.rdx = env.td.tdr, r0.r8 = kNull;
  CHECK(env.call(Leaf::TDH_MEM_SEPT_ADD, r0) == with_operand(TDX_OPERAND_INVALID, operand::R8));
  r0 = SeamcallRegs{};
  r0.rcx = page_info(0, 3), r0.rdx = env.td.tdr | 1, r0.r8 = env.page();
  CHECK(env.call(Leaf::TDH_MEM_SEPT_ADD, r0) == TDX_SUCCESS);
  // Reserved bits of the TD handle (11:1 and 63:52) are OPERAND_INVALID on RDX.
  CHECK(v1(0, 3, env.td.tdr | 2, kNull, kNull, r) == with_operand(TDX_OPERAND_INVALID, operand::RDX));
  CHECK(v1(0, 3, env.td.tdr | (1ull << 52), kNull, kNull, r) == with_operand(TDX_OPERAND_INVALID, operand::RDX));
}
