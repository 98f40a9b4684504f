// Which SEPT states each leaf accepts: one table as the module's sept_state_tables
// (the module's seamcall_sept_state_lookup / tdcall_sept_state_lookup).
#pragma once
#include "seam/sept_entry.h"
#include "seam/tdx_leaf.h"

namespace septsim::seam {

// True when `leaf` has a row in the table (the SEPT-walking leaves).
bool sept_leaf_has_row(Leaf leaf);
bool sept_state_allowed(Leaf leaf, septe::SeptState s);
bool tdcall_sept_state_allowed(TdcallLeaf leaf, septe::SeptState s);

}  // namespace septsim::seam
