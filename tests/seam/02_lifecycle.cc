// TD life cycle: creation sequence, finalize, teardown and reclaim (2.1, 3.4, 9).
#include <catch2/catch.hpp>

#include "tests/seam/seam_env.h"

using namespace septsim;
using namespace septsim::seamtest;

TEST_CASE("the creation sequence leaves the TD INITIALIZED with epoch 1 and its pages counted", "[seam]") {
  SeamEnv env(false, 2);
  const Td& t = env.state();
  CHECK(t.lifecycle == Lifecycle::TD_KEYS_CONFIGURED);
  CHECK(t.op_state == OpState::INITIALIZED);
  CHECK(t.epochs.td_epoch == 1);
  CHECK(t.sept->root() == t.tdcs[kSeptRootTdcsIndex]);
  // TDCS pages + per vCPU TDVPR + TDCX pages.
  CHECK(t.chldcnt == env.tdx.tdcs_pages() + 2 * (1 + env.tdx.tdcx_per_vcpu()));
  CHECK(env.tdx.pamt().get(env.td.tdr, PG_LEVEL_4K).pt == PageType::PT_TDR);
  CHECK(env.tdx.pamt().get(t.tdcs[0], PG_LEVEL_4K).pt == PageType::PT_TDCX);
  CHECK(env.tdx.pamt().get(env.td.tdvpr[0], PG_LEVEL_4K).pt == PageType::PT_TDVPR);
  // The SEPT root starts all FREE.
  CHECK(env.mem.read64(t.sept->root() + 8 * 17) == septe::kInitValue);
}

TEST_CASE("MR.FINALIZE makes the TD RUNNABLE once, and VP.ENTER needs RUNNABLE", "[seam]") {
  SeamEnv env;
  CHECK(env.enter(0) == TDX_OP_STATE_INCORRECT);
  CHECK(env.finalize() == TDX_SUCCESS);
  CHECK(env.state().op_state == OpState::RUNNABLE);
  CHECK(env.finalize() == TDX_OP_STATE_INCORRECT);
  CHECK(env.enter(0) == TDX_SUCCESS);
  CHECK(env.state().epochs.refcount[1] == 1);
}

TEST_CASE("KEY.CONFIG twice and ADDCX after MNG.INIT are refused", "[seam]") {
  SeamEnv env;
  CHECK(env.call(Leaf::TDH_MNG_KEY_CONFIG, env.td.tdr) == TDX_LIFECYCLE_STATE_INCORRECT);
  // tdh_mng_add_cx.c (tdh_mng_add_cx): every TDCS page is there, so the page
  // count is refused before OP_STATE is read: TDX_TDCX_NUM_INCORRECT = 0xC000061000000000.
  CHECK(env.call(Leaf::TDH_MNG_ADDCX, env.page(), env.td.tdr) == 0xC000061000000000ull);
  CHECK(env.call(Leaf::TDH_MNG_INIT, env.td.tdr) == TDX_OP_STATE_INCORRECT);
}

TEST_CASE("a memory leaf on an unknown TDR or before KEY.CONFIG is refused", "[seam]") {
  SeamEnv env(false, 1, false);
  CHECK(env.mem_op(Leaf::TDH_MEM_PAGE_AUG, kGpa, 0, env.page()) ==
        with_operand(TDX_PAGE_METADATA_INCORRECT, operand::RDX));
  const Hpa tdr = env.page();
  REQUIRE(env.call(Leaf::TDH_MNG_CREATE, tdr, 5) == TDX_SUCCESS);
  env.td.tdr = tdr;
  CHECK(env.mem_op(Leaf::TDH_MEM_PAGE_AUG, kGpa, 0, env.page()) == TDX_TD_KEYS_NOT_CONFIGURED);
  CHECK(env.call(Leaf::TDH_MNG_CREATE, tdr, 5) == with_operand(TDX_PAGE_METADATA_INCORRECT, operand::RCX));
}

