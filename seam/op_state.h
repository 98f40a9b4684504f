// TD life cycle (TDR.LIFECYCLE_STATE) and operation state (TDCS.OP_STATE),
// with the op-state gate of the memory leaves (the module's
// op_state_lookup / state_flags_lookup).
#pragma once
#include "seam/tdx_leaf.h"

namespace septsim::seam {

enum class Lifecycle : u8 { TD_HKID_ASSIGNED = 0, TD_KEYS_CONFIGURED = 1, TD_BLOCKED = 2, TD_TEARDOWN = 3 };

enum class OpState : u8 {
  UNINITIALIZED = 0,
  INITIALIZED = 1,
  RUNNABLE = 2,
  LIVE_EXPORT = 3,
  PAUSED_EXPORT = 4,
  POST_EXPORT = 5,
  MEMORY_IMPORT = 6,
  STATE_IMPORT = 7,
  POST_IMPORT = 8,
  LIVE_IMPORT = 9,
  FAILED_IMPORT = 10,
};
constexpr unsigned kNumOpStates = 11;

// False also for leaves without a row (callers gate those themselves).
bool op_state_allowed(Leaf leaf, OpState s);
bool op_state_has_row(Leaf leaf);
// state_flags_lookup.tlb_tracking_required: RUNNABLE, LIVE_EXPORT, LIVE_IMPORT.
constexpr bool op_state_needs_tracking(OpState s) {
  return s == OpState::RUNNABLE || s == OpState::LIVE_EXPORT || s == OpState::LIVE_IMPORT;
}
const char* op_state_name(OpState s);

}  // namespace septsim::seam
