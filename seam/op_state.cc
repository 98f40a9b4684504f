#include "seam/op_state.h"

#include <string_view>

namespace septsim::seam {

namespace {

// Columns in OpState order: UNINIT INIT RUNNABLE LIVE_EXP PAUSED_EXP POST_EXP
// MEM_IMP STATE_IMP POST_IMP LIVE_IMP FAILED_IMP; 'x' = allowed (2.1 table;
// the VP rows from the 1.5 module's include/auto_gen/op_state_lookup.c).
struct Row {
  Leaf leaf;
  std::string_view states;
};

constexpr Row kRows[] = {
    //                                           UIRLPPMSPLF
    {Leaf::TDH_MNG_INIT, /*            */ "x.........."},
    {Leaf::TDH_VP_ENTER, /*            */ "..xx.....x."},
    {Leaf::TDH_VP_ADDCX, /*            */ ".x.....x..."},
    {Leaf::TDH_VP_CREATE, /*           */ ".x.....x..."},
    {Leaf::TDH_VP_INIT, /*             */ ".x........."},
    {Leaf::TDH_MEM_PAGE_ADD, /*        */ ".x........."},
    {Leaf::TDH_MEM_SEPT_ADD, /*        */ ".xxx..xxxx."},
    {Leaf::TDH_MEM_PAGE_RELOCATE, /*   */ ".xxxxx..xx."},
    {Leaf::TDH_MEM_PAGE_AUG, /*        */ ".xxx.....x."},
    {Leaf::TDH_MEM_RANGE_BLOCK, /*     */ ".xxxxx..xx."},
    {Leaf::TDH_MEM_PAGE_DEMOTE, /*     */ ".xxxxx..xx."},
    {Leaf::TDH_MR_EXTEND, /*           */ ".x........."},
    {Leaf::TDH_MR_FINALIZE, /*         */ ".x........."},
    {Leaf::TDH_MEM_PAGE_PROMOTE, /*    */ ".xxxxx..xx."},
    {Leaf::TDH_MEM_SEPT_RD, /*         */ ".xxxxxxxxxx"},
    {Leaf::TDH_MEM_PAGE_REMOVE, /*     */ ".xxxxx..xxx"},
    {Leaf::TDH_MEM_SEPT_REMOVE, /*     */ ".xxxxxxxxxx"},
    {Leaf::TDH_MEM_TRACK, /*           */ ".xxxxxxxxx."},
    {Leaf::TDH_MEM_RANGE_UNBLOCK, /*   */ ".xxxxx..xx."},
};

const Row* row_of(Leaf leaf) {
  for (const Row& r : kRows)
    if (r.leaf == leaf) return &r;
  return nullptr;
}

constexpr const char* kNames[kNumOpStates] = {
    "UNINITIALIZED", "INITIALIZED",  "RUNNABLE",    "LIVE_EXPORT", "PAUSED_EXPORT", "POST_EXPORT",
    "MEMORY_IMPORT", "STATE_IMPORT", "POST_IMPORT", "LIVE_IMPORT", "FAILED_IMPORT"};

}  // namespace

bool op_state_has_row(Leaf leaf) { return row_of(leaf) != nullptr; }

bool op_state_allowed(Leaf leaf, OpState s) {
  const Row* r = row_of(leaf);
  return r && r->states[size_t(s)] == 'x';
}

const char* op_state_name(OpState s) { return size_t(s) < kNumOpStates ? kNames[size_t(s)] : "?"; }

}  // namespace septsim::seam
