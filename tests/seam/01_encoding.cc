// Golden values from the TDX module source (include/auto_gen): leaf numbers, status codes and operand ids,
// SEPT state encodings, the 3.3 state table, the op-state gate, PAMT sizes.
#include <catch2/catch.hpp>
#include <set>
#include <utility>

#include "seam/op_state.h"
#include "seam/pamt.h"
#include "seam/sept_state_table.h"
#include "seam/tdx_leaf.h"
#include "seam/tdx_status.h"

using namespace septsim;
using namespace septsim::seam;
using septe::SeptState;

TEST_CASE("leaf numbers and names are those of section 2", "[seam]") {
  CHECK(u16(Leaf::TDH_MEM_PAGE_ADD) == 2);
  CHECK(u16(Leaf::TDH_MEM_SEPT_ADD) == 3);
  CHECK(u16(Leaf::TDH_MEM_PAGE_RELOCATE) == 5);
  CHECK(u16(Leaf::TDH_MEM_PAGE_AUG) == 6);
  CHECK(u16(Leaf::TDH_MEM_RANGE_BLOCK) == 7);
  CHECK(u16(Leaf::TDH_MEM_PAGE_DEMOTE) == 15);
  CHECK(u16(Leaf::TDH_MEM_PAGE_PROMOTE) == 23);
  CHECK(u16(Leaf::TDH_MEM_SEPT_RD) == 25);
  CHECK(u16(Leaf::TDH_PHYMEM_PAGE_RECLAIM) == 28);
  CHECK(u16(Leaf::TDH_MEM_PAGE_REMOVE) == 29);
  CHECK(u16(Leaf::TDH_MEM_SEPT_REMOVE) == 30);
  CHECK(u16(Leaf::TDH_MEM_TRACK) == 38);
  CHECK(u16(Leaf::TDH_MEM_RANGE_UNBLOCK) == 39);
  CHECK(u16(Leaf::TDH_PHYMEM_PAMT_ADD) == 58);
  CHECK(u16(Leaf::TDH_PHYMEM_PAMT_REMOVE) == 59);
  CHECK(u16(Leaf::TDH_MNG_CREATE) == 9);
  CHECK(u16(Leaf::TDH_MNG_ADDCX) == 1);
  CHECK(u16(Leaf::TDH_MNG_INIT) == 21);
  CHECK(u16(TdcallLeaf::TDG_MEM_PAGE_ACCEPT) == 6);
  CHECK(leaf_by_name("TDH.MEM.PAGE.AUG") == Leaf::TDH_MEM_PAGE_AUG);
  CHECK(std::string(leaf_name(38)) == "TDH.MEM.TRACK");
  CHECK(!leaf_by_name("TDH.MEM.PAGE.AUGX"));
  CHECK(leaf_rax(Leaf::TDH_MEM_SEPT_ADD, 1) == 0x10003);
}

TEST_CASE("status codes and operand ids carry the module's 64-bit values", "[seam]") {
  CHECK(TDX_OPERAND_BUSY == 0x8000020000000000ull);
  CHECK(TDX_PREVIOUS_TLB_EPOCH_BUSY == 0x8000020100000000ull);
  CHECK(TDX_TLB_TRACKING_NOT_DONE == 0xC0000B0800000000ull);
  CHECK(TDX_GPA_RANGE_ALREADY_BLOCKED == 0x00000B0700000000ull);
  CHECK(TDX_EPT_ENTRY_STATE_INCORRECT == 0xC0000B0D00000000ull);
  CHECK(TDX_MISSING_PAMT_PAGE_PAIR == 0x8000030800000000ull);
  CHECK(TDX_TD_KEYS_NOT_CONFIGURED == 0x8000081000000000ull);
  CHECK(with_operand(TDX_OPERAND_BUSY, operand::SEPT_TREE) == 0x8000020000000092ull);
  CHECK(with_operand(TDX_OPERAND_BUSY, operand::TD_EPOCH) == 0x80000200000000A9ull);
  CHECK(with_operand(TDX_OPERAND_BUSY, operand::OP_STATE) == 0x80000200000000ACull);
  CHECK(with_operand(TDX_PAGE_METADATA_INCORRECT, operand::R8) == 0xC000030000000008ull);
  CHECK(!is_error(TDX_GPA_RANGE_ALREADY_BLOCKED));
  CHECK(is_error(TDX_EPT_WALK_FAILED));
  CHECK(status_string(0x8000020000000092ull) == "TDX_OPERAND_BUSY|SEPT_TREE(146)");
  CHECK(status_string(TDX_SUCCESS) == "TDX_SUCCESS");

  Status v;
  bool exact;
  REQUIRE(parse_status("TDX_OPERAND_BUSY", v, exact));
  CHECK((v == TDX_OPERAND_BUSY && !exact));
  REQUIRE(parse_status("0x8000020000000092", v, exact));
  CHECK((v == 0x8000020000000092ull && exact));
  CHECK(status_matches(0x8000020000000092ull, TDX_OPERAND_BUSY, false));
  CHECK(!status_matches(0x8000020000000001ull, 0x8000020000000092ull, true));
  CHECK(!parse_status("TDX_NOPE", v, exact));
}

