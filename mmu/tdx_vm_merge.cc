// The TDX module's side of merging a split private range back into a huge
// leaf (the TDX module's TDH.MEM.PAGE.PROMOTE): the 2M entry is BLOCKed as a non-leaf and
// TRACKed before PROMOTE checks the 512 children.
#include "mmu/sept_level.h"
#include "mmu/tdx_vm.h"

#include "model/hex.h"
#include "seam/sept_entry.h"

namespace septsim::mmu {

using seam::Leaf;
using seam::SeamcallRegs;
using seam::Status;

namespace {
// Where a refused merge would fire: the RFC's PROMOTE path, no merged kernel function.
constexpr const char* kMergePath = "the merge policy's PROMOTE path (mmu.tdx_merge_policy, not in the merged kernel)";
}  // namespace

bool TdxVm::block_for_merge(Gfn base, int level, KvmOp& op) {
  return mem_op(Leaf::TDH_MEM_RANGE_BLOCK, base, level, op);
}

bool TdxVm::unblock_for_merge(Gfn base, int level, KvmOp& op) {
  if (mem_op(Leaf::TDH_MEM_RANGE_UNBLOCK, base, level, op)) return true;
  bug(kMergePath);  // a range KVM BLOCKed itself must unblock
  return false;
}

TdxVm::PromoteResult TdxVm::promote(Gfn base, int level, Hpa page, Pfn external_spt, KvmOp& op) {
  SeamcallRegs r;
  r.rcx = sept_page_info(base, level);
  r.rdx = handle_.tdr;
  note_pamt(page);
  note_pamt(external_spt << kPageShift);
  const Status s = call(Leaf::TDH_MEM_PAGE_PROMOTE, r, op);
  if (seam::status_class(s) == seam::TDX_EPT_INVALID_PROMOTE_CONDITIONS) {
    fail("TDH.MEM.PAGE.PROMOTE", gfn_to_gpa(base), s);
    // debug.inject=free-linked-sept: the refused PROMOTE's table page goes
    // back to the host while the Secure EPT still links it.
    if (inject(Inject::FreeLinkedSept)) mem_.free(external_spt);
    unblock_for_merge(base, level, op);
    return PromoteResult::NotReady;
  }
  if (s != seam::TDX_SUCCESS) {
    fail("TDH.MEM.PAGE.PROMOTE", gfn_to_gpa(base), s);
    bug(kMergePath);
    return PromoteResult::Failed;
  }
  // RCX out: the freed SEPT page (bit 62 may carry the PAMT removal hint).
  const Hpa freed = r.rcx & seam::septe::kHpaMask;
  if (freed != external_spt << kPageShift) {
    last_error_ = "TDH.MEM.PAGE.PROMOTE at " + hex(gfn_to_gpa(base)) + " freed SEPT page " + hex(freed) +
                  ", the mirror table's external_spt is " + hex(external_spt << kPageShift);
    bug(kMergePath);
  }
  // The table page's PAMT reference goes before, the page itself after,
  // the PAMT_4K pair the split's DEMOTE installed comes back (4K -> 2M).
  put_sept_page_pamt(freed, op);
  if (tdx_.pamt().dynamic() && r.r12 && r.r13) promoted_pamt(vm_cache(), page, r.r12, r.r13);
  free_sept_page(freed);
  mapped_private_ -= pages_per_level(level) / pages_per_level(level - 1) - 1;
  return PromoteResult::Promoted;
}

}  // namespace septsim::mmu
