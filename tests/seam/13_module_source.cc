// Statuses and operand ids checked against the TDX module 1.5 sources
// (intel/tdx-module, src/vmm_dispatcher/api_calls/*.c, src/common/helpers/
// helpers.c, include/auto_gen/tdx_error_codes_defs.h). Each test names the
// file and function whose order it follows; the expected values are the
// header's constants plus the operand id the source adds.
#include <catch2/catch.hpp>

#include "tests/seam/module_status_codes.h"
#include "tests/seam/seam_env.h"

using namespace septsim;
using namespace septsim::seamtest;

namespace {

using namespace golden;  // tdx_error_codes_defs.h (1.5)

Hpa hpa_at(SeamEnv& env, Gpa gpa, int level) {
  return septe::hpa_of(env.mem.read64(env.state().sept->walk(gpa, level).entry_hpa));
}

}  // namespace

// tdh_phymem_cache_wb.c (tdh_phymem_cache_wb), tdh_mng_vpflushdone.c,
// tdh_mng_key_freeid.c (tdh_mng_key_freeid).
TEST_CASE("CACHE.WB needs an HKID VPFLUSHDONE left waiting, and KEY.FREEID waits for CACHE.WB", "[seam]") {
  SeamEnv env(false, 1);
  CHECK(env.call(Leaf::TDH_PHYMEM_CACHE_WB, 2) == kOperandInvalid + kRcx);  // neither start nor resume
  CHECK(env.call(Leaf::TDH_PHYMEM_CACHE_WB, 0) == kNoHkidReadyToWbcache);
  CHECK(env.call(Leaf::TDH_PHYMEM_CACHE_WB, 1) == kWbcacheResumeError);  // nothing interrupted to resume
  REQUIRE(env.call(Leaf::TDH_VP_FLUSH, env.td.tdvpr[0]) == TDX_SUCCESS);
  REQUIRE(env.call(Leaf::TDH_MNG_VPFLUSHDONE, env.td.tdr) == TDX_SUCCESS);
  CHECK(env.call(Leaf::TDH_MNG_KEY_FREEID, env.td.tdr) == kWbcacheNotComplete);
  CHECK(env.state().lifecycle == Lifecycle::TD_BLOCKED);
  REQUIRE(env.call(Leaf::TDH_PHYMEM_CACHE_WB, 0) == TDX_SUCCESS);
  CHECK(env.call(Leaf::TDH_PHYMEM_CACHE_WB, 0) == TDX_SUCCESS);  // the HKID stays FLUSHED until FREEID
  REQUIRE(env.call(Leaf::TDH_MNG_KEY_FREEID, env.td.tdr) == TDX_SUCCESS);
  CHECK(env.state().lifecycle == Lifecycle::TD_TEARDOWN);
  CHECK(env.call(Leaf::TDH_PHYMEM_CACHE_WB, 0) == kNoHkidReadyToWbcache);
}

// tdh_vp_init.c (associate_vcpu_initial), tdh_vp_flush.c (tdh_vp_flush),
// tdh_mng_vpflushdone.c (num_assoc_vcpus).
TEST_CASE("VP.INIT associates a vCPU, and VP.FLUSH of a vCPU not associated is VCPU_NOT_ASSOCIATED", "[seam]") {
  SeamEnv env(false, 2);
  CHECK(env.call(Leaf::TDH_MNG_VPFLUSHDONE, env.td.tdr) == kFlushvpNotDone);  // never entered, still associated
  REQUIRE(env.call(Leaf::TDH_VP_FLUSH, env.td.tdvpr[0]) == TDX_SUCCESS);
  CHECK(env.call(Leaf::TDH_VP_FLUSH, env.td.tdvpr[0]) == kVcpuNotAssociated);
  CHECK(env.call(Leaf::TDH_MNG_VPFLUSHDONE, env.td.tdr) == kFlushvpNotDone);  // vCPU 1 is
  REQUIRE(env.call(Leaf::TDH_VP_FLUSH, env.td.tdvpr[1]) == TDX_SUCCESS);
  CHECK(env.call(Leaf::TDH_MNG_VPFLUSHDONE, env.td.tdr) == TDX_SUCCESS);
}