TEST_CASE("an expected status written as NAME|OPERAND is the exact code with that operand id", "[seam]") {
  Status v = 0;
  bool exact = false;
  REQUIRE(parse_status("TDX_OPERAND_BUSY|SEPT_TREE", v, exact));
  CHECK((v == 0x8000020000000092ull && exact));
  REQUIRE(parse_status("TDX_OPERAND_INVALID|RCX(1)", v, exact));
  CHECK((v == 0xC000010000000001ull && exact));
  // status_string prints the same form, so a printed status parses back.
  REQUIRE(parse_status(status_string(0xC0000B08000000A9ull), v, exact));
  CHECK(v == 0xC0000B08000000A9ull);
  CHECK(!parse_status("TDX_OPERAND_BUSY|NOPE", v, exact));
}

TEST_CASE("SEPT state encodings and public numbers are those of section 3.2", "[seam]") {
  const std::pair<SeptState, u8> enc[] = {
      {SeptState::FREE, 0x0E},   {SeptState::REMOVED, 0x0C},         {SeptState::NL_MAPPED, 0x00},
      {SeptState::NL_BLOCKED, 0x08}, {SeptState::MAPPED, 0x60},      {SeptState::BLOCKED, 0x68},
      {SeptState::PENDING, 0x70}, {SeptState::PENDING_BLOCKED, 0x78}, {SeptState::PENDING_EXPORTED_DIRTY, 0x73}};
  for (auto [s, e] : enc) CHECK(septe::encoding(s) == e);
  CHECK(septe::public_state(SeptState::NL_MAPPED) == 132);
  CHECK(septe::public_state(SeptState::NL_BLOCKED) == 129);
  CHECK(septe::public_state(SeptState::PENDING_BLOCKED) == 3);
  CHECK(septe::public_state(SeptState::EXPORTED_DIRTY_BLOCKEDW) == 12);
  CHECK(septe::kInitValue == 0x80E0000000000000ull);  // TDB|TDBW|TDEX|SVE
  for (unsigned i = 0; i < septe::kNumStates; ++i) {
    SeptState got;
    REQUIRE(septe::state_of(septe::kStateEntryBits[i] | septe::kSve | 0x1000, got));
    CHECK(got == SeptState(i));
  }
}