TEST_CASE("MR.FINALIZE of a TD without vCPUs returns TDX_NO_VCPUS and changes nothing", "[seam]") {
  SeamEnv env(false, 0);
  // tdx_error_codes_defs.h (TDX module 1.5): TDX_NO_VCPUS = 0xC000060900000000.
  CHECK(env.finalize() == 0xC000060900000000ull);
  CHECK(status_string(TDX_NO_VCPUS) == "TDX_NO_VCPUS");
  CHECK(env.state().op_state == OpState::INITIALIZED);
  SeamcallRegs r;
  const Hpa tdvpr = env.page();
  r.rcx = tdvpr, r.rdx = env.td.tdr;
  REQUIRE(env.call(Leaf::TDH_VP_CREATE, r) == TDX_SUCCESS);
  // tdh_mr_finalize.c: NUM_VCPUS counts what VP.INIT initialized (tdh_vp_init.c).
  CHECK(env.finalize() == 0xC000060900000000ull);
  for (unsigned i = 0; i < env.tdx.tdcx_per_vcpu(); ++i)
    REQUIRE(env.call(Leaf::TDH_VP_ADDCX, env.page(), tdvpr) == TDX_SUCCESS);
  REQUIRE(env.call(Leaf::TDH_VP_INIT, tdvpr) == TDX_SUCCESS);
  CHECK(env.finalize() == TDX_SUCCESS);
}

TEST_CASE("TD leaves before every TDCS page is added return TDX_TDCS_NOT_ALLOCATED", "[seam]") {
  SeamEnv env(false, 1, false);
  const Hpa tdr = env.page();
  REQUIRE(env.call(Leaf::TDH_MNG_CREATE, tdr, 5) == TDX_SUCCESS);
  REQUIRE(env.call(Leaf::TDH_MNG_KEY_CONFIG, tdr) == TDX_SUCCESS);
  env.td.tdr = tdr;
  for (unsigned i = 0; i + 1 < env.tdx.tdcs_pages(); ++i)
    REQUIRE(env.call(Leaf::TDH_MNG_ADDCX, env.page(), tdr) == TDX_SUCCESS);
  // tdx_error_codes_defs.h (TDX module 1.5): TDX_TDCS_NOT_ALLOCATED = 0xC000060600000000.
  CHECK(env.call(Leaf::TDH_MNG_INIT, tdr) == 0xC000060600000000ull);
  CHECK(env.call(Leaf::TDH_VP_CREATE, env.page(), tdr) == TDX_TDCS_NOT_ALLOCATED);
  CHECK(env.mem_op(Leaf::TDH_MEM_SEPT_ADD, 0, 3, env.page()) == TDX_TDCS_NOT_ALLOCATED);
  CHECK(env.track() == TDX_TDCS_NOT_ALLOCATED);
  CHECK(env.finalize() == TDX_TDCS_NOT_ALLOCATED);
  REQUIRE(env.call(Leaf::TDH_MNG_ADDCX, env.page(), tdr) == TDX_SUCCESS);
  CHECK(env.track() == TDX_OP_STATE_INCORRECT);  // all TDCS pages, but not MNG.INIT yet
}

