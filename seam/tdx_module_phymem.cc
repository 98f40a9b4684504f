// Physical-page leaves: PHYMEM.PAGE.RECLAIM, PAGE.WBINVD, PAGE.RDMD,
// CACHE.WB and Dynamic PAMT's PAMT.ADD / PAMT.REMOVE (tdh_phymem_*.c, pamt_manager.c).
#include "seam/tdx_module.h"
#include "seam/tdx_module_call.h"

namespace septsim::seam {

namespace {
constexpr u64 kHkidMask = ~((u64{1} << kHkidShift) - 1);
// The owner RECLAIM and RDMD return in RDX (get_pamt_entry_owner): the
// model keeps a TDR's own address as its owner, the module's TDR entry has
// owner 0 (tdh_mng_create.c), so a TDR page reads as owned by nobody.
u64 owner_out(const PamtEntry& e) { return e.pt == PageType::PT_TDR ? 0 : e.owner.raw(); }
}  // namespace

// RCX = HPA (no KeyID bits). RCX/RDX/R8 out = page type, owner, size, set
// as soon as the PAMT entry is read: a refusal after that returns them too
// (tdh_phymem_page_reclaim.c). An HPA inside a 2M/1G page is OPERAND_INVALID
// after that, before the owner's life cycle.
Status TdxModule::phymem_page_reclaim(Call& c) {
  const Hpa hpa = c.in.rcx;
  if (!hpa_operand_ok(hpa, kPageSize)) return with_operand(TDX_OPERAND_INVALID, operand::RCX);
  if (!pamt_.in_tdmr(hpa)) return with_operand(TDX_OPERAND_ADDR_RANGE_ERROR, operand::RCX);
  if (!lock_pamt_walk(hpa, PG_LEVEL_4K, true)) return with_operand(TDX_OPERAND_BUSY, operand::RCX);
  const int pg = pamt_.leaf_level(hpa);
  const PamtEntry e = pamt_.get(hpa, pg);
  if (e.pt == PageType::PT_NDA || e.pt == PageType::PT_RSVD || e.pt == PageType::PT_PAMT)
    return with_operand(TDX_PAGE_METADATA_INCORRECT, operand::RCX);
  c.out.rcx = u64(e.pt);
  c.out.rdx = owner_out(e);
  c.out.r8 = u64(pg - 1);
  if (hpa & (level_size(pg) - 1)) return with_operand(TDX_OPERAND_INVALID, operand::RCX);
  if (e.pt != PageType::PT_TDR && !locks_.acquire(LockKind::Tdr, e.owner, false))
    return with_operand(TDX_OPERAND_BUSY, operand::TDR);
  auto it = tds_.find(e.owner);
  if (it == tds_.end() || it->second.lifecycle != Lifecycle::TD_TEARDOWN) return TDX_LIFECYCLE_STATE_INCORRECT;
  Td& t = it->second;
  if (e.pt == PageType::PT_TDR && t.chldcnt != 0) return TDX_TD_ASSOCIATED_PAGES_EXIST;
  pamt_.set(hpa, pg, PamtEntry{});
  // The SEPT root is a TDCS page but counts as a Secure-EPT page.
  if (e.pt == PageType::PT_EPT || (e.pt == PageType::PT_TDCX && t.sept && t.sept->root() == hpa)) --sept_pages_;
  if (e.pt == PageType::PT_TDR) {
    for (const TdVcpu& v : t.vcpus) vcpu_owner_.erase(v.tdvpr);
    tds_.erase(it);
  } else {
    t.chldcnt -= pages_per_level(pg);
  }
  return TDX_SUCCESS;
}

// RCX = HPA with the TD's KeyID bits: the page must already be free for TDX
// (tdh_phymem_page_wbinvd.c: the KeyID bits removed, then a 4K PT_NDA page
// with its PAMT entry shared).
Status TdxModule::phymem_page_wbinvd(Call& c) {
  const Hpa hpa = c.in.rcx & ~kHkidMask;
  if (hpa & (kPageSize - 1)) return with_operand(TDX_OPERAND_INVALID, operand::RCX);
  if (!pamt_.in_tdmr(hpa)) return with_operand(TDX_OPERAND_ADDR_RANGE_ERROR, operand::RCX);
  if (!lock_pamt_walk(hpa, PG_LEVEL_4K, false)) return with_operand(TDX_OPERAND_BUSY, operand::RCX);
  if (pamt_.get(hpa, pamt_.leaf_level(hpa)).pt != PageType::PT_NDA)
    return with_operand(TDX_PAGE_METADATA_INCORRECT, operand::RCX);
  return TDX_SUCCESS;
}

// RCX = HPA. RCX = page type, RDX = owner, R8 = size, R9 = BEPOCH
// (tdh_phymem_page_rdmd.c: aligned, no KeyID bits, the PAMT walk shared).
Status TdxModule::phymem_page_rdmd(Call& c) {
  const Hpa hpa = c.in.rcx;
  if (!hpa_operand_ok(hpa, kPageSize)) return with_operand(TDX_OPERAND_INVALID, operand::RCX);
  if (!pamt_.in_tdmr(hpa)) return with_operand(TDX_OPERAND_ADDR_RANGE_ERROR, operand::RCX);
  if (!lock_pamt_walk(hpa, PG_LEVEL_4K, false)) return with_operand(TDX_OPERAND_BUSY, operand::RCX);
  const int pg = pamt_.leaf_level(hpa);
  const PamtEntry e = pamt_.get(hpa, pg);
  c.out.rcx = u64(e.pt);
  c.out.rdx = owner_out(e);
  c.out.r8 = u64(pg - 1);
  if (e.pt == PageType::PT_REG || e.pt == PageType::PT_EPT) c.out.r9 = e.bepoch;
  return TDX_SUCCESS;
}

// RCX = command: 0 starts a write-back, 1 resumes an interrupted one
// (tdh_phymem_cache_wb.c): the WBT mutex of the package the LP is on, the
// KOT shared. Every package keeps its own WBT entry (interruption point,
// the HKIDs recorded at the start) and clears only its own WBINVD_BITMAP bit. A start
// records the HKIDs VPFLUSHDONE left waiting (none: the warning
// TDX_NO_HKID_READY_TO_WBCACHE); a resume needs an interrupted write-back
// (TDX_WBCACHE_RESUME_ERROR). The write-back goes sub-block by sub-block; a
// pending host interrupt stops it after one with TDX_INTERRUPTED_RESUMABLE.
// Done, it clears the package's WBINVD bit of the HKIDs recorded at the start.
Status TdxModule::phymem_cache_wb(Call& c) {
  if (c.in.rcx > 1) return with_operand(TDX_OPERAND_INVALID, operand::RCX);
  const unsigned pkg = package_of(c.txn.lp);
  const u64 bit = u64{1} << pkg;
  u64& intr_point = cachewb_intr_point_[pkg];
  if (!locks_.acquire(LockKind::Wbt, pkg, true)) return with_operand(TDX_OPERAND_BUSY, operand::WBCACHE);
  if (!locks_.acquire(LockKind::Kot, 0, false)) return with_operand(TDX_OPERAND_BUSY, operand::KOT);
  if (c.in.rcx == 0) {
    intr_point = 0;
    bool ready = false;
    for (const auto& [_, t] : tds_) ready |= t.hkid_flushed;
    if (!ready) return TDX_NO_HKID_READY_TO_WBCACHE;
    for (auto& [_, t] : tds_) t.wbt_flushed = t.hkid_flushed ? t.wbt_flushed | bit : t.wbt_flushed & ~bit;
  } else if (intr_point == 0) {
    return TDX_WBCACHE_RESUME_ERROR;
  }
  ++intr_point;
  if (c.txn.host_interrupt) {
    c.stopped_after_work = true;  // a sub-block written back, the WBT and the KOT held
    return TDX_INTERRUPTED_RESUMABLE;
  }
  intr_point = 0;
  for (auto& [_, t] : tds_)
    if (t.wbt_flushed & bit) t.wbinvd_bitmap &= ~bit;
  return TDX_SUCCESS;
}

// The Dynamic PAMT leaves are not in the 1.5 sources; their order follows
// intel/tdx-module at a56a9173 (tdh_phymem_pamt_add.c, tdh_phymem_pamt_remove.c).
namespace {
// RCX = page_info of a 2M range: level 1, no reserved or KeyID bits, aligned.
bool pamt_range_ok(u64 rcx) {
  const Hpa region = rcx & ~u64(0xFFF);
  return (rcx & 0xFFF) == 1 && hpa_operand_ok(region, level_size(PG_LEVEL_2M));
}
}  // namespace

// RCX = 2M range | 1, RDX = PAMT page 0, R8 = PAMT page 1: both page operands'
// format and TDMR, the range's TDMR, its 2M PAMT entry exclusively (free, no
// pair yet), then each page outside the range free in the PAMT, then neither
// already a PAMT page (the second also not the first).
Status TdxModule::phymem_pamt_add(Call& c) {
  if (!pamt_.dynamic()) return with_operand(TDX_OPERAND_INVALID, operand::RAX);
  if (!pamt_range_ok(c.in.rcx)) return with_operand(TDX_OPERAND_INVALID, operand::RCX);
  const Hpa region = c.in.rcx & ~u64(0xFFF);
  const Hpa pages[2] = {c.in.rdx, c.in.r8};
  const u32 ops[2] = {operand::RDX, operand::R8};
  if (Status s = pair_operands_ok(pages, ops)) return s;
  if (!pamt_.in_tdmr(region)) return with_operand(TDX_OPERAND_ADDR_RANGE_ERROR, operand::RCX);
  if (!lock_pamt_walk(region, PG_LEVEL_2M, true)) return with_operand(TDX_OPERAND_BUSY, operand::RCX);
  if (pamt_.has_pair(region) || pamt_.leaf_level(region) != PG_LEVEL_4K)
    return with_operand(TDX_HPA_RANGE_NOT_FREE, operand::RCX);
  if (Status s = pair_pages_free(pages, ops, region)) return s;
  set_page_tag(mem_, pages[0], 0);
  set_page_tag(mem_, pages[1], 0);
  pamt_.install_pair(region, pages[0], pages[1]);
  pages_given_ = true;
  return TDX_SUCCESS;
}

// A PAMT page pair's operands (PAMT.ADD's RDX/R8, DEMOTE's R12/R13): each an
// aligned 4K HPA without KeyID bits, inside a TDMR.
Status TdxModule::pair_operands_ok(const Hpa (&pages)[2], const u32 (&ops)[2]) const {
  for (int i = 0; i < 2; ++i) {
    if (!hpa_operand_ok(pages[i], kPageSize)) return with_operand(TDX_OPERAND_INVALID, ops[i]);
    if (!pamt_.in_tdmr(pages[i])) return with_operand(TDX_OPERAND_ADDR_RANGE_ERROR, ops[i]);
  }
  return TDX_SUCCESS;
}

// Then each page outside the 2M `region` the pair will serve (PAMT.ADD
// checks the pages inside it with the range; ~0: none is exempt): its PAMT walk
// shared (the 2M entry of its own range, which a PAMT.ADD of that range holds
// exclusively: TDX_OPERAND_BUSY), free at 4K; then neither is a PAMT page
// already and the second is not the first (TDX_PAGE_NOT_FREE).
Status TdxModule::pair_pages_free(const Hpa (&pages)[2], const u32 (&ops)[2], Hpa region) {
  for (int i = 0; i < 2; ++i) {
    const Hpa p = pages[i];
    if ((p >> 21) == (region >> 21)) continue;
    if (!lock_pamt_walk(p, PG_LEVEL_4K, false)) return with_operand(TDX_OPERAND_BUSY, ops[i]);
    const int pg = pamt_.leaf_level(p);
    if (pg != PG_LEVEL_4K || pamt_.get(p, pg).pt != PageType::PT_NDA) return with_operand(TDX_PAGE_NOT_FREE, ops[i]);
  }
  if (pamt_.is_pamt_page(pages[0])) return with_operand(TDX_PAGE_NOT_FREE, ops[0]);
  if (pamt_.is_pamt_page(pages[1]) || pages[1] == pages[0]) return with_operand(TDX_PAGE_NOT_FREE, ops[1]);
  return TDX_SUCCESS;
}

// RCX = 2M range | 1. RDX, R8 out = the two PAMT pages. A pair whose pages
// still hold a used entry is TDX_PAMT_PAGE_NOT_EMPTY with the page's index
// (0: the range's first 256 4K pages, 1: the last 256) as operand.
Status TdxModule::phymem_pamt_remove(Call& c) {
  if (!pamt_.dynamic()) return with_operand(TDX_OPERAND_INVALID, operand::RAX);
  if (!pamt_range_ok(c.in.rcx)) return with_operand(TDX_OPERAND_INVALID, operand::RCX);
  const Hpa region = c.in.rcx & ~u64(0xFFF);
  if (!pamt_.in_tdmr(region)) return with_operand(TDX_OPERAND_ADDR_RANGE_ERROR, operand::RCX);
  if (!lock_pamt_walk(region, PG_LEVEL_2M, true)) return with_operand(TDX_OPERAND_BUSY, operand::RCX);
  if (!pamt_.has_pair(region)) return with_operand(TDX_NO_PAMT_PAGE_PAIR, operand::RCX);
  if (pamt_.used_4k_in_region(region)) {
    constexpr unsigned kEntriesPerPage = unsigned(kPageSize / kPamtEntryBytes);
    u32 page = 1;
    for (unsigned i = 0; i < kEntriesPerPage && page == 1; ++i)
      if (pamt_.get(region + i * kPageSize, PG_LEVEL_4K).pt != PageType::PT_NDA) page = 0;
    return with_operand(TDX_PAMT_PAGE_NOT_EMPTY, page);
  }
  const PamtPair p = pamt_.remove_pair(region);
  c.out.rdx = p.page0;
  c.out.r8 = p.page1;
  return TDX_SUCCESS;
}

}  // namespace septsim::seam
