// The guest side: TDG.MEM.PAGE.ACCEPT (tdg_mem_page_accept.c). A guest acquirer
// loses to any host holder of the entry lock (host priority, 7.1).
#include "seam/sept_state_table.h"
#include "seam/tdx_module.h"
#include "seam/tdx_module_call.h"

namespace septsim::seam {

using septe::SeptState;

// RCX = GPA|level (4K or 2M), from the TD vCPU `txn.tdvpr`
// (tdg_mem_page_accept.c, check_tdaccept_failure). A walk that stops above
// the requested level is decided before the entry lock: ALREADY_ACCEPTED on
// a MAPPED leaf, else an EPT-violation TD exit. Then the entry lock (a host
// holder makes it TDX_OPERAND_BUSY on RCX), then the size and the state. The
// operand of SIZE_MISMATCH and ALREADY_ACCEPTED is the level the walk reached.
Status TdxModule::mem_page_accept(Call& c) {
  Td* t = td_of_vcpu(c.txn.tdvpr);
  if (!t || !t->sept) return with_operand(TDX_OPERAND_INVALID, operand::RAX);
  c.td = t;
  if (Status s = decode_page_info(c, 0, 1)) return s;
  c.w = t->sept->walk(c.gpa, c.level);
  c.walked = true;
  const SeptWalk& w = c.w;
  if (!w.reached) {
    if (w.state == SeptState::MAPPED) return with_operand(TDX_PAGE_ALREADY_ACCEPTED, u32(w.level));
    return accept_exit(c);
  }
  // HOST_PRIORITY, which the TD dispatcher turns into TDX_OPERAND_BUSY.
  if (!locks_.acquire(LockKind::SeptEntry, w.entry_hpa, true)) return with_operand(TDX_OPERAND_BUSY, operand::RCX);
  if (w.state == SeptState::NL_MAPPED || w.state == SeptState::NL_BLOCKED)
    return with_operand(TDX_PAGE_SIZE_MISMATCH, u32(w.level));
  if (w.state == SeptState::MAPPED) return with_operand(TDX_PAGE_ALREADY_ACCEPTED, u32(w.level));
  if (!tdcall_sept_state_allowed(TdcallLeaf::TDG_MEM_PAGE_ACCEPT, w.state)) return accept_exit(c);
  const Hpa page = septe::hpa_of(w.entry) & ~(tdx_level_size(c.level) - 1);
  if (c.level == 0) {
    set_page_tag(mem_, page, 0);  // init_sept_4k_page: zeroed
  } else {
    // A 2M page is zeroed 4K chunk by 4K chunk from the count its PENDING
    // entry keeps in bits 20:12 (accept_counter). After each chunk but the
    // last the module looks for a pending interrupt (guest side); if there
    // is one it writes the entry back still PENDING with the count advanced
    // and stops (tdg_mem_page_accept.c, tdg_mem_page_accept).
    u64 n = septe::accept_counter(w.entry);
    for (;;) {
      set_page_tag(mem_, page + n * kPageSize, 0);
      ++c.accept_chunks;
      if (n == kPtesPerTable - 1) break;
      ++n;
      if (c.txn.host_interrupt) {
        t->sept->write(w.entry_hpa, septe::with_accept_counter(w.entry, n));
        return accept_interrupted(c);
      }
    }
  }
  t->sept->write(w.entry_hpa, septe::make_leaf(SeptState::MAPPED, page));
  return TDX_SUCCESS;
}

// td_call (tdx_td_dispatcher.c): an interrupted TDCALL leaves the guest's
// RAX and RIP as they were, so the guest runs the TDCALL again; the pending
// interrupt makes that resumption an external-interrupt exit to the VMM
// first. The model reports that exit in the transaction's status (the
// guest's registers are not modelled); the vCPU is outside the TD.
Status TdxModule::accept_interrupted(Call& c) {
  if (TdVcpu* v = c.td->vcpu(c.txn.tdvpr)) c.extra_cycles = leave_guest(*c.td, *v);
  return SEPTSIM_TD_EXIT_INTERRUPT;
}

// async_tdexit_ept_violation: the vCPU leaves the TD (its epoch reference
// goes) and the VMM sees an EPT violation; the exit's cycles are the call's.
Status TdxModule::accept_exit(Call& c) {
  if (TdVcpu* v = c.td->vcpu(c.txn.tdvpr)) c.extra_cycles = leave_guest(*c.td, *v);
  return SEPTSIM_TD_EXIT_EPT_VIOLATION;
}

}  // namespace septsim::seam