// tdh_vp_enter.c: the TDVPR and the TDR are taken shared and stay held while
// the vCPU runs; tdh_vp_flush.c, tdh_mng_vpflushdone.c and
// tdh_mng_key_freeid.c want them exclusively (check_and_lock_explicit_4k_
// private_hpa / check_lock_and_map_explicit_tdr, operand RCX).
TEST_CASE("a vCPU inside the TD makes VP.FLUSH, VPFLUSHDONE and KEY.FREEID BUSY on RCX", "[seam]") {
  SeamEnv env(false, 1);
  REQUIRE(env.finalize() == TDX_SUCCESS);
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  CHECK(env.call(Leaf::TDH_VP_FLUSH, env.td.tdvpr[0]) == kOperandBusy + kRcx);
  CHECK(env.call(Leaf::TDH_MNG_VPFLUSHDONE, env.td.tdr) == kOperandBusy + kRcx);
  CHECK(env.call(Leaf::TDH_MNG_KEY_FREEID, env.td.tdr) == kOperandBusy + kRcx);
  // Another VP.ENTER of the running vCPU comes from another LP (associate_vcpu).
  CHECK(env.enter(0) == kVcpuAssociated);
  CHECK(env.track() == TDX_SUCCESS);  // MEM.TRACK takes the TDR shared
  env.exit(0);
  CHECK(env.call(Leaf::TDH_VP_FLUSH, env.td.tdvpr[0]) == TDX_SUCCESS);
  CHECK(env.call(Leaf::TDH_MNG_VPFLUSHDONE, env.td.tdr) == TDX_SUCCESS);
}

// helpers.c: check_lock_and_map_explicit_tdr -> check_and_lock_explicit_
// private_hpa -> hpa_check_with_pwr_2_alignment (aligned, no HKID bits, below
// MAX_PA: TDX_OPERAND_INVALID), pamt_get_block (TDX_OPERAND_ADDR_RANGE_ERROR),
// then the PAMT walk and the page type (TDX_PAGE_METADATA_INCORRECT).
TEST_CASE("TDR and TDVPR handles are private HPAs: low bits or KeyID bits are OPERAND_INVALID", "[seam]") {
  SeamEnv env;
  CHECK(env.call(Leaf::TDH_MEM_TRACK, env.td.tdr | 1) == kOperandInvalid + kRcx);
  CHECK(env.call(Leaf::TDH_MEM_TRACK, keyed_hpa(env.td.tdr, 1)) == kOperandInvalid + kRcx);
  CHECK(env.call(Leaf::TDH_MEM_TRACK, u64{1} << 36) == kAddrRangeError + kRcx);  // outside the 8 GiB TDMR
  CHECK(env.call(Leaf::TDH_MEM_TRACK, env.page()) == kMetadataIncorrect + kRcx);
  CHECK(env.call(Leaf::TDH_MEM_PAGE_AUG, page_info(kGpa, 0), env.td.tdr | 0x800, env.page()) == kOperandInvalid + kRdx);
  CHECK(env.call(Leaf::TDH_VP_FLUSH, env.td.tdvpr[0] | 8) == kOperandInvalid + kRcx);
  CHECK(env.call(Leaf::TDH_VP_INIT, keyed_hpa(env.td.tdvpr[0], 2)) == kOperandInvalid + kRcx);
  CHECK(env.call(Leaf::TDH_VP_FLUSH, env.td.tdr) == kMetadataIncorrect + kRcx);
}

