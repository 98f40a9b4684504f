// Guest (IA-32e / 5-level) paging-entry bits, SDM Vol. 3A 4.5.
#pragma once
#include "model/types.h"

namespace septsim::x86 {

constexpr u64 kPresent = 1ull << 0;
constexpr u64 kWritable = 1ull << 1;
constexpr u64 kUser = 1ull << 2;
constexpr u64 kAccessed = 1ull << 5;
constexpr u64 kDirty = 1ull << 6;
constexpr u64 kLarge = 1ull << 7;  // PS in PDPTE (1G) and PDE (2M)
constexpr u64 kGlobal = 1ull << 8;
constexpr u64 kNoExec = 1ull << 63;
constexpr u64 kAddrMask = 0x000ffffffffff000ull;

constexpr bool is_leaf(u64 e, int level) { return level == PG_LEVEL_4K || ((level == PG_LEVEL_2M || level == PG_LEVEL_1G) && (e & kLarge)); }
constexpr u64 leaf_frame(u64 e, int level) { return e & kAddrMask & ~(level_size(level) - 1); }

// Guest #PF error code bits (SDM 4.7), reported when a guest walk fails.
namespace pferr {
constexpr u32 kPresent = 1u << 0;
constexpr u32 kWrite = 1u << 1;
constexpr u32 kUser = 1u << 2;
constexpr u32 kRsvd = 1u << 3;
constexpr u32 kFetch = 1u << 4;
}  // namespace pferr

}  // namespace septsim::x86
