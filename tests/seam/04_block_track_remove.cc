// BLOCK, TRACK, REMOVE, UNBLOCK, SEPT.REMOVE and the epoch protocol (3.4, 4).
#include <catch2/catch.hpp>

#include "tests/seam/seam_env.h"

using namespace septsim;
using namespace septsim::seamtest;

namespace {
SeamEnv& runnable_with_page(SeamEnv& env) {
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.map_4k(kGpa);
  return env;
}
}  // namespace

TEST_CASE("BLOCK -> TRACK -> every vCPU exits once -> REMOVE succeeds", "[seam]") {
  SeamEnv env;
  runnable_with_page(env);
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  REQUIRE(env.enter(1) == TDX_SUCCESS);
  REQUIRE(env.block(kGpa, 0) == TDX_SUCCESS);
  CHECK(env.sept_state(kGpa, 0) == kBlocked);
  const Hpa page = septe::hpa_of(env.mem.read64(env.state().sept->walk(kGpa, 0).entry_hpa));
  CHECK(env.tdx.pamt().get(page, PG_LEVEL_4K).bepoch == env.state().epochs.td_epoch);
  CHECK(env.remove(kGpa, 0) == with_operand(TDX_TLB_TRACKING_NOT_DONE, operand::RCX));
  REQUIRE(env.track() == TDX_SUCCESS);
  CHECK(env.remove(kGpa, 0) == with_operand(TDX_TLB_TRACKING_NOT_DONE, operand::RCX));  // vCPUs still in epoch N
  env.exit(0);
  CHECK(env.remove(kGpa, 0) == with_operand(TDX_TLB_TRACKING_NOT_DONE, operand::RCX));
  env.exit(1);
  SeamcallRegs out;
  const u64 before = env.state().chldcnt;
  REQUIRE(env.remove(kGpa, 0, &out) == TDX_SUCCESS);
  CHECK(out.rcx == page);
  CHECK(env.sept_state(kGpa, 0) == kFree);
  CHECK(env.state().chldcnt == before - 1);
  CHECK(env.tdx.pamt().get(page, PG_LEVEL_4K).pt == PageType::PT_NDA);
  CHECK(env.call(Leaf::TDH_PHYMEM_PAGE_WBINVD, keyed_hpa(page, 1)) == TDX_SUCCESS);
}

TEST_CASE("TRACK fails with PREVIOUS_TLB_EPOCH_BUSY while a vCPU runs in the previous epoch", "[seam]") {
  SeamEnv env;
  runnable_with_page(env);
  REQUIRE(env.enter(0) == TDX_SUCCESS);  // epoch 1
  REQUIRE(env.track() == TDX_SUCCESS);   // 1 -> 2: nobody in epoch 0
  CHECK(env.state().epochs.td_epoch == 2);
  CHECK(env.track() == TDX_PREVIOUS_TLB_EPOCH_BUSY);  // vCPU 0 still in epoch 1
  CHECK(env.state().epochs.td_epoch == 2);
  env.exit(0);
  CHECK(env.track() == TDX_SUCCESS);
  CHECK(env.state().epochs.td_epoch == 3);
}

TEST_CASE("VP.ENTER in a new epoch flushes the vCPU's translations", "[seam]") {
  SeamEnv env;
  runnable_with_page(env);  // vCPU 0 entered once (epoch 1)
  model::Counter flushes = env.stats.value("seam.epoch_flushes");
  REQUIRE(env.track() == TDX_SUCCESS);
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  CHECK(env.stats.value("seam.epoch_flushes") == flushes + 1);
  CHECK(env.state().vcpus[0].vcpu_epoch == 2);
  env.exit(0);
  REQUIRE(env.enter(0) == TDX_SUCCESS);  // same epoch: no flush
  CHECK(env.stats.value("seam.epoch_flushes") == flushes + 1);
}

TEST_CASE("REMOVE of an unblocked page at runtime is GPA_RANGE_NOT_BLOCKED, before finalize it succeeds", "[seam]") {
  SeamEnv env;
  env.tables_for(kGpa, 0);
  REQUIRE(env.add(kGpa) == TDX_SUCCESS);
  REQUIRE(env.add(kGpa + 0x1000) == TDX_SUCCESS);
  CHECK(env.remove(kGpa, 0) == TDX_SUCCESS);  // INITIALIZED: no TT-gate
  REQUIRE(env.finalize() == TDX_SUCCESS);
  CHECK(env.remove(kGpa + 0x1000, 0) == with_operand(TDX_GPA_RANGE_NOT_BLOCKED, operand::RCX));
  CHECK(env.remove(kGpa + 0x2000, 0) == with_operand(TDX_EPT_ENTRY_STATE_INCORRECT, operand::RCX));  // FREE
  CHECK(env.remove(kGpa, 1) == with_operand(TDX_EPT_ENTRY_STATE_INCORRECT, operand::RCX));  // NL_MAPPED
}