TEST_CASE("RECLAIM works only in TEARDOWN and the TDR goes last", "[seam]") {
  SeamEnv env(false, 1);
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.map_4k(kGpa);
  const Hpa data = septe::hpa_of(env.mem.read64(env.state().sept->walk(kGpa, 0).entry_hpa));
  CHECK(env.call(Leaf::TDH_PHYMEM_PAGE_RECLAIM, data) == TDX_LIFECYCLE_STATE_INCORRECT);

  // vCPU 0 ran, so it is associated with an LP until VP.FLUSH
  // (1.5 tdx_error_codes_defs.h: TDX_FLUSHVP_NOT_DONE = 0x8000082400000000).
  CHECK(env.call(Leaf::TDH_MNG_VPFLUSHDONE, env.td.tdr) == 0x8000082400000000ull);
  CHECK(env.state().lifecycle == Lifecycle::TD_KEYS_CONFIGURED);
  REQUIRE(env.call(Leaf::TDH_VP_FLUSH, env.td.tdvpr[0]) == TDX_SUCCESS);
  REQUIRE(env.call(Leaf::TDH_MNG_VPFLUSHDONE, env.td.tdr) == TDX_SUCCESS);
  CHECK(env.state().lifecycle == Lifecycle::TD_BLOCKED);
  REQUIRE(env.call(Leaf::TDH_PHYMEM_CACHE_WB, 0) == TDX_SUCCESS);
  CHECK(env.call(Leaf::TDH_PHYMEM_PAGE_RECLAIM, data) == TDX_LIFECYCLE_STATE_INCORRECT);
  REQUIRE(env.call(Leaf::TDH_MNG_KEY_FREEID, env.td.tdr) == TDX_SUCCESS);
  CHECK(env.state().lifecycle == Lifecycle::TD_TEARDOWN);

  CHECK(env.call(Leaf::TDH_PHYMEM_PAGE_RECLAIM, env.td.tdr) == TDX_TD_ASSOCIATED_PAGES_EXIST);
  SeamcallRegs r;
  r.rcx = data;
  REQUIRE(env.call(Leaf::TDH_PHYMEM_PAGE_RECLAIM, r) == TDX_SUCCESS);
  CHECK(r.rcx == u64(PageType::PT_REG));
  CHECK(r.rdx == env.td.tdr);
  CHECK(env.call(Leaf::TDH_PHYMEM_PAGE_RECLAIM, data) == with_operand(TDX_PAGE_METADATA_INCORRECT, operand::RCX));
  CHECK(env.call(Leaf::TDH_PHYMEM_PAGE_WBINVD, keyed_hpa(data, 1)) == TDX_SUCCESS);

  // Every other page the TD owns: SEPT pages, TDCS, TDVPR, TDCX.
  for (u64 pfn = 1; pfn < env.mem.limit_frames() && env.state().chldcnt; ++pfn) {
    const Hpa hpa = pfn << kPageShift;
    const PamtEntry e = env.tdx.pamt().get(hpa, PG_LEVEL_4K);
    if (e.pt != PageType::PT_NDA && e.pt != PageType::PT_TDR && e.owner == env.td.tdr)
      REQUIRE(env.call(Leaf::TDH_PHYMEM_PAGE_RECLAIM, hpa) == TDX_SUCCESS);
  }
  CHECK(env.state().chldcnt == 0);
  // tdh_mng_create.c leaves the TDR's PAMT owner 0, and
  // tdh_phymem_page_reclaim.c returns get_pamt_entry_owner in RDX.
  SeamcallRegs tdr;
  tdr.rcx = env.td.tdr;
  tdr.rdx = 0x1234000;
  CHECK(env.call(Leaf::TDH_PHYMEM_PAGE_RECLAIM, tdr) == TDX_SUCCESS);
  CHECK(tdr.rcx == u64(PageType::PT_TDR));
  CHECK(tdr.rdx == 0);
  CHECK(env.tdx.td(env.td.tdr) == nullptr);
}

TEST_CASE("RDMD of a TDR page names no owner: the module's TDR PAMT entry has owner 0", "[seam]") {
  // tdh_mng_create.c: tdr_pamt_entry_ptr->owner = 0; tdh_phymem_page_rdmd.c:
  // RCX = page type, RDX = get_pamt_entry_owner (owner << 12).
  SeamEnv env;
  SeamcallRegs r;
  r.rcx = env.td.tdr;
  r.rdx = 0x1234000;
  REQUIRE(env.call(Leaf::TDH_PHYMEM_PAGE_RDMD, r) == TDX_SUCCESS);
  CHECK(r.rcx == u64(PageType::PT_TDR));
  CHECK(r.rdx == 0);
  SeamcallRegs tdcs;
  tdcs.rcx = env.state().tdcs[0];
  REQUIRE(env.call(Leaf::TDH_PHYMEM_PAGE_RDMD, tdcs) == TDX_SUCCESS);
  CHECK(tdcs.rdx == env.td.tdr);
}

TEST_CASE("a version the leaf does not take is OPERAND_INVALID on RAX", "[seam]") {
  SeamEnv env;
  SeamcallRegs r;
  r.rcx = env.td.tdr;
  CHECK(env.call(Leaf::TDH_MEM_TRACK, r, 0, 1) == with_operand(TDX_OPERAND_INVALID, operand::RAX));
}