// helpers.c (check_and_lock_explicit_4k_private_hpa, check_and_lock_free_
// range_hpa): a page operand with KeyID bits is TDX_OPERAND_INVALID, whatever
// its metadata; tdh_phymem_page_reclaim.c and tdh_phymem_page_rdmd.c check
// the HKID of RCX the same way.
TEST_CASE("page operands with KeyID bits are OPERAND_INVALID, not a range or metadata error", "[seam]") {
  SeamEnv env;
  env.tables_for(kGpa, 0);
  CHECK(env.aug(kGpa, 0, keyed_hpa(env.page(), 3)) == kOperandInvalid + kR8);
  CHECK(env.mem_op(Leaf::TDH_MEM_SEPT_ADD, kGpa + 0x200000, 1, keyed_hpa(env.page(), 3)) == kOperandInvalid + kR8);
  CHECK(env.aug(kGpa + 0x200000, 1, keyed_hpa(env.page(PG_LEVEL_2M), 3)) == kOperandInvalid + kR8);
  CHECK(env.call(Leaf::TDH_PHYMEM_PAGE_RECLAIM, keyed_hpa(env.td.tdr, 1)) == kOperandInvalid + kRcx);
  CHECK(env.call(Leaf::TDH_PHYMEM_PAGE_RDMD, keyed_hpa(env.td.tdr, 1)) == kOperandInvalid + kRcx);
  CHECK(env.call(Leaf::TDH_PHYMEM_PAGE_RDMD, env.td.tdr | 0x10) == kOperandInvalid + kRcx);
}

// tdh_mem_page_relocate.c (tdh_mem_page_relocate): source == target is
// refused on R8 right after the entry's state check, before the page's PAMT
// lock and the BLOCK/TRACK requirements.
TEST_CASE("RELOCATE to the page's current HPA is OPERAND_INVALID on R8 before BLOCK and TRACK", "[seam]") {
  SeamEnv env;
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.map_4k(kGpa);
  const Hpa cur = hpa_at(env, kGpa, 0);
  CHECK(env.mem_op(Leaf::TDH_MEM_PAGE_RELOCATE, kGpa, 0, cur) == kOperandInvalid + kR8);
  CHECK(env.mem_op(Leaf::TDH_MEM_PAGE_RELOCATE, kGpa, 0, env.page()) ==
        with_operand(TDX_GPA_RANGE_NOT_BLOCKED, operand::RCX));
}

// tdh_mem_page_add.c (tdh_mem_page_add): shared_hpa_check_with_pwr_2_alignment
// on R9 only; the source page's PAMT entry is never read.
TEST_CASE("PAGE.ADD checks only that the source is an aligned shared HPA", "[seam]") {
  SeamEnv env;
  env.tables_for(kGpa, 0);
  SeamcallRegs r;
  r.rcx = page_info(kGpa, 0), r.rdx = env.td.tdr, r.r8 = env.page(), r.r9 = keyed_hpa(env.page(), 1);
  CHECK(env.call(Leaf::TDH_MEM_PAGE_ADD, r) == kOperandInvalid + kR9);
  r = SeamcallRegs{};
  r.rcx = page_info(kGpa, 0), r.rdx = env.td.tdr, r.r8 = env.page(), r.r9 = env.page() | 0x80;
  CHECK(env.call(Leaf::TDH_MEM_PAGE_ADD, r) == kOperandInvalid + kR9);
  r = SeamcallRegs{};
  r.rcx = page_info(kGpa, 0), r.rdx = env.td.tdr, r.r8 = env.page(), r.r9 = env.td.tdr;  // a TDX page as source
  CHECK(env.call(Leaf::TDH_MEM_PAGE_ADD, r) == TDX_SUCCESS);
}

