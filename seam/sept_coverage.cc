#include "seam/sept_coverage.h"

#include <algorithm>

#include "seam/sept_state_table.h"
#include "seam/tdx_leaf.h"

namespace septsim::seam {

using septe::SeptState;

namespace {

// The leaves of the table the model implements (MEM.RD/WR are debug-TD
// leaves it does not model) and the levels their state classes are taken at.
struct LeafSpec {
  u16 leaf;
  bool tdcall;
  bool at_4k, at_2m;
};

constexpr LeafSpec kLeaves[] = {
    {u16(Leaf::TDH_MEM_PAGE_ADD), false, true, false},
    {u16(Leaf::TDH_MEM_SEPT_ADD), false, false, true},
    {u16(Leaf::TDH_MEM_PAGE_RELOCATE), false, true, false},
    {u16(Leaf::TDH_MEM_PAGE_AUG), false, true, true},
    {u16(Leaf::TDH_MEM_RANGE_BLOCK), false, true, true},
    {u16(Leaf::TDH_MEM_PAGE_DEMOTE), false, false, true},
    {u16(Leaf::TDH_MR_EXTEND), false, true, true},
    {u16(Leaf::TDH_MEM_PAGE_PROMOTE), false, false, true},
    {u16(Leaf::TDH_MEM_SEPT_RD), false, true, true},
    {u16(Leaf::TDH_MEM_PAGE_REMOVE), false, true, true},
    {u16(Leaf::TDH_MEM_SEPT_REMOVE), false, false, true},
    {u16(Leaf::TDH_MEM_RANGE_UNBLOCK), false, true, true},
    {u16(TdcallLeaf::TDG_MEM_PAGE_ACCEPT), true, true, true},
};

// The states reachable without the migration leaves (intel/tdx-module sept_manager.c).
constexpr SeptState kStates[] = {SeptState::FREE,    SeptState::NL_MAPPED, SeptState::NL_BLOCKED,
                                 SeptState::MAPPED,  SeptState::BLOCKED,   SeptState::PENDING,
                                 SeptState::PENDING_BLOCKED};

const char* kStateNames[septe::kNumStates] = {"FREE",     "REMOVED",  "NL_MAPPED", "NL_BLOCKED", "MAPPED",   "BLOCKED",
                                              "BLOCKEDW", "EXP_BLKW", "EXP_D",     "EXP_D_BLKW", "PENDING",  "PENDING_BLOCKED",
                                              "PEND_BLKW", "PEND_EXP_BLKW", "PEND_EXP_D", "PEND_EXP_D_BLKW"};

bool allowed(const LeafSpec& l, SeptState s) {
  return l.tdcall ? tdcall_sept_state_allowed(TdcallLeaf(l.leaf), s) : sept_state_allowed(Leaf(l.leaf), s);
}

// MR.EXTEND walks to whichever leaf maps the GPA: its classes are the leaf
// states; a FREE or blocked table on the way is its "walk failed".
bool has_class(const LeafSpec& l, SeptState s, int level) {
  if (level == 0 && !septe::is_leaf_state(s) && s != SeptState::FREE) return false;
  if (l.leaf == u16(Leaf::TDH_MR_EXTEND) && !l.tdcall) return septe::is_leaf_state(s);
  return true;
}

// Allowed cells with no refusal after the walk. TDH.MEM.RANGE.BLOCK takes the
// SEPT tree exclusively and checks nothing but the state, so only a guest
// holding the entry lock can refuse it, and no guest leaf holds the lock of a
// non-leaf entry, nor of a PENDING one and leaves it PENDING (an ACCEPT
// stopping above its level decides before locking, tdg_mem_page_accept.c
// check_tdaccept_failure). TDH.MR.EXTEND holds the TDR exclusively and checks
// nothing after finding a MAPPED leaf.
bool refusal_possible(const LeafSpec& l, SeptState s) {
  if (l.tdcall) return true;
  if (l.leaf == u16(Leaf::TDH_MR_EXTEND)) return s != SeptState::MAPPED;
  if (l.leaf != u16(Leaf::TDH_MEM_RANGE_BLOCK)) return true;
  return !(s == SeptState::NL_MAPPED || s == SeptState::PENDING);
}

std::string class_name(const StateClass& c) {
  if (c.walk_failed) return "walk failed";
  return std::string(kStateNames[size_t(c.state)]) + (c.level == 0 ? "@4K" : "@2M");
}

std::string leaf_label(u16 leaf, bool tdcall) {
  const char* n = tdcall ? tdcall_leaf_name(leaf) : leaf_name(leaf);
  return n ? n : std::to_string(leaf);
}


// The operand-id paths the library must reach, each as the TDX_1.5.01 source
// returns it. The codes are written out from the module's
// include/auto_gen/tdx_error_codes_defs.h (class | details) plus the
// OPERAND_ID_* of the check, not built from seam/tdx_status.h, so that a
// wrong constant in the model cannot agree with itself. Operand ids: RAX 0,
// RCX 1, RDX 2, R8 8, R9 9, R12 12, R13 13, SEPT_TREE 146 (0x92), TD_EPOCH 169
// (0xA9), KOT 186 (0xBA), WBCACHE 188 (0xBC); ACCEPT's is the SEPT level the
// walk ended at (tdg_mem_page_accept.c: api_error_with_operand_id(..., ept_level)).
#define SEAMCALL(leaf) u16(Leaf::leaf), false
#define TDCALL(leaf) u16(TdcallLeaf::leaf), true
const std::vector<StatusPath> kRequiredStatuses = {
    // td_transitions/tdh_vp_enter.c
    {SEAMCALL(TDH_VP_ENTER), 0xC000060800000000ull, "tdh_vp_enter.c (check_state_map_tdcs_and_lock): OP_STATE"},
    {SEAMCALL(TDH_VP_ENTER), 0x8000070100000000ull, "tdh_vp_enter.c (check_and_associate_vcpu): TDX_VCPU_ASSOCIATED"},
    {SEAMCALL(TDH_VP_ENTER), 0x80000200000000A9ull, "tdh_vp_enter.c (adjust_tlb_tracking_state): inside a TRACK"},
    {SEAMCALL(TDH_VP_ENTER), 0x8000020000000092ull, "tdh_vp_enter.c (handle_stepping_filter): SEPT_TREE beside a BLOCK"},
    {SEAMCALL(TDH_VP_ENTER), 0xC000010000000001ull, "tdh_vp_enter.c: vcpu_and_flags reserved bits; RESUME_L1 or HOST_RECOVERABILITY_HINT once associated, RCX"},
    // tdh_mng_key_config.c (tdh_mng_key_config), tdh_mng_add_cx.c: two
    // packages (21_key_config_packages.set).
    {SEAMCALL(TDH_MNG_KEY_CONFIG), 0x0000081500000000ull, "tdh_mng_key_config.c: this package's PKG_CONFIG_BITMAP bit set"},
    {SEAMCALL(TDH_MNG_KEY_CONFIG), 0xC000060700000000ull, "tdh_mng_key_config.c: life cycle not TD_HKID_ASSIGNED"},
    {SEAMCALL(TDH_MNG_ADDCX), 0x8000081000000000ull, "tdh_mng_add_cx.c: TDX_TD_KEYS_NOT_CONFIGURED"},
    // tdh_mem_page_add.c
    {SEAMCALL(TDH_MEM_PAGE_ADD), 0xC000060800000000ull, "tdh_mem_page_add.c (check_state_map_tdcs_and_lock): OP_STATE"},
    {SEAMCALL(TDH_MEM_PAGE_ADD), 0xC0000B0000000001ull, "tdh_mem_page_add.c (lock_sept_check_and_walk_private_gpa)"},
    {SEAMCALL(TDH_MEM_PAGE_ADD), 0xC0000B0D00000001ull, "tdh_mem_page_add.c (sept_state_is_seamcall_leaf_allowed)"},
    {SEAMCALL(TDH_MEM_PAGE_ADD), 0xC000010000000009ull, "tdh_mem_page_add.c (shared_hpa_check_with_pwr_2_alignment): source, R9"},
    {SEAMCALL(TDH_MEM_PAGE_ADD), 0xC000010000000001ull, "tdh_mem_page_add.c (verify_page_info_input, check_gpa_validity): RCX"},
    // tdh_mem_sept_add.c
    {SEAMCALL(TDH_MEM_SEPT_ADD), 0xC000010000000002ull, "tdh_mem_sept_add.c: a reserved flag in RDX"},
    {SEAMCALL(TDH_MEM_SEPT_ADD), 0xC000010000000008ull, "tdh_mem_sept_add.c (process_l1_page): R8"},
    {SEAMCALL(TDH_MEM_SEPT_ADD), 0xC000010000000009ull, "tdh_mem_sept_add.c: R9 of version 1"},
    {SEAMCALL(TDH_MEM_SEPT_ADD), 0xC000030000000008ull, "tdh_mem_sept_add.c: the R8 page not free (its PAMT entry)"},
    {SEAMCALL(TDH_MEM_SEPT_ADD), 0xC0000B0000000001ull, "tdh_mem_sept_add.c (lock_sept_check_and_walk_private_gpa)"},
    {SEAMCALL(TDH_MEM_SEPT_ADD), 0xC0000B0D00000001ull, "tdh_mem_sept_add.c (sept_state_is_seamcall_leaf_allowed)"},
    {SEAMCALL(TDH_MEM_SEPT_ADD), 0x8000030800000000ull, "Dynamic PAMT (a56a9173): TDX_MISSING_PAMT_PAGE_PAIR"},
    // tdh_mem_page_relocate.c
    {SEAMCALL(TDH_MEM_PAGE_RELOCATE), 0xC000010000000008ull, "tdh_mem_page_relocate.c: target = current HPA, R8"},
    {SEAMCALL(TDH_MEM_PAGE_RELOCATE), 0xC0000B0000000001ull, "tdh_mem_page_relocate.c (walk)"},
    {SEAMCALL(TDH_MEM_PAGE_RELOCATE), 0xC0000B0600000001ull, "tdh_mem_page_relocate.c: TDX_GPA_RANGE_NOT_BLOCKED"},
    {SEAMCALL(TDH_MEM_PAGE_RELOCATE), 0xC0000B0800000001ull, "tdh_mem_page_relocate.c (is_tlb_tracked)"},
    {SEAMCALL(TDH_MEM_PAGE_RELOCATE), 0xC0000B0D00000001ull, "tdh_mem_page_relocate.c (leaf state)"},
    // tdh_mem_page_aug.c
    {SEAMCALL(TDH_MEM_PAGE_AUG), 0xC000010000000000ull, "tdh_mem_page_aug.c: RAX version"},
    {SEAMCALL(TDH_MEM_PAGE_AUG), 0xC000010000000001ull, "tdh_mem_page_aug.c: GPA alignment, level, GPAW, shared bit, RCX"},
    {SEAMCALL(TDH_MEM_PAGE_AUG), 0xC000010000000002ull, "tdh_mem_page_aug.c (check_lock_and_map_explicit_tdr): TDR low bits, RDX"},
    {SEAMCALL(TDH_MEM_PAGE_AUG), 0xC000010000000008ull, "tdh_mem_page_aug.c: KeyID bits or 2M alignment, R8"},
    {SEAMCALL(TDH_MEM_PAGE_AUG), 0xC000030000000002ull, "tdh_mem_page_aug.c (check_lock_and_map_explicit_tdr): not a TDR, RDX"},
    {SEAMCALL(TDH_MEM_PAGE_AUG), 0x8000020000000092ull, "tdh_mem_page_aug.c (lock_sept_check_and_walk_private_gpa): SEPT_TREE"},
    {SEAMCALL(TDH_MEM_PAGE_AUG), 0xC0000B0000000001ull, "tdh_mem_page_aug.c (walk)"},
    {SEAMCALL(TDH_MEM_PAGE_AUG), 0xC0000B0D00000001ull, "tdh_mem_page_aug.c (leaf state)"},
    {SEAMCALL(TDH_MEM_PAGE_AUG), 0x8000030800000000ull, "Dynamic PAMT (a56a9173): TDX_MISSING_PAMT_PAGE_PAIR"},
    // tdh_mem_range_block.c
    {SEAMCALL(TDH_MEM_RANGE_BLOCK), 0x8000020000000001ull, "tdh_mem_range_block.c (sept_lock_acquire_host): RCX"},
    {SEAMCALL(TDH_MEM_RANGE_BLOCK), 0x00000B0700000001ull, "tdh_mem_range_block.c: TDX_GPA_RANGE_ALREADY_BLOCKED"},
    {SEAMCALL(TDH_MEM_RANGE_BLOCK), 0xC0000B0000000001ull, "tdh_mem_range_block.c (walk)"},
    {SEAMCALL(TDH_MEM_RANGE_BLOCK), 0xC0000B0D00000001ull, "tdh_mem_range_block.c (state)"},
    // tdh_mem_page_demote.c
    {SEAMCALL(TDH_MEM_PAGE_DEMOTE), 0xC0000B0000000001ull, "tdh_mem_page_demote.c (walk)"},
    {SEAMCALL(TDH_MEM_PAGE_DEMOTE), 0xC0000B0600000001ull, "tdh_mem_page_demote.c: TDX_GPA_RANGE_NOT_BLOCKED"},
    {SEAMCALL(TDH_MEM_PAGE_DEMOTE), 0xC0000B0800000001ull, "tdh_mem_page_demote.c (is_tlb_tracked)"},
    {SEAMCALL(TDH_MEM_PAGE_DEMOTE), 0xC0000B0D00000001ull, "tdh_mem_page_demote.c (state)"},
    {SEAMCALL(TDH_MEM_PAGE_DEMOTE), 0x8000030800000000ull, "Dynamic PAMT (a56a9173): TDX_MISSING_PAMT_PAGE_PAIR"},
    {SEAMCALL(TDH_MEM_PAGE_DEMOTE), 0xC00001000000000Cull, "Dynamic PAMT pair (huge-page RFC v5 30/45), as PAMT.ADD: KeyID bits, R12"},
    {SEAMCALL(TDH_MEM_PAGE_DEMOTE), 0xC00003030000000Cull, "Dynamic PAMT pair (huge-page RFC v5 30/45), as PAMT.ADD: TDX_PAGE_NOT_FREE, R12"},
    {SEAMCALL(TDH_MEM_PAGE_DEMOTE), 0xC00003030000000Dull, "Dynamic PAMT pair (huge-page RFC v5 30/45), as PAMT.ADD: the same page twice, R13"},
    // tdh_mr_extend.c: a failed walk to a present leaf becomes EPT_ENTRY_NOT_PRESENT on RCX.
    {SEAMCALL(TDH_MR_EXTEND), 0xC000060800000000ull, "tdh_mr_extend.c: OP_STATE"},
    {SEAMCALL(TDH_MR_EXTEND), 0xC0000B0300000001ull, "tdh_mr_extend.c (check_and_walk_private_gpa_to_leaf failed)"},
    {SEAMCALL(TDH_MR_EXTEND), 0xC000010000000001ull, "tdh_mr_extend.c: not 256-byte aligned, or not a private GPA (check_gpa_validity), RCX"},
    {SEAMCALL(TDH_MR_FINALIZE), 0xC000060800000000ull, "tdh_mr_finalize.c: OP_STATE"},
    // tdh_mng_create.c: the HKID, the TDR page, the KOT exclusively, the HKID's KOT entry.
    {SEAMCALL(TDH_MNG_CREATE), 0xC000010000000002ull, "tdh_mng_create.c: not a private HKID, RDX"},
    {SEAMCALL(TDH_MNG_CREATE), 0xC000010000000001ull, "tdh_mng_create.c (check_lock_and_map_explicit_tdr): the TDR page, RCX"},
    {SEAMCALL(TDH_MNG_CREATE), 0x80000200000000BAull, "tdh_mng_create.c: KOT beside a CACHE.WB"},
    {SEAMCALL(TDH_MNG_CREATE), 0xC000082000000000ull, "tdh_mng_create.c: TDX_HKID_NOT_FREE"},
    // tdh_vp_flush.c, tdh_mng_vpflushdone.c, tdh_mng_key_freeid.c
    {SEAMCALL(TDH_VP_FLUSH), 0x8000020000000001ull, "tdh_vp_flush.c: the running vCPU holds the TDVPR, RCX"},
    {SEAMCALL(TDH_VP_FLUSH), 0x8000070200000000ull, "tdh_vp_flush.c: TDX_VCPU_NOT_ASSOCIATED"},
    {SEAMCALL(TDH_MNG_VPFLUSHDONE), 0x8000020000000001ull, "tdh_mng_vpflushdone.c: TDR lock, RCX"},
    {SEAMCALL(TDH_MNG_VPFLUSHDONE), 0x8000082400000000ull, "tdh_mng_vpflushdone.c: TDX_FLUSHVP_NOT_DONE"},
    {SEAMCALL(TDH_MNG_VPFLUSHDONE), 0x80000200000000BAull, "tdh_mng_vpflushdone.c: KOT beside a CACHE.WB"},
    {SEAMCALL(TDH_MNG_KEY_FREEID), 0x8000020000000001ull, "tdh_mng_key_freeid.c: TDR lock, RCX"},
    {SEAMCALL(TDH_MNG_KEY_FREEID), 0x8000081700000000ull, "tdh_mng_key_freeid.c: TDX_WBCACHE_NOT_COMPLETE"},
    {SEAMCALL(TDH_MNG_KEY_FREEID), 0x80000200000000BAull, "tdh_mng_key_freeid.c: KOT beside a CACHE.WB"},
    // tdh_mem_page_promote.c: the merge checks' status wrapped with RCX.
    {SEAMCALL(TDH_MEM_PAGE_PROMOTE), 0xC0000B0000000001ull, "tdh_mem_page_promote.c (walk)"},
    {SEAMCALL(TDH_MEM_PAGE_PROMOTE), 0xC0000B0600000001ull, "tdh_mem_page_promote.c: TDX_GPA_RANGE_NOT_BLOCKED"},
    {SEAMCALL(TDH_MEM_PAGE_PROMOTE), 0xC0000B0800000001ull, "tdh_mem_page_promote.c (is_tlb_tracked)"},
    {SEAMCALL(TDH_MEM_PAGE_PROMOTE), 0xC0000B0900000001ull, "tdh_mem_page_promote.c (is_sept_page_valid_for_merge)"},
    {SEAMCALL(TDH_MEM_PAGE_PROMOTE), 0xC0000B0D00000001ull, "tdh_mem_page_promote.c (state)"},
    // tdh_phymem_page_rdmd.c, tdh_mem_sept_rd.c, tdh_phymem_page_reclaim.c
    {SEAMCALL(TDH_PHYMEM_PAGE_RDMD), 0xC000010000000001ull, "tdh_phymem_page_rdmd.c: KeyID bits, RCX"},
    {SEAMCALL(TDH_MEM_SEPT_RD), 0x8000020000000001ull, "tdh_mem_sept_rd.c: entry lock, RCX"},
    {SEAMCALL(TDH_MEM_SEPT_RD), 0xC000010000000002ull, "tdh_mem_sept_rd.c: L2 attributes bit on a non-debug TD, RDX"},
    {SEAMCALL(TDH_MEM_SEPT_RD), 0xC0000B0000000001ull, "tdh_mem_sept_rd.c (walk)"},
    {SEAMCALL(TDH_PHYMEM_PAGE_RECLAIM), 0xC000010000000001ull, "tdh_phymem_page_reclaim.c: inside a 2M/1G page, RCX"},
    // 22_phymem_and_accept_operands.jsonl, on a 64 GiB TDMR.
    {SEAMCALL(TDH_PHYMEM_PAGE_RECLAIM), 0xC000010100000001ull, "tdh_phymem_page_reclaim.c (pamt_get_block): no TDMR"},
    {SEAMCALL(TDH_PHYMEM_PAGE_RECLAIM), 0xC000030000000001ull, "tdh_phymem_page_reclaim.c: PT_NDA or PT_RSVD, RCX"},
    {SEAMCALL(TDH_PHYMEM_PAGE_RDMD), 0xC000010100000001ull, "tdh_phymem_page_rdmd.c (pamt_get_block): no TDMR"},
    // tdh_mem_page_remove.c, tdh_mem_sept_remove.c
    {SEAMCALL(TDH_MEM_PAGE_REMOVE), 0xC0000B0000000001ull, "tdh_mem_page_remove.c (walk)"},
    {SEAMCALL(TDH_MEM_PAGE_REMOVE), 0xC0000B0600000001ull, "tdh_mem_page_remove.c: TDX_GPA_RANGE_NOT_BLOCKED"},
    {SEAMCALL(TDH_MEM_PAGE_REMOVE), 0xC0000B0800000001ull, "tdh_mem_page_remove.c (is_tlb_tracked)"},
    {SEAMCALL(TDH_MEM_PAGE_REMOVE), 0xC0000B0D00000001ull, "tdh_mem_page_remove.c (state)"},
    {SEAMCALL(TDH_MEM_SEPT_REMOVE), 0xC0000B0000000001ull, "tdh_mem_sept_remove.c (walk)"},
    {SEAMCALL(TDH_MEM_SEPT_REMOVE), 0xC0000B0600000001ull, "tdh_mem_sept_remove.c: TDX_GPA_RANGE_NOT_BLOCKED"},
    {SEAMCALL(TDH_MEM_SEPT_REMOVE), 0xC0000B0800000001ull, "tdh_mem_sept_remove.c (is_tlb_tracked)"},
    {SEAMCALL(TDH_MEM_SEPT_REMOVE), 0xC0000B0D00000001ull, "tdh_mem_sept_remove.c (state)"},
    {SEAMCALL(TDH_MEM_SEPT_REMOVE), 0xC0000B0E00000001ull, "tdh_mem_sept_remove.c: TDX_EPT_PAGE_NOT_FREE"},
    // tdh_mem_track.c
    {SEAMCALL(TDH_MEM_TRACK), 0x80000200000000A9ull, "tdh_mem_track.c: TD_EPOCH lock"},
    {SEAMCALL(TDH_MEM_TRACK), 0x8000020100000000ull, "tdh_mem_track.c: TDX_PREVIOUS_TLB_EPOCH_BUSY"},
    {SEAMCALL(TDH_MEM_TRACK), 0xC000010000000001ull, "tdh_mem_track.c (check_lock_and_map_explicit_tdr): TDR above MAX_PA, RCX"},
    // tdh_mem_range_unblock.c: the tracking check names the SEPT tree.
    {SEAMCALL(TDH_MEM_RANGE_UNBLOCK), 0xC0000B0000000001ull, "tdh_mem_range_unblock.c (walk)"},
    {SEAMCALL(TDH_MEM_RANGE_UNBLOCK), 0xC0000B0800000092ull, "tdh_mem_range_unblock.c (is_tlb_tracked): SEPT_TREE"},
    {SEAMCALL(TDH_MEM_RANGE_UNBLOCK), 0xC0000B0D00000001ull, "tdh_mem_range_unblock.c (state)"},
    // tdh_phymem_cache_wb.c
    {SEAMCALL(TDH_PHYMEM_CACHE_WB), 0x0000082100000000ull, "tdh_phymem_cache_wb.c: TDX_NO_HKID_READY_TO_WBCACHE"},
    {SEAMCALL(TDH_PHYMEM_CACHE_WB), 0xC000082300000000ull, "tdh_phymem_cache_wb.c: TDX_WBCACHE_RESUME_ERROR"},
    {SEAMCALL(TDH_PHYMEM_CACHE_WB), 0xC000010000000001ull, "tdh_phymem_cache_wb.c: RCX not 0 or 1"},
    {SEAMCALL(TDH_PHYMEM_CACHE_WB), 0x80000200000000BAull, "tdh_phymem_cache_wb.c: KOT lock"},
    {SEAMCALL(TDH_PHYMEM_CACHE_WB), 0x80000200000000BCull, "tdh_phymem_cache_wb.c: WBCACHE lock"},
    {SEAMCALL(TDH_PHYMEM_CACHE_WB), 0x8000000300000000ull, "tdh_phymem_cache_wb.c: TDX_INTERRUPTED_RESUMABLE"},
    // Dynamic PAMT: not in TDX_1.5.01; intel/tdx-module a56a9173 (docs/design.md).
    {SEAMCALL(TDH_PHYMEM_PAMT_ADD), 0xC000030400000001ull, "tdh_phymem_pamt_add.c: TDX_HPA_RANGE_NOT_FREE, RCX"},
    {SEAMCALL(TDH_PHYMEM_PAMT_REMOVE), 0xC000030600000000ull, "tdh_phymem_pamt_remove.c: TDX_PAMT_PAGE_NOT_EMPTY"},
    {SEAMCALL(TDH_PHYMEM_PAMT_REMOVE), 0xC000030500000001ull, "tdh_phymem_pamt_remove.c: TDX_NO_PAMT_PAGE_PAIR, RCX"},
    // 22_phymem_and_accept_operands.jsonl: versions, RDX flags, levels.
    {SEAMCALL(TDH_MEM_SEPT_ADD), 0xC000010000000000ull, "tdh_mem_sept_add.c: version above 1, RAX"},
    {SEAMCALL(TDH_MEM_PAGE_PROMOTE), 0xC000010000000000ull, "tdh_mem_page_promote.c: version above 1, RAX"},
    {SEAMCALL(TDH_MEM_SEPT_REMOVE), 0xC000010000000000ull, "tdh_mem_sept_remove.c: version above 1, RAX"},
    {SEAMCALL(TDH_MEM_PAGE_DEMOTE), 0xC000010000000002ull, "tdh_mem_page_demote.c: RDX reserved bits"},
    {SEAMCALL(TDH_MEM_SEPT_ADD), 0xC000010000000001ull, "tdh_mem_sept_add.c (verify_page_info_input): level"},
    {SEAMCALL(TDH_MEM_RANGE_BLOCK), 0xC000010000000001ull, "tdh_mem_range_block.c (verify_page_info_input): level"},
    {SEAMCALL(TDH_MEM_RANGE_UNBLOCK), 0xC000010000000001ull, "tdh_mem_range_unblock.c (verify_page_info_input)"},
    {SEAMCALL(TDH_MEM_PAGE_REMOVE), 0xC000010000000001ull, "tdh_mem_page_remove.c (verify_page_info_input): level"},
    {SEAMCALL(TDH_MEM_PAGE_RELOCATE), 0xC000010000000001ull, "tdh_mem_page_relocate.c: level not 4K"},
    {SEAMCALL(TDH_MEM_PAGE_DEMOTE), 0xC000010000000001ull, "tdh_mem_page_demote.c (verify_page_info_input): level"},
    {SEAMCALL(TDH_MEM_PAGE_PROMOTE), 0xC000010000000001ull, "tdh_mem_page_promote.c: level"},
    {SEAMCALL(TDH_MEM_SEPT_REMOVE), 0xC000010000000001ull, "tdh_mem_sept_remove.c (verify_page_info_input): level"},
    {SEAMCALL(TDH_MEM_SEPT_RD), 0xC000010000000001ull, "tdh_mem_sept_rd.c (verify_page_info_input): level"},
    // tdg_mem_page_accept.c: check_tdaccept_failure's results carry the level;
    // a lost entry lock names RCX.
    {TDCALL(TDG_MEM_PAGE_ACCEPT), 0x00000B0A00000000ull, "tdg_mem_page_accept.c: TDX_PAGE_ALREADY_ACCEPTED at 4K (level 0)"},
    {TDCALL(TDG_MEM_PAGE_ACCEPT), 0x00000B0A00000001ull, "tdg_mem_page_accept.c: TDX_PAGE_ALREADY_ACCEPTED at 2M (level 1)"},
    {TDCALL(TDG_MEM_PAGE_ACCEPT), 0xC0000B0B00000001ull, "tdg_mem_page_accept.c: TDX_PAGE_SIZE_MISMATCH at 2M (level 1)"},
    {TDCALL(TDG_MEM_PAGE_ACCEPT), 0x8000020000000001ull, "tdg_mem_page_accept.c (sept_lock_acquire_guest): RCX"},
    {TDCALL(TDG_MEM_PAGE_ACCEPT), 0xC000010000000001ull,
     "tdg_mem_page_accept.c (verify_page_info_input, check_gpa_validity): RCX"},
    // The model's report of an ACCEPT a pending interrupt stops (a TD exit).
    {TDCALL(TDG_MEM_PAGE_ACCEPT), 0x0000FF0200000000ull, "tdg_mem_page_accept.c (is_interrupt_pending_guest_side)"},
};
#undef SEAMCALL
#undef TDCALL

}  // namespace

void SeptCoverage::on_call(const SeamcallOutcome& o) {
  statuses_.emplace(std::tuple{o.tdcall, o.leaf, o.status}, where_);
  if (!o.walked) return;
  CoverageCell c;
  c.leaf = o.leaf;
  c.tdcall = o.tdcall;
  c.accepted = o.status == TDX_SUCCESS;
  if (!o.reached) {
    c.cls.walk_failed = true;
  } else {
    if (o.level > 1) return;
    c.cls.level = o.level;
    c.cls.state = o.state;
  }
  hits_.emplace(c, where_);
}

std::vector<CoverageCell> SeptCoverage::required() {
  std::vector<CoverageCell> r;
  for (const LeafSpec& l : kLeaves) {
    for (int level = 0; level <= 1; ++level) {
      if (!(level == 0 ? l.at_4k : l.at_2m)) continue;
      for (SeptState s : kStates) {
        if (!has_class(l, s, level)) continue;
        const StateClass cls{false, level, s};
        if (allowed(l, s)) r.push_back(CoverageCell{l.leaf, l.tdcall, cls, true});
        if (refusal_possible(l, s)) r.push_back(CoverageCell{l.leaf, l.tdcall, cls, false});
      }
    }
    r.push_back(CoverageCell{l.leaf, l.tdcall, StateClass{true, 0, SeptState::FREE}, false});
  }
  return r;
}

std::string SeptCoverage::name(const CoverageCell& c) {
  return leaf_label(c.leaf, c.tdcall) + " " + class_name(c.cls) + (c.accepted ? " accepted" : " refused");
}

const std::vector<StatusPath>& SeptCoverage::required_statuses() { return kRequiredStatuses; }

std::vector<std::string> SeptCoverage::missing() const {
  std::vector<std::string> m;
  for (const CoverageCell& c : required())
    if (!hits_.count(c)) m.push_back(name(c));
  for (const StatusPath& p : kRequiredStatuses)
    if (!returned(p.tdcall, p.leaf, p.status))
      m.push_back(leaf_label(p.leaf, p.tdcall) + " never returned " + status_string(p.status) + " (" + p.source + ")");
  return m;
}

std::string SeptCoverage::where(const CoverageCell& c) const {
  auto it = hits_.find(c);
  return it == hits_.end() ? std::string() : it->second;
}

std::string SeptCoverage::status_markdown() const {
  std::string out = "| Leaf | Status | First returned by |\n|---|---|---|\n";
  for (const auto& [key, at] : statuses_) {
    const auto& [tdcall, leaf, status] = key;
    std::string name = status_string(status);
    if (const size_t bar = name.find('|'); bar != std::string::npos) name.replace(bar, 1, "\\|");  // Markdown cell
    out += "| " + leaf_label(leaf, tdcall) + " | " + name + " | " + at + " |\n";
  }
  return out;
}

std::string SeptCoverage::required_status_markdown() const {
  std::string out = "| Leaf | Status | Module source | First returned by |\n|---|---|---|---|\n";
  for (const StatusPath& p : kRequiredStatuses) {
    std::string name = status_string(p.status);
    if (const size_t bar = name.find('|'); bar != std::string::npos) name.replace(bar, 1, "\\|");
    const auto it = statuses_.find({p.tdcall, p.leaf, p.status});
    out += "| " + leaf_label(p.leaf, p.tdcall) + " | " + name + " | " + p.source + " | " +
           (it == statuses_.end() ? std::string("not reached") : it->second) + " |\n";
  }
  return out;
}

std::string SeptCoverage::markdown() const {
  std::string out = "| Leaf | State class | Accepted by | Refused by |\n|---|---|---|---|\n";
  const std::vector<CoverageCell> req = required();
  for (size_t i = 0; i < req.size(); ++i) {
    const CoverageCell& c = req[i];
    if (i > 0 && req[i - 1].leaf == c.leaf && req[i - 1].tdcall == c.tdcall && req[i - 1].cls == c.cls) continue;
    CoverageCell acc = c, ref = c;
    acc.accepted = true;
    ref.accepted = false;
    const bool need_acc = std::find(req.begin(), req.end(), acc) != req.end();
    const bool need_ref = std::find(req.begin(), req.end(), ref) != req.end();
    out += "| " + leaf_label(c.leaf, c.tdcall) + " | " + class_name(c.cls) + " | " +
           (need_acc ? where(acc) : std::string(c.cls.walk_failed ? "-" : "(not allowed)")) + " | " +
           (need_ref ? where(ref) : std::string("(no refusal after the walk)")) + " |\n";
  }
  return out;
}

}  // namespace septsim::seam
