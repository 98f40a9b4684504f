// A 2M TDG.MEM.PAGE.ACCEPT a pending host interrupt stops part way
// (intel/tdx-module TDX 1.5, src/td_dispatcher/vm_exits/tdg_mem_page_accept.c,
// tdg_mem_page_accept; src/td_dispatcher/tdx_td_dispatcher.c, td_call). The
// PENDING 2M entry counts the 4K chunks zeroed so far in bits 20:12
// (x86_defs.h, accept_counter); after each chunk but the last the module
// looks for a pending interrupt and, if there is one, writes the count back
// and returns to the guest without touching RAX or RIP, so the guest runs the
// same TDCALL again after the interrupt's exit.
#include <catch2/catch.hpp>

#include "tests/seam/seam_env.h"

using namespace septsim;
using namespace septsim::seamtest;

namespace {

constexpr u64 kAcceptLeaf = 6;            // TDG_MEM_PAGE_ACCEPT_LEAF (tdx_api_defs.h)
constexpr u64 kCounterBits = 0x1FF000;    // accept_counter: bits 20:12 of the SEPT entry
constexpr unsigned k4kIn2m = 512;         // NUM_OF_4K_PAGES_IN_2MB
constexpr Gpa k2m = kGpa + 0x200000;

struct Accept {
  Status status;
  Cycles cycles;
};

Accept accept_2m(SeamEnv& env, bool interrupt, unsigned vcpu = 0) {
  SeamcallTxn t;
  t.in.rax = kAcceptLeaf;
  t.in.rcx = page_info(k2m, 1);
  t.tdcall = true;
  t.tdvpr = env.td.tdvpr.at(vcpu);
  t.initiator = 100 + vcpu;
  t.host_interrupt = interrupt;
  t.start = env.now;
  const Cycles c = env.tdx.transport(t);
  env.now += c;
  return {t.out.rax, c};
}

// SEPT.RD's RCX: the entry as the module shows it (set_arch_septe_details_in_
// vmm_regs keeps the HPA bits, the count among them).
u64 sept_rd_rcx(SeamEnv& env, Gpa gpa, int level) {
  SeamcallRegs out;
  REQUIRE(env.mem_op(Leaf::TDH_MEM_SEPT_RD, gpa, level, 0, &out) == TDX_SUCCESS);
  return out.rcx;
}

// A TD past MR.FINALIZE with a PENDING 2M page at k2m whose 4K chunks carry
// non-zero content tags; returns its HPA.
Hpa pending_2m(SeamEnv& env) {
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.tables_for(k2m, 1);
  const Hpa hpa = env.page(PG_LEVEL_2M);
  for (unsigned i = 0; i < k4kIn2m; ++i) env.mem.set_tag((hpa >> kPageShift) + i, 0xAB);
  REQUIRE(env.aug(k2m, 1, hpa) == TDX_SUCCESS);
  return hpa;
}

u64 tag(SeamEnv& env, Hpa hpa, unsigned chunk) { return env.mem.tag((hpa >> kPageShift) + chunk); }

}  // namespace

TEST_CASE("an interrupted 2M ACCEPT zeroes one 4K chunk, counts it in the entry and exits to the VMM", "[seam]") {
  SeamEnv env(false, 1);
  const Hpa hpa = pending_2m(env);
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  const Accept a = accept_2m(env, true);
  CHECK(a.status == SEPTSIM_TD_EXIT_INTERRUPT);
  CHECK(!env.tdx.td(env.td.tdr)->vcpus[0].in_guest);  // the interrupt's exit
  CHECK(env.sept_state(k2m, 1) == kPending);
  CHECK((sept_rd_rcx(env, k2m, 1) & kCounterBits) == u64{1} << 12);
  CHECK(tag(env, hpa, 0) == 0);     // init_sept_4k_page on chunk 0
  CHECK(tag(env, hpa, 1) == 0xAB);  // not reached yet
  // The guest runs the TDCALL again after VP.ENTER: chunk 1, count 2.
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  CHECK(accept_2m(env, true).status == SEPTSIM_TD_EXIT_INTERRUPT);
  CHECK((sept_rd_rcx(env, k2m, 1) & kCounterBits) == u64{2} << 12);
  CHECK(tag(env, hpa, 1) == 0);
  CHECK(tag(env, hpa, 2) == 0xAB);
  // Without the interrupt it finishes from chunk 2: MAPPED, the count back to 0.
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  CHECK(accept_2m(env, false).status == TDX_SUCCESS);
  CHECK(env.sept_state(k2m, 1) == kMapped);
  CHECK((sept_rd_rcx(env, k2m, 1) & kCounterBits) == 0);
  CHECK(tag(env, hpa, 511) == 0);
  CHECK(env.tdx.td(env.td.tdr)->vcpus[0].in_guest);
}

