// The locks of a call the module refuses or interrupts. Every api_calls/*.c
// handler of intel/tdx-module (TDX_1.5.01) releases what it locked at its
// EXIT label, whatever it returns, so another LP's call that needs one of
// those locks meanwhile is TDX_OPERAND_BUSY with that lock's operand id:
// - tdh_phymem_cache_wb.c (tdh_phymem_cache_wb): the package's WBT mutex
//   (OPERAND_ID_WBCACHE) and the KOT shared are held through the sub-blocks
//   written back before TDX_INTERRUPTED_RESUMABLE;
// - tdh_mng_key_freeid.c (tdh_mng_key_freeid) takes the KOT exclusively
//   after the life-cycle check, before TDX_WBCACHE_NOT_COMPLETE;
// - tdh_mem_page_promote.c (tdh_mem_page_promote) tests the interrupt in
//   step 3, after is_sept_page_valid_for_merge locked and compared the 512
//   entries; tdh_mem_page_demote.c (tdh_mem_page_demote) with no L2 VM
//   tests it right after its checks, before pamt_demote.
// The model holds a call's locks for its charged cycles when it did its work
// (done, or interrupted after work), and for one trip into the module
// (latency.seam.mem_sept_rd, the floor of any SEAMCALL) when a check refused
// it (docs/design.md, "The TDX module").
#include <catch2/catch.hpp>

#include "tests/seam/module_status_codes.h"
#include "tests/seam/seam_env.h"

using namespace septsim;
using namespace septsim::seamtest;

namespace {

using namespace golden;

constexpr Code kInterruptedRestartable = 0x8000000400000000ull;
constexpr u32 kKot = 186, kWbcache = 188;  // OPERAND_ID_KOT, OPERAND_ID_WBCACHE

struct Call {
  Status status;
  Cycles charged;
};

// One call on LP `lp` (its initiator too) starting at `start`; env.now is left alone.
Call on_lp(SeamEnv& env, u32 lp, Leaf leaf, SeamcallRegs r, Cycles start, bool interrupt = false) {
  SeamcallTxn t;
  t.in = r;
  t.in.rax = leaf_rax(leaf);
  t.initiator = lp;
  t.lp = lp;
  t.host_interrupt = interrupt;
  t.start = start;
  const Cycles c = env.tdx.transport(t);
  return {t.out.rax, c};
}

SeamcallRegs rcx(u64 v) {
  SeamcallRegs r;
  r.rcx = v;
  return r;
}

SeamcallRegs mem(SeamEnv& env, Gpa gpa, int level, Hpa r8 = 0) {
  SeamcallRegs r;
  r.rcx = page_info(gpa, level), r.rdx = env.td.tdr, r.r8 = r8;
  return r;
}

// A TD whose HKID waits for CACHE.WB: its one vCPU flushed, VPFLUSHDONE done.
void teardown_to_cache_wb(SeamEnv& env) {
  REQUIRE(env.call(Leaf::TDH_VP_FLUSH, env.td.tdvpr[0]) == TDX_SUCCESS);
  REQUIRE(env.call(Leaf::TDH_MNG_VPFLUSHDONE, env.td.tdr) == TDX_SUCCESS);
}

Cycles latency(SeamEnv& env, Leaf l) { return env.tdx.timing().of(u16(l)); }
Cycles refusal_hold(SeamEnv& env) { return env.cfg.u("latency.seam.mem_sept_rd"); }

}  // namespace

TEST_CASE("an interrupted CACHE.WB holds the KOT and its package's WBT for its whole latency", "[seam]") {
  SeamEnv env(make_config(false), 1, true);
  teardown_to_cache_wb(env);
  const Cycles t0 = env.now + 1000;
  const Cycles wb = latency(env, Leaf::TDH_PHYMEM_CACHE_WB);
  const Call c = on_lp(env, 1, Leaf::TDH_PHYMEM_CACHE_WB, rcx(0), t0, true);
  REQUIRE(c.status == kInterruptedResumable);
  REQUIRE(c.charged == wb);
  // tdh_mng_vpflushdone.c: the KOT exclusively, before the life cycle.
  CHECK(on_lp(env, 4, Leaf::TDH_MNG_VPFLUSHDONE, rcx(env.td.tdr), t0 + 10).status == (kOperandBusy | kKot));
  // acquire_mutex_lock on the package's WBT entry.
  CHECK(on_lp(env, 3, Leaf::TDH_PHYMEM_CACHE_WB, rcx(1), t0 + wb / 2).status == (kOperandBusy | kWbcache));
  // Up to the last cycle of the interrupted call, then the KOT is free again
  // and KEY.FREEID reaches its WBINVD_BITMAP check.
  CHECK(on_lp(env, 2, Leaf::TDH_MNG_KEY_FREEID, rcx(env.td.tdr), t0 + wb - 1).status == (kOperandBusy | kKot));
  CHECK(on_lp(env, 2, Leaf::TDH_MNG_KEY_FREEID, rcx(env.td.tdr), t0 + wb).status == kWbcacheNotComplete);
  // The write-back resumes where it stopped and completes; KEY.FREEID then succeeds.
  CHECK(on_lp(env, 1, Leaf::TDH_PHYMEM_CACHE_WB, rcx(1), t0 + 2 * wb).status == TDX_SUCCESS);
  CHECK(on_lp(env, 2, Leaf::TDH_MNG_KEY_FREEID, rcx(env.td.tdr), t0 + 4 * wb).status == TDX_SUCCESS);
}

