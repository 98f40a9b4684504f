// Dynamic PAMT: PAMT.ADD / PAMT.REMOVE, page counts, MISSING_PAMT_PAGE_PAIR,
// the R12/R13 pairs of DEMOTE/PROMOTE, memory accounting (6.3).
#include <catch2/catch.hpp>

#include "tests/seam/seam_env.h"

using namespace septsim;
using namespace septsim::seamtest;

TEST_CASE("a 4K page without a PAMT pair in its 2M region is MISSING_PAMT_PAGE_PAIR", "[seam]") {
  SeamEnv env(true);
  env.tables_for(kGpa, 0);
  const Hpa bare = env.mem.alloc(PG_LEVEL_2M) << kPageShift;
  CHECK(env.aug(kGpa, 0, bare) == TDX_MISSING_PAMT_PAGE_PAIR);
  CHECK(env.mem_op(Leaf::TDH_MEM_SEPT_ADD, kGpa + 0x40000000, 2, bare + 0x1000) == TDX_MISSING_PAMT_PAGE_PAIR);
  SeamcallRegs r;
  r.rcx = bare | 1, r.rdx = env.mem.alloc() << kPageShift, r.r8 = env.mem.alloc() << kPageShift;
  const u64 bytes = env.tdx.pamt().bytes();
  const Hpa p0 = r.rdx, p1 = r.r8;
  REQUIRE(env.call(Leaf::TDH_PHYMEM_PAMT_ADD, r) == TDX_SUCCESS);
  CHECK(env.tdx.pamt().bytes() == bytes + 8192);
  CHECK(env.call(Leaf::TDH_PHYMEM_PAMT_ADD, bare | 1, env.page(), env.page()) ==
        with_operand(TDX_HPA_RANGE_NOT_FREE, operand::RCX));
  CHECK(env.aug(kGpa, 0, bare) == TDX_SUCCESS);
  CHECK(env.tdx.pamt().pair(bare)->page_count == 1);
  // The used entry is in the pair's first page: operand 0 (tdh_phymem_pamt_remove.c).
  CHECK(env.call(Leaf::TDH_PHYMEM_PAMT_REMOVE, bare | 1) == with_operand(TDX_PAMT_PAGE_NOT_EMPTY, 0));
  SeamcallRegs out;
  REQUIRE(env.remove(kGpa, 0, &out) == TDX_SUCCESS);  // INITIALIZED: no TT-gate
  CHECK(out.rcx == (bare | kPamtRemovalHint));        // region's count dropped to 0
  SeamcallRegs rm;
  rm.rcx = bare | 1;
  REQUIRE(env.call(Leaf::TDH_PHYMEM_PAMT_REMOVE, rm) == TDX_SUCCESS);
  CHECK((rm.rdx == p0 && rm.r8 == p1));
  CHECK(env.call(Leaf::TDH_PHYMEM_PAMT_REMOVE, bare | 1) == with_operand(TDX_NO_PAMT_PAGE_PAIR, operand::RCX));
  CHECK(env.tdx.pamt().bytes() == bytes);
}

TEST_CASE("the kernel-side refcount adds a pair on the first page of a region and removes it on the last", "[seam]") {
  SeamEnv env(true, 1);
  const Hpa region = env.mem.alloc(PG_LEVEL_2M) << kPageShift;
  Cycles c = 0;
  const u64 pairs = env.tdx.pamt().pairs();
  REQUIRE(env.dpamt.get(region, c) == TDX_SUCCESS);
  REQUIRE(env.dpamt.get(region + 0x1000, c) == TDX_SUCCESS);
  CHECK(env.dpamt.count(region) == 2);
  CHECK(env.tdx.pamt().pairs() == pairs + 1);
  REQUIRE(env.dpamt.put(region, c) == TDX_SUCCESS);
  CHECK(env.tdx.pamt().pairs() == pairs + 1);
  REQUIRE(env.dpamt.put(region + 0x1000, c) == TDX_SUCCESS);
  CHECK(env.tdx.pamt().pairs() == pairs);
  CHECK(env.stats.value("seam.calls.tdh_phymem_pamt_add") >= 1);
}

TEST_CASE("DEMOTE of a 2M page needs the R12/R13 pair, PROMOTE returns it", "[seam]") {
  SeamEnv env(true);
  env.tables_for(kGpa, 1);
  const Hpa big = env.page(PG_LEVEL_2M);
  REQUIRE(env.aug(kGpa, 1, big) == TDX_SUCCESS);
  CHECK(env.tdx.pamt().has_pair(big) == false);
  SeamcallRegs r;
  r.rcx = page_info(kGpa, 1), r.rdx = env.td.tdr, r.r8 = env.page();
  CHECK(env.call(Leaf::TDH_MEM_PAGE_DEMOTE, r) == TDX_MISSING_PAMT_PAGE_PAIR);
  r = SeamcallRegs{};
  r.rcx = page_info(kGpa, 1), r.rdx = env.td.tdr, r.r8 = env.page();
  r.r12 = env.mem.alloc() << kPageShift, r.r13 = env.mem.alloc() << kPageShift;
  const Hpa p0 = r.r12, p1 = r.r13;
  REQUIRE(env.call(Leaf::TDH_MEM_PAGE_DEMOTE, r) == TDX_SUCCESS);
  REQUIRE(env.tdx.pamt().pair(big) != nullptr);
  CHECK(env.tdx.pamt().pair(big)->page_count == 512);
  SeamcallRegs out;
  REQUIRE(env.mem_op(Leaf::TDH_MEM_PAGE_PROMOTE, kGpa, 1, 0, &out) == TDX_SUCCESS);
  CHECK((out.r12 == p0 && out.r13 == p1));
  CHECK(!env.tdx.pamt().has_pair(big));
}