// tdh_phymem_page_reclaim.c (tdh_phymem_page_reclaim): RCX/RDX/R8 are set
// from the PAMT entry before the leaf-size alignment check, which comes
// before the owner's life cycle.
TEST_CASE("RECLAIM inside a private 2M page is OPERAND_INVALID on RCX before the life cycle", "[seam]") {
  SeamEnv env;
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.tables_for(kGpa, 1);
  const Hpa big = env.page(PG_LEVEL_2M);
  REQUIRE(env.aug(kGpa, 1, big) == TDX_SUCCESS);
  SeamcallRegs r;
  r.rcx = big + 0x1000;
  CHECK(env.call(Leaf::TDH_PHYMEM_PAGE_RECLAIM, r) == kOperandInvalid + kRcx);
  CHECK(r.rcx == u64(PageType::PT_REG));
  CHECK(r.rdx == env.td.tdr);
  CHECK(r.r8 == 1);  // 2M
  r = SeamcallRegs{};
  r.rcx = big;
  CHECK(env.call(Leaf::TDH_PHYMEM_PAGE_RECLAIM, r) == kLifecycleIncorrect);
  CHECK(r.rcx == u64(PageType::PT_REG));
}

// helpers.c (check_and_lock_free_range_hpa) and pamt_manager.c (pamt_walk):
// the 2M entry is locked (shared on the way to a 4K leaf, exclusive for a 2M
// AUG) before any page type is read.
TEST_CASE("an AUG of a 4K page inside a range a 2M AUG holds is BUSY on R8, and the other way round", "[seam]") {
  SeamEnv env;
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.tables_for(kGpa, 1);
  env.tables_for(kGpa + 0x200000, 0);
  env.tables_for(kGpa + 0x400000, 1);
  auto aug = [&](Gpa gpa, int level, Hpa page) {
    SeamcallRegs r;
    r.rcx = page_info(gpa, level), r.rdx = env.td.tdr, r.r8 = page;
    return r;
  };
  const Hpa big = env.page(PG_LEVEL_2M);
  const Cycles t0 = env.now + 1000;
  REQUIRE(at(env, Leaf::TDH_MEM_PAGE_AUG, aug(kGpa, 1, big), 1, t0) == TDX_SUCCESS);
  CHECK(at(env, Leaf::TDH_MEM_PAGE_AUG, aug(kGpa + 0x200000, 0, big + 0x3000), 2, t0 + 10) == kOperandBusy + kR8);
  const Cycles later = t0 + 10 * env.tdx.timing().of(u16(Leaf::TDH_MEM_PAGE_AUG));
  CHECK(at(env, Leaf::TDH_MEM_PAGE_AUG, aug(kGpa + 0x200000, 0, big + 0x3000), 2, later) ==
        kMetadataIncorrect + kR8);

  const Hpa other = env.page(PG_LEVEL_2M);
  const Cycles t1 = later + 100000;
  REQUIRE(at(env, Leaf::TDH_MEM_PAGE_AUG, aug(kGpa + 0x201000, 0, other + 0x5000), 1, t1) == TDX_SUCCESS);
  CHECK(at(env, Leaf::TDH_MEM_PAGE_AUG, aug(kGpa + 0x400000, 1, other), 2, t1 + 10) == kOperandBusy + kR8);
}

// tdh_mr_extend.c (tdh_mr_extend): check_and_walk_private_gpa_to_leaf fails
// on a leaf without RWX (PENDING, BLOCKED), which the leaf reports as
// TDX_EPT_ENTRY_NOT_PRESENT on RCX with the entry in RCX/RDX.
TEST_CASE("MR.EXTEND of a PENDING leaf is EPT_ENTRY_NOT_PRESENT on RCX with the entry", "[seam]") {
  SeamEnv env;
  env.tables_for(kGpa, 0);
  REQUIRE(env.aug(kGpa, 0) == TDX_SUCCESS);  // AUG before finalize: PENDING
  SeamcallRegs r;
  r.rcx = kGpa, r.rdx = env.td.tdr;
  CHECK(env.call(Leaf::TDH_MR_EXTEND, r) == kEptEntryNotPresent + kRcx);
  CHECK(((r.rdx >> 8) & 0xff) == kPending);
  CHECK((r.rdx & 7) == 0);
}

