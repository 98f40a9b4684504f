// How split private huge pages become huge again (seed study 004,
// docs/studies.md 1). Upstream KVM never merges a mirror range back: a
// 4K-mapped private range stays 4K until removed (kvm-mmu.md 6.4). The other
// policies drive TDH.MEM.PAGE.PROMOTE, which needs the 2M entry BLOCKed and
// TRACKed and its 512 children in one state, contiguous and aligned
// (tdx-seam.md 3.4):
//   none  nothing merges (upstream);
//   A     the NX-recovery worker: every nx_recovery_tick visits the oldest
//         ceil(n / ratio) split ranges and promotes the ready ones (BLOCK each,
//         one TRACK and kick, PROMOTE each);
//   B     the fault path: after a TD EPT violation is handled, its own 2M
//         range, else the oldest split range, is promoted if ready;
//   C     BLOCK instead of zap: when dirty logging stops, every ready split
//         range of the slot is BLOCKed (one TRACK and kick), and the next EPT
//         violation in a blocked range PROMOTEs it (under the fault's read
//         mmu_lock: no TRACK is left to do).
#pragma once
#include <string>

#include "model/types.h"

namespace septsim::mmu {

enum class TdxMergePolicy : u8 { None, A, B, C };

// The value of config key mmu.tdx_merge_policy: none, A, B or C (either case).
TdxMergePolicy parse_tdx_merge_policy(const std::string& value);
const char* tdx_merge_policy_name(TdxMergePolicy p);

}  // namespace septsim::mmu
