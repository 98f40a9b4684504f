// Secure-EPT leaves of the VMM: SEPT.ADD, PAGE.ADD, PAGE.AUG, RANGE.BLOCK,
// RANGE.UNBLOCK, MEM.TRACK, PAGE.REMOVE, SEPT.REMOVE, SEPT.RD (intel/tdx-module
// src/vmm_dispatcher/api_calls). Each runs the common prologue, then the
// SEPT state table, then its own checks in the module's order.
#include "seam/sept_state_table.h"
#include "seam/tdx_module.h"
#include "seam/tdx_module_call.h"

namespace septsim::seam {

using septe::SeptState;
using Tree = TdxModule::MemRule::Tree;

namespace {

constexpr u64 kNullPa = ~u64{0};        // NULL_PA: no page given
constexpr u64 kUnused = u64{1} << 63;   // SEPT.ADD: the page was not needed

bool is_blocked_leaf(SeptState s) { return s == SeptState::BLOCKED || s == SeptState::PENDING_BLOCKED; }

// The entry with its state bits replaced, keeping HPA and SVE.
u64 with_state(u64 e, SeptState s) {
  u64 v = (e & ~(septe::kStateBits | septe::kRwx | (7ull << septe::kMtShift))) | septe::kStateEntryBits[size_t(s)];
  if (s == SeptState::MAPPED) v |= septe::kRwx | septe::kMtWb;
  else if (septe::is_leaf_state(s)) v |= septe::kMtWb;
  else if (s == SeptState::NL_MAPPED) v |= septe::kRwx;
  return v;
}

}  // namespace

// RCX = GPA|level of the parent entry, RDX = td_handle_and_flags (bit 0:
// allow_existing, any version), R8 = the new SEPT page; version 1 adds R9-R11,
// the L2 VMs' pages (tdh_mem_sept_add.c). A page operand of NULL_PA (all
// ones) adds nothing, bit 63 of any other is ignored. Version 1 returns
// R8-R11 on every path after the version check: NULL_PA for a page it added,
// the page with bit 63 set for one an existing table made unnecessary, the
// input for one never reached.
Status TdxModule::mem_sept_add(Call& c) {
  const u64 in[4] = {c.in.r8, c.in.r9, c.in.r10, c.in.r11};
  u64 flagged[4] = {c.in.r8, kNullPa, kNullPa, kNullPa};
  for (unsigned vm = 0; vm < (c.version ? 4u : 1u); ++vm) flagged[vm] = in[vm] == kNullPa ? kNullPa : in[vm] & ~kUnused;
  const Status s = sept_add_checked(c, flagged);
  if (c.version) c.out.r8 = flagged[0], c.out.r9 = flagged[1], c.out.r10 = flagged[2], c.out.r11 = flagged[3];
  return s;
}

Status TdxModule::sept_add_checked(Call& c, u64 (&pages)[4]) {
  if (Status s = mem_prologue(c, MemRule{true, false, true, Tree::Shared, 1, -1, MemRule::Handle::Flags})) return s;
  if (!sept_state_allowed(c.leaf(), c.w.state)) return sept_fail(c, TDX_EPT_ENTRY_STATE_INCORRECT);
  // process_l1_page: no page needs version 1 and an existing table; a page
  // needs a FREE entry, or allow_existing to leave it unused.
  const Hpa page = pages[0];
  if (page == kNullPa) {
    if (c.version == 0) return with_operand(TDX_OPERAND_INVALID, operand::R8);
    if (c.w.state != SeptState::NL_MAPPED) return sept_fail(c, TDX_EPT_ENTRY_STATE_INCORRECT);
  } else if (c.w.state == SeptState::FREE) {
    if (Status s = take_page_4k(c, page, operand::R8)) return s;
  } else if (c.in.rdx & 1) {
    pages[0] |= kUnused;
  } else {
    return sept_fail(c, TDX_EPT_ENTRY_STATE_INCORRECT);
  }
  // process_l2_pages: the model's TDs have no L2 VMs (NUM_L2_VMS = 0).
  for (unsigned vm = 1; c.version && vm < 4; ++vm)
    if (pages[vm] != kNullPa) return with_operand(TDX_OPERAND_INVALID, operand::R8 + vm);
  if (pages[0] & kUnused) return TDX_SUCCESS;
  c.td->sept->init_page(page);
  pamt_.set(page, PG_LEVEL_4K, PamtEntry{PageType::PT_EPT, c.td->tdr, 0});
  ++c.td->chldcnt;
  ++sept_pages_;
  c.td->sept->write(c.w.entry_hpa, septe::make_non_leaf(page));
  pages[0] = kNullPa;
  return TDX_SUCCESS;
}

// RCX = GPA|0, RDX = TDR, R8 = target page, R9 = source page (shared).
Status TdxModule::mem_page_add(Call& c) {
  if (Status s = mem_prologue(c, MemRule{true, true, false, Tree::None, 0, 0})) return s;
  if (!sept_state_allowed(c.leaf(), c.w.state)) return sept_fail(c, TDX_EPT_ENTRY_STATE_INCORRECT);
  // shared_hpa_check_with_pwr_2_alignment: the source's PAMT state is not looked at.
  const Hpa src = c.in.r9;
  if (!hpa_operand_ok(src, kPageSize)) return with_operand(TDX_OPERAND_INVALID, operand::R9);
  const Hpa page = c.in.r8;
  if (Status s = take_page_4k(c, page, operand::R8)) return s;
  set_page_tag(mem_, page, page_tag(mem_, src));
  pamt_.set(page, PG_LEVEL_4K, PamtEntry{PageType::PT_REG, c.td->tdr, 0});
  ++c.td->chldcnt;
  c.td->sept->write(c.w.entry_hpa, septe::make_leaf(SeptState::MAPPED, page));
  return TDX_SUCCESS;
}

// RCX = GPA|level (4K or 2M), RDX = TDR, R8 = page.
Status TdxModule::mem_page_aug(Call& c) {
  if (Status s = mem_prologue(c, MemRule{true, false, true, Tree::Shared, 0, 1})) return s;
  if (!sept_state_allowed(c.leaf(), c.w.state)) return sept_fail(c, TDX_EPT_ENTRY_STATE_INCORRECT);
  const Hpa page = c.in.r8;
  const int pg = tdx_to_pg_level(c.level);
  if (c.level == 0) {
    if (Status s = take_page_4k(c, page, operand::R8)) return s;
  } else {
    // check_and_lock_free_range_hpa: the PAMT walk takes the 2M entry before
    // the range's metadata is read.
    if (!hpa_operand_ok(page, level_size(pg))) return with_operand(TDX_OPERAND_INVALID, operand::R8);
    if (!pamt_.in_tdmr(page)) return with_operand(TDX_OPERAND_ADDR_RANGE_ERROR, operand::R8);
    if (!lock_pamt_walk(page, pg, true)) return with_operand(TDX_OPERAND_BUSY, operand::R8);
    if (Status s = pamt_.check_free_2m(page)) return with_operand(s, operand::R8);
  }
  pamt_.set(page, pg, PamtEntry{PageType::PT_REG, c.td->tdr, 0});
  c.td->chldcnt += pages_4k(c.level);
  c.td->sept->write(c.w.entry_hpa, septe::make_leaf(SeptState::PENDING, page));
  return TDX_SUCCESS;
}

// RCX = GPA|level, RDX = TDR. Records BEPOCH = TD_EPOCH.
Status TdxModule::mem_range_block(Call& c) {
  if (Status s = mem_prologue(c, MemRule{true, false, true, Tree::Exclusive, 0, -1})) return s;
  // tdh_mem_range_block.c: a state BLOCK does not take is
  // TDX_GPA_RANGE_ALREADY_BLOCKED if it is any blocked state.
  if (!sept_state_allowed(c.leaf(), c.w.state))
    return sept_fail(c, septe::is_blocked_state(c.w.state) ? TDX_GPA_RANGE_ALREADY_BLOCKED
                                                           : TDX_EPT_ENTRY_STATE_INCORRECT);
  SeptState to = SeptState::BLOCKED;
  if (c.w.state == SeptState::NL_MAPPED) to = SeptState::NL_BLOCKED;
  if (c.w.state == SeptState::PENDING || c.w.state == SeptState::PENDING_BLOCKEDW) to = SeptState::PENDING_BLOCKED;
  u64 e = with_state(c.w.entry, to);
  if (to == SeptState::PENDING_BLOCKED && c.level == 1) e &= ~septe::kAcceptCounterMask;
  c.td->sept->write(c.w.entry_hpa, e);
  const Hpa page = septe::hpa_of(e) & ~(tdx_level_size(c.level) - 1);
  const int pg = septe::is_leaf_state(to) ? tdx_to_pg_level(c.level) : PG_LEVEL_4K;
  pamt_.set_bepoch(septe::is_leaf_state(to) ? page : septe::hpa_of(e), pg, c.td->epochs.td_epoch);
  return TDX_SUCCESS;
}

// RCX = GPA|level, RDX = TDR.
Status TdxModule::mem_range_unblock(Call& c) {
  if (Status s = mem_prologue(c, MemRule{true, false, true, Tree::Exclusive, 0, -1})) return s;
  if (!sept_state_allowed(c.leaf(), c.w.state)) return sept_fail(c, TDX_EPT_ENTRY_STATE_INCORRECT);
  const bool leaf = septe::is_leaf_state(c.w.state);
  const Hpa page = septe::hpa_of(c.w.entry);
  if (tt_gate(c) && !tracked(c, page, leaf ? tdx_to_pg_level(c.level) : PG_LEVEL_4K))
    return with_operand(TDX_TLB_TRACKING_NOT_DONE, operand::SEPT_TREE);
  SeptState to = c.w.state == SeptState::NL_BLOCKED ? SeptState::NL_MAPPED
                 : c.w.state == SeptState::BLOCKED  ? SeptState::MAPPED
                                                    : SeptState::PENDING;
  c.td->sept->write(c.w.entry_hpa, with_state(c.w.entry, to));
  return TDX_SUCCESS;
}

// RCX = TDR. Advances TD_EPOCH unless a vCPU still runs in the previous one.
Status TdxModule::mem_track(Call& c) {
  if (Status s = find_td(c, c.in.rcx, operand::RCX, false)) return s;
  if (Status s = check_build_state(c, true)) return s;
  if (!locks_.acquire(LockKind::Epoch, c.td->tdr, true)) return with_operand(TDX_OPERAND_BUSY, operand::TD_EPOCH);
  if (c.td->epochs.previous_epoch_busy()) return TDX_PREVIOUS_TLB_EPOCH_BUSY;
  c.td->epochs.advance();
  return TDX_SUCCESS;
}

// RCX = GPA|level (4K/2M/1G), RDX = TDR. RCX out = the removed HPA.
Status TdxModule::mem_page_remove(Call& c) {
  if (Status s = mem_prologue(c, MemRule{true, false, true, Tree::Shared, 0, 2})) return s;
  if (!sept_state_allowed(c.leaf(), c.w.state)) return sept_fail(c, TDX_EPT_ENTRY_STATE_INCORRECT);
  const int pg = tdx_to_pg_level(c.level);
  const Hpa page = septe::hpa_of(c.w.entry) & ~(level_size(pg) - 1);
  if (!lock_pamt_entry(page, pg)) return with_operand(TDX_OPERAND_BUSY, operand::RCX);
  if (tt_gate(c)) {
    if (!is_blocked_leaf(c.w.state)) return sept_fail(c, TDX_GPA_RANGE_NOT_BLOCKED);
    if (!tracked(c, page, pg)) return with_operand(TDX_TLB_TRACKING_NOT_DONE, operand::RCX);
  }
  c.td->sept->write(c.w.entry_hpa, septe::kInitValue);
  c.td->chldcnt -= pages_4k(c.level);
  const bool hint = pamt_.set(page, pg, PamtEntry{});
  c.out.rcx = page | (hint ? kPamtRemovalHint : 0);
  return TDX_SUCCESS;
}

// RCX = GPA|level of the parent entry, RDX = TDR. RCX out = the SEPT page.
Status TdxModule::mem_sept_remove(Call& c) {
  if (Status s = mem_prologue(c, MemRule{true, false, true, Tree::Exclusive, 1, -1})) return s;
  if (!sept_state_allowed(c.leaf(), c.w.state)) return sept_fail(c, TDX_EPT_ENTRY_STATE_INCORRECT);
  const Hpa child = septe::hpa_of(c.w.entry);
  if (Status s = claim_blocked_table(c, child)) return s;
  for (unsigned i = 0; i < kPtesPerTable; ++i)
    if (septe::state_or_free(c.td->sept->read(child + 8 * i)) != SeptState::FREE)
      return sept_fail(c, TDX_EPT_PAGE_NOT_FREE);
  c.td->sept->write(c.w.entry_hpa, septe::kInitValue);
  c.out.rcx = release_sept_page(c, child);
  return TDX_SUCCESS;
}

Status TdxModule::claim_blocked_table(Call& c, Hpa child) {
  if (!lock_pamt_entry(child, PG_LEVEL_4K)) return with_operand(TDX_OPERAND_BUSY, operand::RCX);
  if (tt_gate(c)) {
    if (c.w.state != SeptState::NL_BLOCKED) return sept_fail(c, TDX_GPA_RANGE_NOT_BLOCKED);
    if (!tracked(c, child, PG_LEVEL_4K)) return with_operand(TDX_TLB_TRACKING_NOT_DONE, operand::RCX);
  }
  return TDX_SUCCESS;
}

u64 TdxModule::release_sept_page(Call& c, Hpa child) {
  --c.td->chldcnt;
  --sept_pages_;
  const bool hint = pamt_.set(child, PG_LEVEL_4K, PamtEntry{});
  return child | (hint ? kPamtRemovalHint : 0);
}

// RCX = GPA|level, RDX = TDR (bit 0: read the L2 attributes, debug TDs
// only; tdh_mem_sept_rd.c). RCX/RDX out = the entry (1.4); R8 = the L2
// attributes, none without L2 VMs.
Status TdxModule::mem_sept_rd(Call& c) {
  if (Status s = mem_prologue(c, MemRule{true, false, true, Tree::Shared, 0, -1, MemRule::Handle::ReadL2})) return s;
  c.out.rcx = septe_arch_value(c.w.entry);
  c.out.rdx = septe_level_state(c.w.level, c.w.state);
  return TDX_SUCCESS;
}

}  // namespace septsim::seam
