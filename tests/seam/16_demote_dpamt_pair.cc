// A Dynamic PAMT 2M DEMOTE installs the PAMT_4K page pair given in R12/R13,
// doing PAMT.ADD's work for the split page's range (the kernel's
// tdh_mem_page_demote in the TDX huge-page series: dpamt_copy_to_regs into
// R12/R13; "[RFC PATCH v5 30/45] x86/virt/tdx: Add API to demote a 2MB
// mapping to 512 4KB mappings", from Xiaoyao Li, kvm@ 2026-01-28; Yan Zhao's
// review note of 2026-06-11 describes the contention with a concurrent
// PAMT.ADD). The pair pages get PAMT.ADD's
// operand checks (tdh_phymem_pamt_add.c as the seam model follows it, see
// docs/design.md). Statuses: tdx_error_codes_defs.h (1.5) and, for the
// Dynamic PAMT codes, the module's 2.0 header as seam/tdx_status.h names it.
#include <catch2/catch.hpp>

#include "tests/seam/module_status_codes.h"
#include "tests/seam/seam_env.h"

using namespace septsim;
using namespace septsim::seamtest;

namespace {

using namespace golden;
constexpr Code kPageNotFree = 0xC000030300000000ull;         // TDX_PAGE_NOT_FREE
constexpr Code kMissingPamtPagePair = 0x8000030800000000ull;  // TDX_MISSING_PAMT_PAGE_PAIR (2.0)
constexpr u32 kR12 = 12, kR13 = 13;

// A 2M page AUGed before MR.FINALIZE (no BLOCK/TRACK needed for DEMOTE).
struct Split {
  SeamEnv env{true};
  Hpa big = 0;
  Split() {
    env.tables_for(kGpa, 1);
    big = env.page(PG_LEVEL_2M);
    REQUIRE(env.aug(kGpa, 1, big) == TDX_SUCCESS);
  }
  SeamcallRegs regs(Hpa r12, Hpa r13) {
    SeamcallRegs r;
    r.rcx = page_info(kGpa, 1), r.rdx = env.td.tdr, r.r8 = env.page();
    r.r12 = r12, r.r13 = r13;
    return r;
  }
  Status demote(Hpa r12, Hpa r13) {
    SeamcallRegs r = regs(r12, r13);
    return env.call(Leaf::TDH_MEM_PAGE_DEMOTE, r);
  }
  Hpa free_page() { return env.mem.alloc() << kPageShift; }
};

}  // namespace

TEST_CASE("DEMOTE's R12/R13 get PAMT.ADD's operand checks: KeyID bits, alignment, TDMR", "[seam]") {
  Split s;
  CHECK(s.demote(keyed_hpa(s.free_page(), 1), s.free_page()) == kOperandInvalid + kR12);
  CHECK(s.demote(s.free_page(), s.free_page() | 0x800) == kOperandInvalid + kR13);
  CHECK(s.demote(s.free_page(), u64{1} << 36) == kAddrRangeError + kR13);  // outside the 8 GiB TDMR
  CHECK(s.demote(0, s.free_page()) == kMissingPamtPagePair);
}

TEST_CASE("DEMOTE's pair pages must be free: a TD page, a PAMT page, the same page twice are PAGE_NOT_FREE", "[seam]") {
  Split s;
  CHECK(s.demote(s.big + 0x3000, s.free_page()) == kPageNotFree + kR12);  // inside the page being split
  CHECK(s.demote(s.free_page(), s.env.td.tdr) == kPageNotFree + kR13);    // the TDR
  const Hpa p = s.free_page();
  CHECK(s.demote(p, p) == kPageNotFree + kR13);
  const Hpa in_use = s.env.page();  // its range got a PAMT pair from the refcount
  const PamtPair* pair = s.env.tdx.pamt().pair(in_use);
  REQUIRE(pair != nullptr);
  CHECK(s.demote(pair->page0, s.free_page()) == kPageNotFree + kR12);
  CHECK(s.demote(s.free_page(), s.free_page()) == TDX_SUCCESS);
}

TEST_CASE("a PAMT.ADD holding the range of one of DEMOTE's pair pages makes DEMOTE BUSY on that register", "[seam]") {
  Split s;
  const Hpa region = s.env.mem.alloc(PG_LEVEL_2M) << kPageShift;  // no pair yet
  const Hpa p0 = region + 0x5000;                                   // a pair page inside it
  SeamcallRegs add;
  add.rcx = region | 1, add.rdx = s.free_page(), add.r8 = s.free_page();
  const Cycles t = s.env.now;
  REQUIRE(at(s.env, Leaf::TDH_PHYMEM_PAMT_ADD, add, 1, t) == TDX_SUCCESS);
  // Overlapping in time on LP 0: p0's range's 2M PAMT entry is held exclusively.
  CHECK(at(s.env, Leaf::TDH_MEM_PAGE_DEMOTE, s.regs(p0, s.free_page()), 0, t) == kOperandBusy + kR12);
}

// TDX_FEATURES0 bit 51, ENHANCE_DEMOTE_INTERRUPTIBILITY (newer modules than
// the 1.5.01 source; the TDX huge-page series RFC v5, 30/45, requires it):
// a basic TD's DEMOTE is not interrupted by a pending host interrupt. Without
// it, the 1.5.01 behaviour: TDX_INTERRUPTED_RESTARTABLE (tdh_mem_page_demote.c).
TEST_CASE("with ENHANCE_DEMOTE_INTERRUPTIBILITY a pending host interrupt does not stop DEMOTE", "[seam][huge]") {
  for (const bool feature : {false, true}) {
    INFO("seam.enhance_demote_interruptibility=" << feature);
    model::Config c = make_config(false);
    c.set("seam.enhance_demote_interruptibility", feature ? "true" : "false");
    SeamEnv env(std::move(c), 1, true);
    env.tables_for(kGpa, 1);
    REQUIRE(env.aug(kGpa, 1, env.page(PG_LEVEL_2M)) == TDX_SUCCESS);
    SeamcallTxn t;
    t.in.rax = leaf_rax(Leaf::TDH_MEM_PAGE_DEMOTE);
    t.in.rcx = page_info(kGpa, 1), t.in.rdx = env.td.tdr, t.in.r8 = env.page();
    t.host_interrupt = true;
    t.start = env.now;
    env.now += env.tdx.transport(t);
    CHECK(t.status() == (feature ? TDX_SUCCESS : Code{0x8000000400000000ull}));  // TDX_INTERRUPTED_RESTARTABLE
    CHECK(env.sept_state(kGpa, 1) == (feature ? kNlMapped : kPending));  // split, or left whole
  }
}