TEST_CASE("the SEPT state table equals section 3.3", "[seam]") {
  using S = SeptState;
  const std::set<std::pair<Leaf, S>> allowed = {
      {Leaf::TDH_MEM_PAGE_ADD, S::FREE},
      {Leaf::TDH_MEM_SEPT_ADD, S::FREE}, {Leaf::TDH_MEM_SEPT_ADD, S::NL_MAPPED},
      {Leaf::TDH_MEM_PAGE_AUG, S::FREE}, {Leaf::TDH_MEM_PAGE_AUG, S::REMOVED},
      {Leaf::TDH_MEM_RANGE_BLOCK, S::NL_MAPPED}, {Leaf::TDH_MEM_RANGE_BLOCK, S::MAPPED},
      {Leaf::TDH_MEM_RANGE_BLOCK, S::BLOCKEDW}, {Leaf::TDH_MEM_RANGE_BLOCK, S::PENDING},
      {Leaf::TDH_MEM_RANGE_BLOCK, S::PENDING_BLOCKEDW},
      {Leaf::TDH_MEM_PAGE_DEMOTE, S::MAPPED}, {Leaf::TDH_MEM_PAGE_DEMOTE, S::BLOCKED},
      {Leaf::TDH_MEM_PAGE_DEMOTE, S::PENDING}, {Leaf::TDH_MEM_PAGE_DEMOTE, S::PENDING_BLOCKED},
      {Leaf::TDH_MR_EXTEND, S::MAPPED},
      {Leaf::TDH_MEM_PAGE_PROMOTE, S::NL_MAPPED}, {Leaf::TDH_MEM_PAGE_PROMOTE, S::NL_BLOCKED},
      {Leaf::TDH_MEM_PAGE_REMOVE, S::MAPPED}, {Leaf::TDH_MEM_PAGE_REMOVE, S::BLOCKED},
      {Leaf::TDH_MEM_PAGE_REMOVE, S::BLOCKEDW}, {Leaf::TDH_MEM_PAGE_REMOVE, S::PENDING},
      {Leaf::TDH_MEM_PAGE_REMOVE, S::PENDING_BLOCKED}, {Leaf::TDH_MEM_PAGE_REMOVE, S::PENDING_BLOCKEDW},
      {Leaf::TDH_MEM_SEPT_REMOVE, S::NL_MAPPED}, {Leaf::TDH_MEM_SEPT_REMOVE, S::NL_BLOCKED},
      {Leaf::TDH_MEM_RANGE_UNBLOCK, S::NL_BLOCKED}, {Leaf::TDH_MEM_RANGE_UNBLOCK, S::BLOCKED},
      {Leaf::TDH_MEM_RANGE_UNBLOCK, S::PENDING_BLOCKED},
  };
  const Leaf leaves[] = {Leaf::TDH_MEM_PAGE_ADD,    Leaf::TDH_MEM_SEPT_ADD,    Leaf::TDH_MEM_PAGE_AUG,
                         Leaf::TDH_MEM_RANGE_BLOCK, Leaf::TDH_MEM_PAGE_DEMOTE, Leaf::TDH_MR_EXTEND,
                         Leaf::TDH_MEM_PAGE_PROMOTE, Leaf::TDH_MEM_PAGE_REMOVE, Leaf::TDH_MEM_SEPT_REMOVE,
                         Leaf::TDH_MEM_RANGE_UNBLOCK};
  for (Leaf l : leaves)
    for (unsigned i = 0; i < septe::kNumStates; ++i) {
      INFO(leaf_name(u16(l)) << " state " << i);
      CHECK(sept_state_allowed(l, S(i)) == (allowed.count({l, S(i)}) != 0));
    }
  for (unsigned i = 0; i < septe::kNumStates; ++i) {
    CHECK(sept_state_allowed(Leaf::TDH_MEM_SEPT_RD, S(i)));
    CHECK(sept_state_allowed(Leaf::TDH_MEM_PAGE_RELOCATE, S(i)) == (i >= unsigned(S::MAPPED)));
    CHECK(tdcall_sept_state_allowed(TdcallLeaf::TDG_MEM_PAGE_ACCEPT, S(i)) ==
          (S(i) == S::PENDING || S(i) == S::PENDING_EXPORTED_DIRTY));
  }
}

TEST_CASE("the op-state gate follows section 2.1", "[seam]") {
  CHECK(op_state_allowed(Leaf::TDH_MEM_PAGE_AUG, OpState::INITIALIZED));  // AUG before finalize is allowed
  CHECK(op_state_allowed(Leaf::TDH_MEM_PAGE_AUG, OpState::RUNNABLE));
  CHECK(!op_state_allowed(Leaf::TDH_MEM_PAGE_ADD, OpState::RUNNABLE));
  CHECK(!op_state_allowed(Leaf::TDH_MEM_TRACK, OpState::UNINITIALIZED));
  CHECK(!op_state_allowed(Leaf::TDH_MEM_TRACK, OpState::FAILED_IMPORT));
  CHECK(op_state_allowed(Leaf::TDH_MEM_SEPT_REMOVE, OpState::FAILED_IMPORT));
  CHECK(op_state_needs_tracking(OpState::RUNNABLE));
  CHECK(!op_state_needs_tracking(OpState::INITIALIZED));
}

TEST_CASE("static PAMT costs about 4.008 MiB per GiB, dynamic about 40 KiB", "[seam]") {
  const u64 st = Pamt::static_bytes_per_gib(false);
  CHECK(st == 4 * 1048576 + 8192 + 16);
  CHECK(double(st) / 1048576.0 == Approx(4.008).epsilon(0.001));
  CHECK(Pamt::static_bytes_per_gib(true) == 32768 + 8192 + 16);
  Pamt p(16ull << 30, false);
  CHECK(p.bytes() == 16 * st);
}