TEST_CASE("a refused call holds the locks it took before the failing check for one module round trip, not its charged cycles", "[seam]") {
  SeamEnv env(make_config(false), 1, true);
  teardown_to_cache_wb(env);
  const Cycles hold = refusal_hold(env);
  const Cycles freeid = latency(env, Leaf::TDH_MNG_KEY_FREEID);
  REQUIRE(freeid > hold);  // else the two windows below would be one
  const Cycles t0 = env.now + 1000;
  // KEY.FREEID before any CACHE.WB: TDR and KOT exclusive, then refused.
  const Call f = on_lp(env, 1, Leaf::TDH_MNG_KEY_FREEID, rcx(env.td.tdr), t0);
  REQUIRE(f.status == kWbcacheNotComplete);
  CHECK(f.charged == freeid);
  // CACHE.WB takes its WBT mutex, then the KOT shared: busy while the
  // refused KEY.FREEID holds it exclusively...
  CHECK(on_lp(env, 2, Leaf::TDH_PHYMEM_CACHE_WB, rcx(0), t0 + hold - 1).status == (kOperandBusy | kKot));
  // ...and not once its checks are over, though its caller is still charged.
  CHECK(on_lp(env, 2, Leaf::TDH_PHYMEM_CACHE_WB, rcx(0), t0 + hold).status == TDX_SUCCESS);
}

TEST_CASE("a BUSY call does not hold the lock it failed on", "[seam]") {
  SeamEnv env(make_config(false), 1, true);
  teardown_to_cache_wb(env);
  const Cycles t0 = env.now + 1000;
  const Cycles wb = latency(env, Leaf::TDH_PHYMEM_CACHE_WB);
  REQUIRE(on_lp(env, 1, Leaf::TDH_PHYMEM_CACHE_WB, rcx(0), t0, true).status == kInterruptedResumable);
  // LP 2's resume is BUSY on the WBT mutex LP 1 holds: it took nothing.
  REQUIRE(on_lp(env, 2, Leaf::TDH_PHYMEM_CACHE_WB, rcx(1), t0 + wb - 10).status == (kOperandBusy | kWbcache));
  // So once LP 1's call is over, LP 3's resume gets the mutex and completes.
  CHECK(on_lp(env, 3, Leaf::TDH_PHYMEM_CACHE_WB, rcx(1), t0 + wb).status == TDX_SUCCESS);
}

TEST_CASE("an interrupted PROMOTE holds the entries it compared for its whole latency, an interrupted DEMOTE only for its checks", "[seam]") {
  SeamEnv env;
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.tables_for(kGpa, 0);
  const Hpa big = env.mem.alloc(PG_LEVEL_2M) << kPageShift;
  REQUIRE(env.aug_512(kGpa, big) == 512);
  REQUIRE(env.block(kGpa, 1) == TDX_SUCCESS);
  REQUIRE(env.track() == TDX_SUCCESS);
  const Cycles hold = refusal_hold(env);
  const Cycles promote = latency(env, Leaf::TDH_MEM_PAGE_PROMOTE);
  REQUIRE(promote > hold + 10);

  const Cycles t0 = env.now + 1000;
  REQUIRE(on_lp(env, 1, Leaf::TDH_MEM_PAGE_PROMOTE, mem(env, kGpa, 1), t0, true).status == kInterruptedRestartable);
  // Past a refusal's hold, still inside the interrupted PROMOTE: the parent
  // entry (sept_lock_acquire_host, RCX) is still locked.
  CHECK(on_lp(env, 2, Leaf::TDH_MEM_PAGE_PROMOTE, mem(env, kGpa, 1), t0 + hold + 10).status == (kOperandBusy | kRcx));
  CHECK(on_lp(env, 2, Leaf::TDH_MEM_PAGE_PROMOTE, mem(env, kGpa, 1), t0 + promote).status == TDX_SUCCESS);

  env.now = t0 + 2 * promote;
  REQUIRE(env.block(kGpa, 1) == TDX_SUCCESS);
  REQUIRE(env.track() == TDX_SUCCESS);
  const Cycles t1 = env.now + 1000;
  REQUIRE(on_lp(env, 1, Leaf::TDH_MEM_PAGE_DEMOTE, mem(env, kGpa, 1, env.page()), t1, true).status ==
          kInterruptedRestartable);
  CHECK(on_lp(env, 2, Leaf::TDH_MEM_PAGE_DEMOTE, mem(env, kGpa, 1, env.page()), t1 + 10).status ==
        (kOperandBusy | kRcx));
  CHECK(on_lp(env, 2, Leaf::TDH_MEM_PAGE_DEMOTE, mem(env, kGpa, 1, env.page()), t1 + hold).status == TDX_SUCCESS);
}
