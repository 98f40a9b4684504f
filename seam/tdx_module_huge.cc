// Page-size changes and moves: PAGE.PROMOTE, PAGE.DEMOTE, PAGE.RELOCATE
// (tdh_mem_page_promote.c, tdh_mem_page_demote.c; the Dynamic PAMT page pairs in R12/R13).
#include "seam/sept_state_table.h"
#include "seam/tdx_module.h"
#include "seam/tdx_module_call.h"

namespace septsim::seam {

// PROMOTE and DEMOTE check for a pending host interrupt once every check has
// passed and before they commit: TDX_INTERRUPTED_RESTARTABLE with RCX/RDX as
// the VMM passed them (tdh_mem_page_promote.c, tdh_mem_page_demote.c).
Status TdxModule::host_interrupt_restart(Call& c) {
  if (!c.txn.host_interrupt) return TDX_SUCCESS;
  c.out.rcx = c.in.rcx;
  c.out.rdx = c.in.rdx;
  return TDX_INTERRUPTED_RESTARTABLE;
}

using septe::SeptState;
using Tree = TdxModule::MemRule::Tree;

namespace {

constexpr u64 kChildCompareMask = ~(septe::kHpaMask | septe::kTdel | septe::kHp);

SeptState unblocked(SeptState s) {
  if (s == SeptState::BLOCKED) return SeptState::MAPPED;
  if (s == SeptState::PENDING_BLOCKED) return SeptState::PENDING;
  return s;
}

bool blocked_leaf(SeptState s) { return s == SeptState::BLOCKED || s == SeptState::PENDING_BLOCKED; }

}  // namespace

// RCX = GPA|level of the merged page (1 = 2M, 2 = 1G), RDX = TDR.
// RCX out = the freed SEPT page; DPAMT 4K->2M: R12/R13 = the freed pair.
Status TdxModule::mem_page_promote(Call& c) {
  if (Status s = mem_prologue(c, MemRule{true, false, true, Tree::Shared, 1, 2})) return s;
  if (!sept_state_allowed(c.leaf(), c.w.state)) return sept_fail(c, TDX_EPT_ENTRY_STATE_INCORRECT);
  const Hpa child = septe::hpa_of(c.w.entry);
  if (Status s = claim_blocked_table(c, child)) return s;
  // is_sept_page_valid_for_merge (tdh_mem_page_promote.c): each child entry
  // is locked, then checked, in index order; either failure names RCX and
  // returns the parent entry.
  const u64 e0 = c.td->sept->read(child);
  const u64 child_size = tdx_level_size(c.level - 1);
  const u64 merged_size = tdx_level_size(c.level);
  // sept_cleanup_if_pending: a 2M child's accept count is not compared.
  const Hpa hpa0 = septe::leaf_hpa(e0, child_size);
  const SeptState s0 = septe::state_or_free(e0);
  for (unsigned i = 0; i < kPtesPerTable; ++i) {
    if (!locks_.acquire(LockKind::SeptEntry, child + 8 * i, true)) return sept_fail(c, TDX_OPERAND_BUSY);
    const u64 e = c.td->sept->read(child + 8 * i);
    const bool ok = i == 0 ? (s0 == SeptState::MAPPED || s0 == SeptState::PENDING) && !(hpa0 & (merged_size - 1))
                           : (e & kChildCompareMask) == (e0 & kChildCompareMask) &&
                                 septe::leaf_hpa(e, child_size) == hpa0 + i * child_size;
    if (!ok) return sept_fail(c, TDX_EPT_INVALID_PROMOTE_CONDITIONS);
  }
  if (Status s = host_interrupt_restart(c)) {
    c.stopped_after_work = true;  // the 512 entries were locked and compared
    return s;
  }

  const int child_pg = tdx_to_pg_level(c.level - 1);
  const PamtEntry owner = pamt_.get(hpa0, child_pg);
  for (unsigned i = 0; i < kPtesPerTable; ++i) pamt_.set(hpa0 + i * child_size, child_pg, PamtEntry{});
  pamt_.set(hpa0, tdx_to_pg_level(c.level), PamtEntry{owner.pt, owner.owner, 0});
  if (pamt_.dynamic() && c.level == 1 && pamt_.has_pair(hpa0)) {
    const PamtPair p = pamt_.remove_pair(hpa0);
    c.out.r12 = p.page0;
    c.out.r13 = p.page1;
  }
  c.td->sept->write(c.w.entry_hpa, (e0 & ~septe::kHpaMask) | hpa0);
  c.out.rcx = release_sept_page(c, child);
  return TDX_SUCCESS;
}

// RCX = GPA|level of the page to split (1 = 2M, 2 = 1G), RDX = TDR (+flags),
// R8 = new SEPT page; DPAMT 2M->4K: R12/R13 = the PAMT_4K pair for the page.
Status TdxModule::mem_page_demote(Call& c) {
  if (Status s = mem_prologue(c, MemRule{true, false, true, Tree::Shared, 1, 2, MemRule::Handle::Flags})) return s;
  if (!sept_state_allowed(c.leaf(), c.w.state)) return sept_fail(c, TDX_EPT_ENTRY_STATE_INCORRECT);
  const int pg = tdx_to_pg_level(c.level);
  const Hpa page = septe::hpa_of(c.w.entry) & ~(level_size(pg) - 1);
  if (tt_gate(c)) {
    if (!blocked_leaf(c.w.state)) return sept_fail(c, TDX_GPA_RANGE_NOT_BLOCKED);
    if (!tracked(c, page, pg)) return with_operand(TDX_TLB_TRACKING_NOT_DONE, operand::RCX);
  }
  const Hpa table = c.in.r8;
  if (Status s = take_page_4k(c, table, operand::R8)) return s;
  // With Dynamic PAMT a 2M DEMOTE does PAMT.ADD's work for the page's range
  // with the pair in R12/R13 (the kernel's tdh_mem_page_demote in the TDX
  // huge-page series, dpamt_copy_to_regs from R12; "[RFC PATCH v5 30/45]
  // x86/virt/tdx: Add API to demote a 2MB mapping", from Xiaoyao Li, posted
  // 2026-01-28, and Yan Zhao's review note on it, kvm@ 2026-06-11):
  // the pair pages get PAMT.ADD's checks, and their own ranges' 2M PAMT
  // entries are taken shared, so a concurrent PAMT.ADD of such a range makes
  // one of the two TDX_OPERAND_BUSY. A register left 0 is no pair at all.
  const bool need_pair = pamt_.dynamic() && c.level == 1 && !pamt_.has_pair(page);
  if (need_pair) {
    const Hpa pair[2] = {c.in.r12, c.in.r13};
    const u32 ops[2] = {operand::R12, operand::R13};
    if (!pair[0] || !pair[1]) return TDX_MISSING_PAMT_PAGE_PAIR;
    if (Status s = pair_operands_ok(pair, ops)) return s;
    // No range is exempt: a pair page inside the split page is the TD's.
    if (Status s = pair_pages_free(pair, ops, ~Hpa{0})) return s;
  }
  // ENHANCE_DEMOTE_INTERRUPTIBILITY (TDX_FEATURES0 bit 51, newer modules):
  // a basic TD's DEMOTE is not interrupted (the huge-page RFC v5, 30/45).
  if (!demote_uninterruptible_)
    if (Status s = host_interrupt_restart(c)) return s;
  // tdh_mem_page_demote.c reads the split page's PAMT entry without locking it.
  const PamtEntry owner = pamt_.get(page, pg);
  pamt_.set(page, pg, PamtEntry{});
  if (need_pair) pamt_.install_pair(page, c.in.r12, c.in.r13);
  const u64 child_size = tdx_level_size(c.level - 1);
  const SeptState to = unblocked(c.w.state);
  const u64 child0 = septe::make_leaf(to, page);
  c.td->sept->init_page(table);
  for (unsigned i = 0; i < kPtesPerTable; ++i) {
    c.td->sept->write(table + 8 * i, child0 | (page + i * child_size));
    pamt_.set(page + i * child_size, pg - 1, PamtEntry{owner.pt, owner.owner, 0});
  }
  pamt_.set(table, PG_LEVEL_4K, PamtEntry{PageType::PT_EPT, c.td->tdr, 0});
  ++c.td->chldcnt;
  ++sept_pages_;
  c.td->sept->write(c.w.entry_hpa, septe::make_non_leaf(table));
  return TDX_SUCCESS;
}

// RCX = GPA|0, RDX = TDR, R8 = new page. RCX out = the old HPA.
Status TdxModule::mem_page_relocate(Call& c) {
  if (Status s = mem_prologue(c, MemRule{true, false, true, Tree::Shared, 0, 0})) return s;
  if (!sept_state_allowed(c.leaf(), c.w.state)) return sept_fail(c, TDX_EPT_ENTRY_STATE_INCORRECT);
  // tdh_mem_page_relocate.c: the current HPA as the target is refused before
  // the page's PAMT lock and the BLOCK/TRACK requirements.
  const Hpa old = septe::hpa_of(c.w.entry);
  if (c.in.r8 == old) return with_operand(TDX_OPERAND_INVALID, operand::R8);
  if (!lock_pamt_entry(old, PG_LEVEL_4K)) return with_operand(TDX_OPERAND_BUSY, operand::RCX);
  if (tt_gate(c)) {
    if (!blocked_leaf(c.w.state)) return sept_fail(c, TDX_GPA_RANGE_NOT_BLOCKED);
    if (!tracked(c, old, PG_LEVEL_4K)) return with_operand(TDX_TLB_TRACKING_NOT_DONE, operand::RCX);
  }
  const Hpa page = c.in.r8;
  if (Status s = take_page_4k(c, page, operand::R8)) return s;
  const SeptState to = unblocked(c.w.state);
  if (to != SeptState::PENDING) set_page_tag(mem_, page, page_tag(mem_, old));
  const PamtEntry owner = pamt_.get(old, PG_LEVEL_4K);
  const bool hint = pamt_.set(old, PG_LEVEL_4K, PamtEntry{});
  pamt_.set(page, PG_LEVEL_4K, PamtEntry{owner.pt, owner.owner, 0});
  const u64 e = (c.w.entry & ~(septe::kHpaMask | septe::kStateBits | septe::kRwx | (7ull << septe::kMtShift)));
  c.td->sept->write(c.w.entry_hpa, (e & septe::kSve) | septe::make_leaf(to, page));
  c.out.rcx = old | (hint ? kPamtRemovalHint : 0);
  return TDX_SUCCESS;
}

}  // namespace septsim::seam