TEST_CASE("the last 4K chunk of a 2M ACCEPT completes it even with an interrupt pending", "[seam]") {
  SeamEnv env(false, 1);
  pending_2m(env);
  for (unsigned i = 0; i < k4kIn2m - 1; ++i) {
    REQUIRE(env.enter(0) == TDX_SUCCESS);
    REQUIRE(accept_2m(env, true).status == SEPTSIM_TD_EXIT_INTERRUPT);
  }
  CHECK((sept_rd_rcx(env, k2m, 1) & kCounterBits) == u64{511} << 12);
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  // accept_counter == NUM_OF_4K_PAGES_IN_2MB - 1: done before the interrupt check.
  CHECK(accept_2m(env, true).status == TDX_SUCCESS);
  CHECK(env.sept_state(k2m, 1) == kMapped);
}

TEST_CASE("an interrupted 2M ACCEPT costs one 4K chunk and the exit, less than a whole 2M ACCEPT", "[seam]") {
  SeamEnv env(false, 1);
  pending_2m(env);
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  const Accept part = accept_2m(env, true);
  CHECK(part.status == SEPTSIM_TD_EXIT_INTERRUPT);
  // One chunk: the 4K latency (the interpolation's lower end) plus the exit.
  CHECK(part.cycles == env.tdx.timing().accept_4k + env.tdx.timing().td_exit);
  CHECK(part.cycles < env.tdx.timing().accept_2m);
}

// tdh_mem_range_block.c (block_sept_entry -> sept_cleanup_if_pending): a
// PENDING 2M leaf loses its count when blocked, so acceptance after UNBLOCK
// starts again from chunk 0.
TEST_CASE("BLOCK of a partly accepted 2M page clears its accept count", "[seam]") {
  SeamEnv env(false, 1);
  pending_2m(env);
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  REQUIRE(accept_2m(env, true).status == SEPTSIM_TD_EXIT_INTERRUPT);
  REQUIRE((sept_rd_rcx(env, k2m, 1) & kCounterBits) != 0);
  REQUIRE(env.block(k2m, 1) == TDX_SUCCESS);
  CHECK(env.sept_state(k2m, 1) == kPendingBlocked);
  CHECK((sept_rd_rcx(env, k2m, 1) & kCounterBits) == 0);
}

// tdh_mem_page_promote.c (is_sept_page_valid_for_merge): each 2M child's copy
// is cleaned of its count before the stride comparison, so a 1G PROMOTE over
// a partly accepted PENDING 2M child is not refused for it.
TEST_CASE("a 1G PROMOTE ignores the accept count of a PENDING 2M child", "[seam]") {
  SeamEnv env(false, 1);
  REQUIRE(env.state().sept->top_level() >= 3);
  // Before MR.FINALIZE nothing needs BLOCK/TRACK; 512 PENDING 2M leaves need
  // AUG, which needs RUNNABLE, so finalize and use the TT-gate's order.
  REQUIRE(env.finalize() == TDX_SUCCESS);
  const Gpa g1 = 0x80000000;  // 2 GiB: a 1G-aligned private GPA
  env.tables_for(g1, 1);
  const Hpa base = env.mem.alloc(PG_LEVEL_1G) << kPageShift;
  for (unsigned i = 0; i < k4kIn2m; ++i) REQUIRE(env.aug(g1 + i * 0x200000ull, 1, base + i * 0x200000ull) == TDX_SUCCESS);
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  SeamcallTxn t;
  t.in.rax = kAcceptLeaf;
  t.in.rcx = page_info(g1 + 0x200000, 1);
  t.tdcall = true;
  t.tdvpr = env.td.tdvpr[0];
  t.initiator = 100;
  t.host_interrupt = true;
  t.start = env.now;
  env.now += env.tdx.transport(t);
  REQUIRE(t.out.rax == SEPTSIM_TD_EXIT_INTERRUPT);
  REQUIRE((sept_rd_rcx(env, g1 + 0x200000, 1) & kCounterBits) == u64{1} << 12);
  // The TT-gate: BLOCK the 1G range's table, TRACK, no vCPU inside.
  REQUIRE(env.block(g1, 2) == TDX_SUCCESS);
  REQUIRE(env.track() == TDX_SUCCESS);
  CHECK(env.mem_op(Leaf::TDH_MEM_PAGE_PROMOTE, g1, 2) == TDX_SUCCESS);
  CHECK(env.sept_state(g1, 2) == kPending);
}
