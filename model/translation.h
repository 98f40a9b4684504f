// What the TLBs cache and what the page walker produces.
#pragma once
#include "model/types.h"

namespace septsim::model {

// Linear = a combined mapping (guest-linear -> host-physical, tagged by VPID,
// PCID and EPTP); GuestPhysical = a guest-physical mapping (GPA -> HPA, tagged
// by EPTP only), SDM Vol. 3C 29.4.1.
enum class TranslationKind : u8 { Linear = 0, GuestPhysical = 1 };

// The tags a cached translation carries.
struct TlbContext {
  u16 vpid = 1;
  u16 pcid = 0;
  u64 eptp = 0;  // the encoded EPTP value (root | walk length | A/D | memtype)
  bool operator==(const TlbContext&) const = default;
};

// Permission bits share the EPT encoding: bit 0 read, 1 write, 2 execute.
constexpr u8 kPermRead = 1, kPermWrite = 2, kPermExec = 4;

struct Translation {
  Hpa frame = 0;        // host-physical base of the page, aligned to `level`
  u8 level = 1;         // page size held: min(guest leaf level, EPT leaf level) (1 = 4K, 2 = 2M, 3 = 1G)
  u8 perms = 0;         // effective rights: AND of guest and EPT rights
  bool dirty = false;   // guest D and EPT D already set: a write may use this entry without a walk
  bool global = false;  // guest G bit (linear translations only)
};

}  // namespace septsim::model