// tdh_mem_sept_add.c / tdh_mem_page_demote.c: reserved bits of the
// td_handle_and_flags in RDX (11:1, 63:52) come first.
TEST_CASE("DEMOTE refuses reserved bits of its TD handle on RDX", "[seam]") {
  SeamEnv env;
  SeamcallRegs r;
  r.rcx = page_info(kGpa, 1), r.rdx = env.td.tdr | (1ull << 60), r.r8 = env.page();
  CHECK(env.call(Leaf::TDH_MEM_PAGE_DEMOTE, r) == kOperandInvalid + kRdx);
}

// tdh_mem_sept_rd.c (tdh_mem_sept_rd): RDX bit 0 asks for the L2 attributes,
// which only a debug TD may read; the check follows the TDR and OP_STATE ones.
TEST_CASE("SEPT.RD with the L2-attributes bit is OPERAND_INVALID on RDX unless the TD is a debug TD", "[seam]") {
  SeamEnv env;
  CHECK(env.mem_op(Leaf::TDH_MEM_SEPT_RD, 0, 3) == TDX_SUCCESS);
  SeamcallRegs r;
  r.rcx = page_info(0, 3), r.rdx = env.td.tdr | 1;
  CHECK(env.call(Leaf::TDH_MEM_SEPT_RD, r) == kOperandInvalid + kRdx);

  SeamEnv debug(false, 1, false);
  TdCreateParams cp;
  cp.vcpus = 1;
  TdParams p = td_params_for(48, 4, 1);
  p.attributes = kAttributesDebug;
  cp.td_params = p;
  REQUIRE(build_td(debug.tdx, debug.mem, debug.dpamt, cp, debug.td).status == TDX_SUCCESS);
  r = SeamcallRegs{};
  r.rcx = page_info(0, 3), r.rdx = debug.td.tdr | 1;
  CHECK(debug.call(Leaf::TDH_MEM_SEPT_RD, r) == TDX_SUCCESS);
  CHECK(r.r8 == 0);  // no L2 VM, no attributes
}

// tdh_mem_page_promote.c (is_sept_page_valid_for_merge): the 512 child
// entries are locked one by one; a lock held elsewhere is TDX_OPERAND_BUSY
// on RCX with the parent entry in RCX/RDX, as a failed merge condition is.
TEST_CASE("PROMOTE that finds a child entry locked is BUSY on RCX and returns the parent entry", "[seam]") {
  SeamEnv env;
  env.tables_for(kGpa, 0);
  const Hpa big = env.page(PG_LEVEL_2M);
  REQUIRE(env.aug_512(kGpa, big) == 512);
  const Cycles t0 = env.now + 1000;
  SeamcallRegs rd;
  rd.rcx = page_info(kGpa + 5 * kPageSize, 0), rd.rdx = env.td.tdr;
  REQUIRE(at(env, Leaf::TDH_MEM_SEPT_RD, rd, 1, t0) == TDX_SUCCESS);
  SeamcallTxn t;
  t.in.rax = leaf_rax(Leaf::TDH_MEM_PAGE_PROMOTE);
  t.in.rcx = page_info(kGpa, 1), t.in.rdx = env.td.tdr;
  t.initiator = 2;
  t.start = t0 + 10;
  env.tdx.transport(t);
  CHECK(t.status() == kOperandBusy + kRcx);
  CHECK(t.out.rdx == (1 | (u64(kNlMapped) << 8)));  // level 1, NL_MAPPED
  t.start = t0 + 100000;
  env.tdx.transport(t);
  CHECK(t.status() == TDX_SUCCESS);
  CHECK(env.sept_state(kGpa, 1) == kPending);
}

