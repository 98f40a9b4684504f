// The guest side: TDG.MEM.PAGE.ACCEPT (tdx-seam.md 3.4). A guest acquirer
// loses to any host holder of the entry lock (host priority, 7.1).
#include "seam/sept_state_table.h"
#include "seam/tdx_module.h"
#include "seam/tdx_module_call.h"

namespace septsim::seam {

using septe::SeptState;

// RCX = GPA|level (4K or 2M), from the TD vCPU `txn.tdvpr`.
Status TdxModule::mem_page_accept(Call& c) {
  Td* t = td_of_vcpu(c.txn.tdvpr);
  if (!t || !t->sept) return with_operand(TDX_OPERAND_INVALID, operand::RAX);
  c.td = t;
  if (Status s = decode_page_info(c, 0, 1)) return s;
  c.w = t->sept->walk(c.gpa, c.level);
  c.walked = true;
  const SeptWalk& w = c.w;
  if (!locks_.acquire(LockKind::SeptEntry, w.entry_hpa, true)) return TDX_OPERAND_BUSY;  // HOST_PRIORITY, converted
  if (!w.reached) {
    // A leaf above the requested size: already accepted if MAPPED, else the
    // VMM must split or map it (EPT-violation TD exit).
    if (w.state == SeptState::MAPPED) return with_operand(TDX_PAGE_ALREADY_ACCEPTED, u32(w.level));
    return SEPTSIM_TD_EXIT_EPT_VIOLATION;
  }
  if (w.state == SeptState::NL_MAPPED || w.state == SeptState::NL_BLOCKED) return TDX_PAGE_SIZE_MISMATCH;
  if (w.state == SeptState::MAPPED) return with_operand(TDX_PAGE_ALREADY_ACCEPTED, u32(w.level));
  if (!tdcall_sept_state_allowed(TdcallLeaf::TDG_MEM_PAGE_ACCEPT, w.state)) return SEPTSIM_TD_EXIT_EPT_VIOLATION;
  const Hpa page = septe::hpa_of(w.entry) & ~(tdx_level_size(c.level) - 1);
  for (u64 i = 0; i < pages_4k(c.level); ++i) set_page_tag(mem_, page + i * kPageSize, 0);  // zeroed
  t->sept->write(w.entry_hpa, septe::make_leaf(SeptState::MAPPED, page));
  return TDX_SUCCESS;
}

}  // namespace septsim::seam
