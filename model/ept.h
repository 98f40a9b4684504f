// EPT paging-structure entry and EPTP formats (Intel SDM Vol. 3C, 29.3.2 and
// 25.6.11), the EPT-violation exit qualification (Table 28-7) and the
// reserved-bit checks that turn an entry into an EPT misconfiguration.
#pragma once
#include "model/types.h"

namespace septsim::ept {

// Entry bits, as the SDM names them.
constexpr u64 kRead = 1ull << 0;
constexpr u64 kWrite = 1ull << 1;
constexpr u64 kExec = 1ull << 2;  // supervisor-mode execute with MBEC
constexpr u64 kRwx = kRead | kWrite | kExec;
constexpr unsigned kMemTypeShift = 3;  // bits 5:3, leaf entries only
constexpr u64 kMemTypeMask = 7ull << kMemTypeShift;
constexpr u64 kIgnorePat = 1ull << 6;
constexpr u64 kLarge = 1ull << 7;  // PS: leaf at 2M (PDE) or 1G (PDPTE)
constexpr u64 kAccessed = 1ull << 8;
constexpr u64 kDirty = 1ull << 9;    // leaf entries only
constexpr u64 kExecUser = 1ull << 10;
constexpr u64 kSoftware11 = 1ull << 11;  // ignored by hardware; KVM's MMU-present bit
constexpr u64 kSuppressVe = 1ull << 63;
constexpr u64 kAddrMask = 0x000ffffffffff000ull;  // bits 51:12

constexpr u64 kMemTypeUc = 0, kMemTypeWb = 6;

constexpr bool is_present(u64 e) { return (e & kRwx) != 0; }  // "present" = any of R/W/X
// PS makes a leaf only in a PDE (2M) or PDPTE (1G); in a PML4E/PML5E it is reserved.
constexpr bool is_leaf(u64 e, int level) {
  return level == PG_LEVEL_4K || ((level == PG_LEVEL_2M || level == PG_LEVEL_1G) && (e & kLarge));
}
constexpr Hpa entry_addr(u64 e) { return e & kAddrMask; }
// Physical address of the frame a leaf at `level` maps (low bits cleared).
constexpr Hpa leaf_frame(u64 e, int level) { return e & kAddrMask & ~(level_size(level) - 1); }

// EPTP (VMCS field): memory type, page-walk length - 1, A/D enable, root.
struct Eptp {
  Hpa root = 0;        // PML4 (or PML5) table
  int levels = 4;      // 4 or 5
  bool ad_enabled = true;
  u64 encode() const { return root | (u64(levels - 1) << 3) | (ad_enabled ? 1ull << 6 : 0) | kMemTypeWb; }
  static Eptp decode(u64 v) { return {v & kAddrMask, int((v >> 3) & 7) + 1, ((v >> 6) & 1) != 0}; }
  bool operator==(const Eptp&) const = default;
};

// Exit qualification for EPT violations (SDM Table 28-7).
namespace qual {
constexpr u64 kRead = 1ull << 0;
constexpr u64 kWrite = 1ull << 1;
constexpr u64 kFetch = 1ull << 2;
constexpr u64 kGpaReadable = 1ull << 3;
constexpr u64 kGpaWritable = 1ull << 4;
constexpr u64 kGpaExecutable = 1ull << 5;
constexpr u64 kGpaExecUser = 1ull << 6;
constexpr u64 kGlaValid = 1ull << 7;
constexpr u64 kGlaTranslated = 1ull << 8;  // set: access to the final GPA; clear: to a guest paging-structure entry
constexpr u64 kUserModeLinear = 1ull << 9;     // advanced VM-exit information
constexpr u64 kWritableLinear = 1ull << 10;
constexpr u64 kExecutableLinear = 1ull << 11;
constexpr u64 kNmiUnblocking = 1ull << 12;
}  // namespace qual

constexpr u64 access_qual(AccessType a) {
  return a == AccessType::Write ? qual::kWrite : a == AccessType::Fetch ? qual::kFetch : qual::kRead;
}
constexpr u64 access_perm(AccessType a) {
  return a == AccessType::Write ? kWrite : a == AccessType::Fetch ? kExec : kRead;
}

// Reserved bits of a present entry at `level` that cause EPT misconfiguration
// with a physical-address width of `maxphyaddr` bits (SDM 29.3.3.1).
constexpr u64 reserved_mask(int level, bool leaf, unsigned maxphyaddr) {
  u64 m = (maxphyaddr >= 52 ? 0 : (((1ull << 52) - 1) & ~((1ull << maxphyaddr) - 1)));
  if (!leaf) {
    m |= kMemTypeMask | kIgnorePat;  // bits 6:3 reserved in non-leaf entries
    if (level >= PG_LEVEL_512G) m |= kLarge;
  } else if (level == PG_LEVEL_2M) {
    m |= 0x1ff000ull;  // bits 20:12
  } else if (level == PG_LEVEL_1G) {
    m |= 0x3ffff000ull;  // bits 29:12
  }
  return m;
}
static_assert(reserved_mask(PG_LEVEL_2M, true, 52) == 0x1ff000ull);
static_assert((reserved_mask(PG_LEVEL_512G, false, 52) & kLarge) != 0);

// True when a present entry is misconfigured: W without R, a reserved bit, or
// a leaf memory type of 2, 3 or 7 (SDM 29.3.3.1).
constexpr bool is_misconfigured(u64 e, int level, unsigned maxphyaddr) {
  if (!is_present(e)) return false;
  if ((e & (kRead | kWrite)) == kWrite) return true;
  bool leaf = is_leaf(e, level);
  if (e & reserved_mask(level, leaf, maxphyaddr)) return true;
  if (leaf) {
    u64 mt = (e & kMemTypeMask) >> kMemTypeShift;
    if (mt == 2 || mt == 3 || mt == 7) return true;
  }
  return false;
}
static_assert(is_misconfigured(kWrite, PG_LEVEL_4K, 52));
static_assert(!is_misconfigured(kRwx | (kMemTypeWb << kMemTypeShift), PG_LEVEL_4K, 52));
static_assert(is_misconfigured(kRwx | kLarge, PG_LEVEL_512G, 52));

}  // namespace septsim::ept