// The handlers write only some registers: the Secure-EPT leaves clear RCX/RDX
// first, RECLAIM and RDMD RCX..R11 (tdh_mem_page_aug.c, tdh_phymem_page_
// reclaim.c, ...); MEM.TRACK writes none. The rest return as they went in.
TEST_CASE("registers a leaf does not write come back as the VMM passed them", "[seam]") {
  SeamEnv env;
  SeamcallRegs r;
  r.rcx = env.td.tdr, r.r8 = 0x1234, r.r13 = 0x5678;
  REQUIRE(env.call(Leaf::TDH_MEM_TRACK, r) == TDX_SUCCESS);
  CHECK(r.rcx == env.td.tdr);
  CHECK(r.r8 == 0x1234);
  CHECK(r.r13 == 0x5678);
  env.tables_for(kGpa, 0);
  const Hpa page = env.page();
  r = SeamcallRegs{};
  r.rcx = page_info(kGpa, 0), r.rdx = env.td.tdr, r.r8 = page, r.r9 = 0x99;
  REQUIRE(env.call(Leaf::TDH_MEM_PAGE_AUG, r) == TDX_SUCCESS);
  CHECK(r.rcx == 0);
  CHECK(r.rdx == 0);
  CHECK(r.r8 == page);
  CHECK(r.r9 == 0x99);
  r = SeamcallRegs{};
  r.rcx = env.td.tdr, r.r9 = 0x99, r.r12 = 0x77;
  CHECK(env.call(Leaf::TDH_PHYMEM_PAGE_RECLAIM, r) == kLifecycleIncorrect);
  CHECK(r.r9 == 0);  // cleared
  CHECK(r.r12 == 0x77);
}

// tdh_mem_page_promote.c / tdh_mem_page_demote.c: with a host interrupt
// pending once every check has passed, nothing is committed and the call is
// TDX_INTERRUPTED_RESTARTABLE (0x8000000400000000) with RCX/RDX as passed.
TEST_CASE("PROMOTE and DEMOTE with a pending host interrupt are INTERRUPTED_RESTARTABLE and change nothing", "[seam]") {
  SeamEnv env;
  env.tables_for(kGpa, 0);
  const Hpa big = env.page(PG_LEVEL_2M);
  REQUIRE(env.aug_512(kGpa, big) == 512);
  auto interrupted = [&](Leaf leaf, Hpa r8) {
    SeamcallTxn t;
    t.in.rax = leaf_rax(leaf);
    t.in.rcx = page_info(kGpa, 1), t.in.rdx = env.td.tdr, t.in.r8 = r8;
    t.host_interrupt = true;
    t.start = env.now;
    env.now += env.tdx.transport(t);
    CHECK(t.out.rcx == page_info(kGpa, 1));
    CHECK(t.out.rdx == env.td.tdr);
    return t.status();
  };
  CHECK(interrupted(Leaf::TDH_MEM_PAGE_PROMOTE, 0) == 0x8000000400000000ull);
  CHECK(env.sept_state(kGpa, 1) == kNlMapped);
  REQUIRE(env.mem_op(Leaf::TDH_MEM_PAGE_PROMOTE, kGpa, 1) == TDX_SUCCESS);
  const Hpa table = env.page();
  CHECK(interrupted(Leaf::TDH_MEM_PAGE_DEMOTE, table) == 0x8000000400000000ull);
  CHECK(env.sept_state(kGpa, 1) == kPending);
  CHECK(env.tdx.pamt().get(table, PG_LEVEL_4K).pt == PageType::PT_NDA);
  CHECK(env.mem_op(Leaf::TDH_MEM_PAGE_DEMOTE, kGpa, 1, table) == TDX_SUCCESS);
}

