// The L1 Secure-EPT entry (intel/tdx-module sept_manager.c) and its states. A state is
// a bit pattern over seven entry bits {PS, IPAT, TDP, TDB, TDBW, TDEX, D}; the
// module's 7-bit "encoding" packs them as bits 6..0.
#pragma once
#include <array>
#include <cstddef>

#include "model/ept.h"
#include "model/types.h"

namespace septsim::seam::septe {

constexpr u64 kR = 1ull << 0, kW = 1ull << 1, kX = 1ull << 2;
constexpr u64 kRwx = kR | kW | kX;
constexpr unsigned kMtShift = 3;
constexpr u64 kMtWb = 6ull << kMtShift;
constexpr u64 kIpat = 1ull << 6;
constexpr u64 kPs = 1ull << 7;  // leaf (also for 4K entries)
constexpr u64 kD = 1ull << 9;
constexpr u64 kTdel = 1ull << 11;  // entry lock
constexpr u64 kHpaMask = 0x000FFFFFFFFFF000ull;
constexpr u64 kHp = 1ull << 52;  // host priority, paired with TDEL
constexpr u64 kTdex = 1ull << 53;
constexpr u64 kTdbw = 1ull << 54;
constexpr u64 kTdb = 1ull << 55;
constexpr u64 kTdp = 1ull << 56;
constexpr u64 kSve = 1ull << 63;
constexpr u64 kStateBits = kPs | kIpat | kTdp | kTdb | kTdbw | kTdex | kD;
// 2M PENDING leaf: HPA bits 20:12 count the guest's 4K accept progress.
constexpr u64 kAcceptCounterMask = 0x1FF000ull;

// The module's internal state index order (3.2).
enum class SeptState : u8 {
  FREE,
  REMOVED,
  NL_MAPPED,
  NL_BLOCKED,
  MAPPED,
  BLOCKED,
  BLOCKEDW,
  EXPORTED_BLOCKEDW,
  EXPORTED_DIRTY,
  EXPORTED_DIRTY_BLOCKEDW,
  PENDING,
  PENDING_BLOCKED,
  PENDING_BLOCKEDW,
  PENDING_EXPORTED_BLOCKEDW,
  PENDING_EXPORTED_DIRTY,
  PENDING_EXPORTED_DIRTY_BLOCKEDW,
};
constexpr unsigned kNumStates = 16;

// Entry bits of each state, in SeptState order.
constexpr std::array<u64, kNumStates> kStateEntryBits = {
    kTdb | kTdbw | kTdex,                     // FREE
    kTdb | kTdbw,                             // REMOVED
    0,                                        // NL_MAPPED
    kTdb,                                     // NL_BLOCKED
    kPs | kIpat,                              // MAPPED
    kPs | kIpat | kTdb,                       // BLOCKED
    kPs | kIpat | kTdbw,                      // BLOCKEDW
    kPs | kIpat | kTdbw | kTdex,              // EXPORTED_BLOCKEDW
    kPs | kIpat | kTdex | kD,                 // EXPORTED_DIRTY
    kPs | kIpat | kTdbw | kTdex | kD,         // EXPORTED_DIRTY_BLOCKEDW
    kPs | kIpat | kTdp,                       // PENDING
    kPs | kIpat | kTdp | kTdb,                // PENDING_BLOCKED
    kPs | kIpat | kTdp | kTdbw,               // PENDING_BLOCKEDW
    kPs | kIpat | kTdp | kTdbw | kTdex,       // PENDING_EXPORTED_BLOCKEDW
    kPs | kIpat | kTdp | kTdex | kD,          // PENDING_EXPORTED_DIRTY
    kPs | kIpat | kTdp | kTdbw | kTdex | kD,  // PENDING_EXPORTED_DIRTY_BLOCKEDW
};

// SEPT_CONVERT_TO_ENCODING: {PS, IPAT, TDP, TDB, TDBW, TDEX, D} as bits 6..0.
constexpr u8 encoding_of(u64 e) {
  return u8(((e & kPs) ? 0x40 : 0) | ((e & kIpat) ? 0x20 : 0) | ((e & kTdp) ? 0x10 : 0) | ((e & kTdb) ? 0x08 : 0) |
            ((e & kTdbw) ? 0x04 : 0) | ((e & kTdex) ? 0x02 : 0) | ((e & kD) ? 0x01 : 0));
}
constexpr u8 encoding(SeptState s) { return encoding_of(kStateEntryBits[std::size_t(s)]); }

// The golden encodings of 3.2.
static_assert(encoding(SeptState::FREE) == 0x0E);
static_assert(encoding(SeptState::REMOVED) == 0x0C);
static_assert(encoding(SeptState::NL_MAPPED) == 0x00);
static_assert(encoding(SeptState::NL_BLOCKED) == 0x08);
static_assert(encoding(SeptState::MAPPED) == 0x60);
static_assert(encoding(SeptState::BLOCKED) == 0x68);
static_assert(encoding(SeptState::BLOCKEDW) == 0x64);
static_assert(encoding(SeptState::EXPORTED_BLOCKEDW) == 0x66);
static_assert(encoding(SeptState::EXPORTED_DIRTY) == 0x63);
static_assert(encoding(SeptState::EXPORTED_DIRTY_BLOCKEDW) == 0x67);
static_assert(encoding(SeptState::PENDING) == 0x70);
static_assert(encoding(SeptState::PENDING_BLOCKED) == 0x78);
static_assert(encoding(SeptState::PENDING_BLOCKEDW) == 0x74);
static_assert(encoding(SeptState::PENDING_EXPORTED_BLOCKEDW) == 0x76);
static_assert(encoding(SeptState::PENDING_EXPORTED_DIRTY) == 0x73);
static_assert(encoding(SeptState::PENDING_EXPORTED_DIRTY_BLOCKEDW) == 0x77);
// The state bits never overlap the CPU-visible permission, HPA or lock bits.
static_assert((kStateBits & (kRwx | kHpaMask | kTdel | kHp | kSve)) == 0);

// Public state number (SEPT.RD / extended info RDX bits 15:8), 3.2.
constexpr std::array<u8, kNumStates> kPublicStateFull = {0, 5, 0x84, 0x81, 4, 1, 8, 9, 11, 12, 2, 3, 16, 17, 19, 20};
constexpr u8 public_state(SeptState s) { return kPublicStateFull[std::size_t(s)]; }

// Decodes the state of an entry; false when the bits match no state.
constexpr bool state_of(u64 e, SeptState& out) {
  const u64 bits = e & kStateBits;
  for (unsigned i = 0; i < kNumStates; ++i)
    if (kStateEntryBits[i] == bits) {
      out = SeptState(i);
      return true;
    }
  return false;
}

constexpr bool is_leaf_state(SeptState s) { return s >= SeptState::MAPPED; }
constexpr bool is_blocked_state(SeptState s) {
  return s == SeptState::NL_BLOCKED || s == SeptState::BLOCKED || s == SeptState::PENDING_BLOCKED;
}
// Per-state tlb_tracking_required flag (3.2).
constexpr bool state_needs_tracking(SeptState s) {
  return s != SeptState::FREE && s != SeptState::REMOVED && s != SeptState::EXPORTED_BLOCKEDW &&
         s != SeptState::PENDING_EXPORTED_BLOCKEDW;
}

constexpr u64 kInitValue = kStateEntryBits[std::size_t(SeptState::FREE)] | kSve;  // SEPTE_INIT_VALUE

// Entry values the host-side leaves write (3.2 permission bits).
constexpr u64 make_non_leaf(Hpa table) { return (table & kHpaMask) | kRwx | kSve; }
constexpr u64 make_leaf(SeptState s, Hpa page) {
  const u64 rwx = s == SeptState::MAPPED ? kRwx | kMtWb : kMtWb;
  return (page & kHpaMask) | kStateEntryBits[std::size_t(s)] | rwx | kSve;
}
constexpr Hpa hpa_of(u64 e) { return e & kHpaMask; }
// The page a leaf of `size` bytes maps, without the accept count a 2M
// PENDING leaf keeps in its low HPA bits (sept_cleanup_if_pending).
constexpr Hpa leaf_hpa(u64 e, u64 size) { return e & kHpaMask & ~(size - 1); }
constexpr u64 accept_counter(u64 e) { return (e & kAcceptCounterMask) >> 12; }
constexpr u64 with_accept_counter(u64 e, u64 n) { return (e & ~kAcceptCounterMask) | ((n << 12) & kAcceptCounterMask); }
constexpr SeptState state_or_free(u64 e) {
  SeptState s = SeptState::FREE;
  return state_of(e, s) ? s : SeptState::FREE;
}

// The CPU reads SEPT entries as EPT entries: only MAPPED leaves and NL_MAPPED
// tables are present; MAPPED is a well-formed WB leaf.
static_assert(ept::is_present(make_leaf(SeptState::MAPPED, 0x1000)));
static_assert(!ept::is_present(make_leaf(SeptState::PENDING, 0x1000)));
static_assert(!ept::is_present(make_leaf(SeptState::BLOCKED, 0x1000)));
static_assert(!ept::is_present(kInitValue));
static_assert(ept::is_present(make_non_leaf(0x1000)));
static_assert(!ept::is_misconfigured(make_leaf(SeptState::MAPPED, 0x200000), PG_LEVEL_2M, 46));
static_assert(!ept::is_misconfigured(make_non_leaf(0x1000), PG_LEVEL_512G, 46));

}  // namespace septsim::seam::septe
