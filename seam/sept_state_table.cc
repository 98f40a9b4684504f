#include "seam/sept_state_table.h"

#include <string_view>

namespace septsim::seam {

namespace {

// Columns in SeptState order: FREE REMOVED NL_MAP NL_BLK MAPPED BLOCKED BLKW
// EXP_BLKW EXP_D EXP_D_BLKW PEND PEND_BLK PEND_BLKW PEND_EXP_BLKW PEND_EXP_D
// PEND_EXP_D_BLKW; 'x' = allowed.
struct Row {
  u16 leaf;
  std::string_view states;
};

constexpr Row kSeamcallRows[] = {
    //                                           FRNNMBBEEEPPPPPP
    {u16(Leaf::TDH_MEM_PAGE_ADD), /*       */ "x..............."},
    {u16(Leaf::TDH_MEM_SEPT_ADD), /*       */ "x.x............."},
    {u16(Leaf::TDH_MEM_PAGE_RELOCATE), /*  */ "....xxxxxxxxxxxx"},
    {u16(Leaf::TDH_MEM_PAGE_AUG), /*       */ "xx.............."},
    {u16(Leaf::TDH_MEM_RANGE_BLOCK), /*    */ "..x.x.x...x.x..."},
    {12 /* TDH.MEM.RD */, /*               */ "....x.xxxx......"},
    {14 /* TDH.MEM.WR */, /*               */ "....x...x......."},
    {u16(Leaf::TDH_MEM_PAGE_DEMOTE), /*    */ "....xx....xx...."},
    {u16(Leaf::TDH_MR_EXTEND), /*          */ "....x..........."},
    {u16(Leaf::TDH_MEM_PAGE_PROMOTE), /*   */ "..xx............"},
    {u16(Leaf::TDH_MEM_SEPT_RD), /*        */ "xxxxxxxxxxxxxxxx"},
    {u16(Leaf::TDH_MEM_PAGE_REMOVE), /*    */ "....xxx...xxx..."},
    {u16(Leaf::TDH_MEM_SEPT_REMOVE), /*    */ "..xx............"},
    {u16(Leaf::TDH_MEM_RANGE_UNBLOCK), /*  */ "...x.x.....x...."},
};

constexpr std::string_view kAcceptRow = "..........x...x.";

static_assert(kAcceptRow.size() == septe::kNumStates);

const Row* row_of(Leaf leaf) {
  for (const Row& r : kSeamcallRows)
    if (r.leaf == u16(leaf)) return &r;
  return nullptr;
}

}  // namespace

bool sept_leaf_has_row(Leaf leaf) { return row_of(leaf) != nullptr; }

bool sept_state_allowed(Leaf leaf, septe::SeptState s) {
  const Row* r = row_of(leaf);
  return r && r->states[size_t(s)] == 'x';
}

bool tdcall_sept_state_allowed(TdcallLeaf leaf, septe::SeptState s) {
  return leaf == TdcallLeaf::TDG_MEM_PAGE_ACCEPT && kAcceptRow[size_t(s)] == 'x';
}

}  // namespace septsim::seam