TEST_CASE("BLOCK twice is ALREADY_BLOCKED, BLOCK of FREE is STATE_INCORRECT", "[seam]") {
  SeamEnv env;
  runnable_with_page(env);
  REQUIRE(env.block(kGpa, 0) == TDX_SUCCESS);
  // tdh_mem_range_block.c: ALREADY_BLOCKED names RCX and returns the entry.
  SeamcallRegs out;
  CHECK(env.mem_op(Leaf::TDH_MEM_RANGE_BLOCK, kGpa, 0, 0, &out) ==
        with_operand(TDX_GPA_RANGE_ALREADY_BLOCKED, operand::RCX));
  CHECK(((out.rdx >> 8) & 0xff) == kBlocked);
  CHECK(env.block(kGpa + 0x1000, 0) == with_operand(TDX_EPT_ENTRY_STATE_INCORRECT, operand::RCX));
  CHECK(env.block(kGpa + 0x40000000, 1) == with_operand(TDX_EPT_WALK_FAILED, operand::RCX));
}

TEST_CASE("UNBLOCK needs tracking under the TT-gate and restores MAPPED / PENDING", "[seam]") {
  SeamEnv env;
  runnable_with_page(env);
  REQUIRE(env.aug(kGpa + 0x1000, 0) == TDX_SUCCESS);
  REQUIRE(env.block(kGpa, 0) == TDX_SUCCESS);
  REQUIRE(env.block(kGpa + 0x1000, 0) == TDX_SUCCESS);
  CHECK(env.sept_state(kGpa + 0x1000, 0) == kPendingBlocked);
  CHECK(env.unblock(kGpa, 0) == with_operand(TDX_TLB_TRACKING_NOT_DONE, operand::SEPT_TREE));
  CHECK(env.unblock(kGpa + 0x2000, 0) == with_operand(TDX_EPT_ENTRY_STATE_INCORRECT, operand::RCX));
  REQUIRE(env.track() == TDX_SUCCESS);
  CHECK(env.unblock(kGpa, 0) == TDX_SUCCESS);
  CHECK(env.unblock(kGpa + 0x1000, 0) == TDX_SUCCESS);
  CHECK(env.sept_state(kGpa, 0) == kMapped);
  CHECK(env.sept_state(kGpa + 0x1000, 0) == kPending);
}

TEST_CASE("SEPT.REMOVE needs a blocked, tracked table whose children are all FREE", "[seam]") {
  SeamEnv env;
  runnable_with_page(env);
  CHECK(env.mem_op(Leaf::TDH_MEM_SEPT_REMOVE, kGpa, 1) == with_operand(TDX_GPA_RANGE_NOT_BLOCKED, operand::RCX));
  REQUIRE(env.block(kGpa, 1) == TDX_SUCCESS);
  CHECK(env.sept_state(kGpa, 1) == kNlBlocked);
  CHECK(env.mem_op(Leaf::TDH_MEM_SEPT_REMOVE, kGpa, 1) == with_operand(TDX_TLB_TRACKING_NOT_DONE, operand::RCX));
  REQUIRE(env.track() == TDX_SUCCESS);
  CHECK(env.mem_op(Leaf::TDH_MEM_SEPT_REMOVE, kGpa, 1) == with_operand(TDX_EPT_PAGE_NOT_FREE, operand::RCX));
  // The 4K leaf under the blocked table cannot be reached by a walk.
  CHECK(env.remove(kGpa, 0) == with_operand(TDX_EPT_WALK_FAILED, operand::RCX));
  REQUIRE(env.unblock(kGpa, 1) == TDX_SUCCESS);
  REQUIRE(env.block(kGpa, 0) == TDX_SUCCESS);
  REQUIRE(env.track() == TDX_SUCCESS);
  REQUIRE(env.remove(kGpa, 0) == TDX_SUCCESS);
  REQUIRE(env.block(kGpa, 1) == TDX_SUCCESS);
  REQUIRE(env.track() == TDX_SUCCESS);
  const u64 pages = env.tdx.sept_pages();
  CHECK(env.mem_op(Leaf::TDH_MEM_SEPT_REMOVE, kGpa, 1) == TDX_SUCCESS);
  CHECK(env.sept_state(kGpa, 1) == kFree);
  CHECK(env.tdx.sept_pages() == pages - 1);
}

TEST_CASE("a blocked PENDING page can be removed after tracking", "[seam]") {
  SeamEnv env;
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.tables_for(kGpa, 0);
  REQUIRE(env.aug(kGpa, 0) == TDX_SUCCESS);
  REQUIRE(env.block(kGpa, 0) == TDX_SUCCESS);
  REQUIRE(env.track() == TDX_SUCCESS);
  CHECK(env.remove(kGpa, 0) == TDX_SUCCESS);
}