namespace {

// A 2M page AUGed and DEMOTEd with a fresh R12/R13 pair; returns the page.
Hpa demoted_2m(SeamEnv& env, Hpa* r12 = nullptr, Hpa* r13 = nullptr) {
  env.tables_for(kGpa, 1);
  const Hpa big = env.page(PG_LEVEL_2M);
  REQUIRE(env.aug(kGpa, 1, big) == TDX_SUCCESS);
  SeamcallRegs r;
  r.rcx = page_info(kGpa, 1), r.rdx = env.td.tdr, r.r8 = env.page();
  r.r12 = env.mem.alloc() << kPageShift, r.r13 = env.mem.alloc() << kPageShift;
  if (r12) *r12 = r.r12;
  if (r13) *r13 = r.r13;
  REQUIRE(env.call(Leaf::TDH_MEM_PAGE_DEMOTE, r) == TDX_SUCCESS);
  return big;
}

}  // namespace

TEST_CASE("the refcount adopts DEMOTE's pair: the 512 pieces hold it and the last put removes it", "[seam]") {
  SeamEnv env(true);
  Hpa p0 = 0, p1 = 0;
  const Hpa big = demoted_2m(env, &p0, &p1);
  const u64 pairs = env.tdx.pamt().pairs();
  const u64 removes = env.stats.value("seam.calls.tdh_phymem_pamt_remove");
  REQUIRE(env.dpamt.adopt(big, 512));
  CHECK(env.dpamt.count(big + 0x1ff000) == 512);
  CHECK_FALSE(env.dpamt.adopt(big, 512));  // already held: nothing changes
  CHECK(env.dpamt.count(big) == 512);
  Cycles c = 0;
  for (u64 i = 0; i < 511; ++i) {
    REQUIRE(env.remove(kGpa + i * kPageSize, 0) == TDX_SUCCESS);
    REQUIRE(env.dpamt.put(big + i * kPageSize, c) == TDX_SUCCESS);
  }
  CHECK(env.dpamt.count(big) == 1);
  CHECK(env.tdx.pamt().pairs() == pairs);
  CHECK(env.stats.value("seam.calls.tdh_phymem_pamt_remove") == removes);
  REQUIRE(env.remove(kGpa + 511 * kPageSize, 0) == TDX_SUCCESS);
  REQUIRE(env.dpamt.put(big + 511 * kPageSize, c) == TDX_SUCCESS);
  CHECK(env.dpamt.count(big) == 0);
  CHECK(env.tdx.pamt().pairs() == pairs - 1);
  CHECK(env.stats.value("seam.calls.tdh_phymem_pamt_remove") == removes + 1);
  CHECK_FALSE(env.mem.is_allocated(p0 >> kPageShift));  // PAMT.REMOVE's pages went back to the host
  CHECK_FALSE(env.mem.is_allocated(p1 >> kPageShift));
}

TEST_CASE("the refcount forgets a pair PROMOTE handed back, without PAMT.REMOVE", "[seam]") {
  SeamEnv env(true);
  Hpa p0 = 0, p1 = 0;
  const Hpa big = demoted_2m(env, &p0, &p1);
  REQUIRE(env.dpamt.adopt(big, 512));
  SeamcallRegs out;
  REQUIRE(env.mem_op(Leaf::TDH_MEM_PAGE_PROMOTE, kGpa, 1, 0, &out) == TDX_SUCCESS);
  REQUIRE((out.r12 == p0 && out.r13 == p1));
  const u64 removes = env.stats.value("seam.calls.tdh_phymem_pamt_remove");
  CHECK(env.dpamt.forget(big) == 512);
  CHECK(env.dpamt.count(big) == 0);
  CHECK(env.dpamt.forget(big) == 0);
  Cycles c = 0;
  CHECK(env.dpamt.put(big, c) == TDX_SUCCESS);  // nothing held: no SEAMCALL
  CHECK(c == 0);
  CHECK(env.stats.value("seam.calls.tdh_phymem_pamt_remove") == removes);
  CHECK(env.mem.is_allocated(p0 >> kPageShift));  // the caller's to free or recycle
  CHECK_FALSE(env.dpamt.adopt(big, 0));
}

TEST_CASE("PAMT memory: static per GiB vs dynamic bitmap plus 8 KiB per used 2M region", "[seam]") {
  SeamEnv st(false, 1, false), dy(true, 1, false);
  CHECK(st.tdx.pamt().static_bytes() == 8 * Pamt::static_bytes_per_gib(false));
  CHECK(dy.tdx.pamt().static_bytes() == 8 * Pamt::static_bytes_per_gib(true));
  CHECK(st.stats.value("seam.pamt.bytes") == st.tdx.pamt().bytes());
  TdHandle h;
  REQUIRE(build_td(dy.tdx, dy.mem, dy.dpamt, TdCreateParams{}, h).status == TDX_SUCCESS);
  CHECK(dy.tdx.pamt().pair_bytes() == dy.tdx.pamt().pairs() * 8192);
  CHECK(dy.tdx.pamt().pairs() >= 1);
}
