// PROMOTE, DEMOTE and RELOCATE (3.4).
#include <catch2/catch.hpp>

#include "tests/seam/seam_env.h"

using namespace septsim;
using namespace septsim::seamtest;

namespace {
// 512 MAPPED 4K pages of one 2M-aligned host page under the PDE of kGpa.
Status promote(SeamEnv& env, Gpa gpa, SeamcallRegs* out = nullptr) {
  return env.mem_op(Leaf::TDH_MEM_PAGE_PROMOTE, gpa, 1, 0, out);
}
Status demote(SeamEnv& env, Gpa gpa, int level = 1) {
  return env.mem_op(Leaf::TDH_MEM_PAGE_DEMOTE, gpa, level, env.page());
}
}  // namespace

TEST_CASE("PROMOTE merges 512 contiguous, aligned, equal children, DEMOTE splits them back", "[seam]") {
  SeamEnv env;
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.tables_for(kGpa, 0);
  const Hpa big = env.mem.alloc(PG_LEVEL_2M) << kPageShift;
  REQUIRE(env.aug_512(kGpa, big) == 512);
  CHECK(promote(env, kGpa) == with_operand(TDX_GPA_RANGE_NOT_BLOCKED, operand::RCX));
  REQUIRE(env.block(kGpa, 1) == TDX_SUCCESS);
  CHECK(promote(env, kGpa) == with_operand(TDX_TLB_TRACKING_NOT_DONE, operand::RCX));
  REQUIRE(env.track() == TDX_SUCCESS);
  const u64 pages = env.tdx.sept_pages();
  SeamcallRegs out;
  REQUIRE(promote(env, kGpa, &out) == TDX_SUCCESS);
  CHECK(env.sept_state(kGpa, 1) == kPending);  // all children PENDING, not blocked
  CHECK(env.tdx.sept_pages() == pages - 1);
  CHECK(env.tdx.pamt().get(out.rcx & septe::kHpaMask, PG_LEVEL_4K).pt == PageType::PT_NDA);
  CHECK(env.tdx.pamt().leaf_level(big) == PG_LEVEL_2M);
  CHECK(env.tdx.pamt().get(big + 0x3000, PG_LEVEL_4K).pt == PageType::PT_NDA);

  // DEMOTE at runtime: BLOCK -> TRACK -> DEMOTE.
  CHECK(demote(env, kGpa) == with_operand(TDX_GPA_RANGE_NOT_BLOCKED, operand::RCX));
  REQUIRE(env.block(kGpa, 1) == TDX_SUCCESS);
  CHECK(demote(env, kGpa) == with_operand(TDX_TLB_TRACKING_NOT_DONE, operand::RCX));
  REQUIRE(env.track() == TDX_SUCCESS);
  REQUIRE(demote(env, kGpa) == TDX_SUCCESS);
  CHECK(env.sept_state(kGpa, 1) == kNlMapped);
  CHECK(env.sept_state(kGpa + 0x5000, 0) == kPending);
  CHECK(env.tdx.pamt().get(big + 0x5000, PG_LEVEL_4K).pt == PageType::PT_REG);
  CHECK(env.tdx.pamt().leaf_level(big) == PG_LEVEL_4K);
}

TEST_CASE("PROMOTE refuses mixed states, non-contiguous or misaligned children", "[seam]") {
  SeamEnv env;  // INITIALIZED: no TT-gate, PAGE.ADD pages are MAPPED
  env.tables_for(kGpa, 0);
  const Hpa big = env.mem.alloc(PG_LEVEL_2M) << kPageShift;
  for (unsigned i = 0; i < 511; ++i) REQUIRE(env.aug(kGpa + i * kPageSize, 0, big + i * kPageSize) == TDX_SUCCESS);
  CHECK(promote(env, kGpa) == with_operand(TDX_EPT_INVALID_PROMOTE_CONDITIONS, operand::RCX));  // one FREE
  REQUIRE(env.aug(kGpa + 511 * kPageSize, 0, env.page()) == TDX_SUCCESS);                        // not contiguous
  CHECK(promote(env, kGpa) == with_operand(TDX_EPT_INVALID_PROMOTE_CONDITIONS, operand::RCX));

  const Gpa g2 = kGpa + 0x200000;
  env.tables_for(g2, 0);
  const Hpa big2 = env.mem.alloc(PG_LEVEL_2M) << kPageShift;
  REQUIRE(env.aug_512(g2, big2) == 512);
  REQUIRE(env.enter(0) == TDX_OP_STATE_INCORRECT);
  CHECK(promote(env, g2) == TDX_SUCCESS);  // pre-finalize: NL_MAPPED is promoted directly
  CHECK(env.sept_state(g2, 1) == kPending);
  CHECK(env.mem_op(Leaf::TDH_MEM_PAGE_PROMOTE, kGpa, 0) == with_operand(TDX_OPERAND_INVALID, operand::RCX));
}

TEST_CASE("DEMOTE refuses a table and needs a free SEPT page", "[seam]") {
  SeamEnv env;
  env.tables_for(kGpa, 0);
  CHECK(demote(env, kGpa) == with_operand(TDX_EPT_ENTRY_STATE_INCORRECT, operand::RCX));
  env.tables_for(kGpa + 0x200000, 1);
  REQUIRE(env.aug(kGpa + 0x200000, 1) == TDX_SUCCESS);
  CHECK(env.mem_op(Leaf::TDH_MEM_PAGE_DEMOTE, kGpa + 0x200000, 1, env.td.tdr) ==
        with_operand(TDX_PAGE_METADATA_INCORRECT, operand::R8));
  CHECK(demote(env, kGpa + 0x200000) == TDX_SUCCESS);
}

TEST_CASE("RELOCATE moves a blocked, tracked page and returns the old HPA", "[seam]") {
  SeamEnv env;
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.map_4k(kGpa);
  const Hpa old = septe::hpa_of(env.mem.read64(env.state().sept->walk(kGpa, 0).entry_hpa));
  CHECK(env.mem_op(Leaf::TDH_MEM_PAGE_RELOCATE, kGpa, 0, env.page()) ==
        with_operand(TDX_GPA_RANGE_NOT_BLOCKED, operand::RCX));
  REQUIRE(env.block(kGpa, 0) == TDX_SUCCESS);
  REQUIRE(env.track() == TDX_SUCCESS);
  const Hpa fresh = env.page();
  SeamcallRegs out;
  REQUIRE(env.mem_op(Leaf::TDH_MEM_PAGE_RELOCATE, kGpa, 0, fresh, &out) == TDX_SUCCESS);
  CHECK(out.rcx == old);
  CHECK(env.sept_state(kGpa, 0) == kMapped);
  CHECK(septe::hpa_of(env.mem.read64(env.state().sept->walk(kGpa, 0).entry_hpa)) == fresh);
  CHECK(env.tdx.pamt().get(old, PG_LEVEL_4K).pt == PageType::PT_NDA);
  CHECK(env.tdx.pamt().get(fresh, PG_LEVEL_4K).pt == PageType::PT_REG);
}