// tdh_mng_create.c (tdh_mng_create): the HKID's KOT entry must be
// HKID_FREE; it stays taken until KEY.FREEID (tdh_mng_key_freeid.c).
TEST_CASE("MNG.CREATE with an HKID another TD holds is TDX_HKID_NOT_FREE until that TD's KEY.FREEID", "[seam]") {
  SeamEnv env(false, 1);
  const u16 hkid = env.state().hkid;
  CHECK(env.call(Leaf::TDH_MNG_CREATE, env.page(), hkid) == 0xC000082000000000ull);
  CHECK(env.call(Leaf::TDH_MNG_CREATE, env.page(), 0x10000) == kOperandInvalid + kRdx);
  REQUIRE(env.call(Leaf::TDH_VP_FLUSH, env.td.tdvpr[0]) == TDX_SUCCESS);
  REQUIRE(env.call(Leaf::TDH_MNG_VPFLUSHDONE, env.td.tdr) == TDX_SUCCESS);
  REQUIRE(env.call(Leaf::TDH_PHYMEM_CACHE_WB, 0) == TDX_SUCCESS);
  REQUIRE(env.call(Leaf::TDH_MNG_KEY_FREEID, env.td.tdr) == TDX_SUCCESS);
  CHECK(env.call(Leaf::TDH_MNG_CREATE, env.page(), hkid) == TDX_SUCCESS);
}

// intel/tdx-module a56a9173, tdh_phymem_pamt_add.c (tdh_phymem_pamt_add): the
// page operands' format and TDMR before the range's, the range's 2M entry,
// then each page's PAMT entry, then the PAMT-page bitmap; tdh_phymem_pamt_
// remove.c: NO_PAMT_PAGE_PAIR on RCX, PAMT_PAGE_NOT_EMPTY with the index of
// the pair's page that holds a used entry.
TEST_CASE("PAMT.ADD checks the page pair before the 2M range, and PAMT.REMOVE names the PAMT page in use", "[seam]") {
  SeamEnv env(true);
  env.tables_for(kGpa, 0);
  const Hpa paired = env.page();  // the refcount installed its region's pair
  const Hpa region = align_down(paired, PG_LEVEL_2M);
  auto add = [&](Hpa range, Hpa p0, Hpa p1) { return env.call(Leaf::TDH_PHYMEM_PAMT_ADD, range | 1, p0, p1); };
  const Hpa free0 = env.mem.alloc() << kPageShift, free1 = env.mem.alloc() << kPageShift;
  CHECK(add(region, keyed_hpa(free0, 1), free1) == kOperandInvalid + kRdx);
  CHECK(add(region, free0, free1 | 0x10) == kOperandInvalid + kR8);
  CHECK(add(region, free0, free1) == with_operand(TDX_HPA_RANGE_NOT_FREE, operand::RCX));
  CHECK(add(region | 0x1000, free0, free1) == kOperandInvalid + kRcx);
  // A page of the pair already a PAMT page and the other one a TD page: the
  // PAMT entries are checked before the bitmap, so R8 is named.
  const Hpa bare = env.mem.alloc(PG_LEVEL_2M) << kPageShift;
  const PamtPair* used = env.tdx.pamt().pair(region);
  REQUIRE(used);
  CHECK(add(bare, used->page0, env.td.tdr) == with_operand(TDX_PAGE_NOT_FREE, operand::R8));
  CHECK(add(bare, used->page0, free1) == with_operand(TDX_PAGE_NOT_FREE, operand::RDX));
  CHECK(add(bare, free0, free0) == with_operand(TDX_PAGE_NOT_FREE, operand::R8));
  CHECK(env.call(Leaf::TDH_PHYMEM_PAMT_REMOVE, bare | 1) == with_operand(TDX_NO_PAMT_PAGE_PAIR, operand::RCX));
  REQUIRE(add(bare, free0, free1) == TDX_SUCCESS);
  REQUIRE(env.aug(kGpa, 0, bare + 300 * kPageSize) == TDX_SUCCESS);  // entry 300: the pair's second page
  CHECK(env.call(Leaf::TDH_PHYMEM_PAMT_REMOVE, bare | 1) == 0xC000030600000001ull);
}
