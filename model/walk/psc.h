// Paging-structure caches (SDM Vol. 3A 4.10.3 and Vol. 3C 29.4.1).
//  - Guest side: PML5E/PML4E/PDPTE/PDE caches of combined mappings, keyed by
//    linear-address bits (56:48, 47:39, 47:30, 47:21 for 4-level) and tagged by
//    VPID, PCID and EPTP. An entry holds the host-physical address of the next
//    guest paging structure (already translated through the EPT) and the
//    rights accumulated so far.
//  - EPT side: EPT PML5E/PML4E/PDPTE/PDE caches for guest-physical
//    translations, keyed by GPA bits and tagged by EPTP; an entry holds the
//    host-physical address of the next EPT table and accumulated rights.
// Sizes and ways come from pwc.* config keys.
#pragma once
#include <optional>
#include <string>

#include "model/config.h"
#include "model/stats.h"
#include "model/tlb/set_assoc.h"
#include "model/translation.h"

namespace septsim::model {

struct PscEntry {
  Hpa next_table = 0;  // host-physical address of the next-level table
  u8 perms = 0;        // rights accumulated through the cached levels
};

class PagingStructureCaches {
 public:
  PagingStructureCaches(const Config& cfg, StatsRegistry& stats, const std::string& prefix);

  // Deepest hit for a guest-linear address: `level` is the level of the table
  // whose address the entry holds (e.g. a PDE-cache hit returns the PT, level 1).
  struct GuestHit {
    int level;
    PscEntry e;
  };
  std::optional<GuestHit> lookup_guest(const TlbContext& ctx, int guest_levels, Gva gva);
  // Records that the entry at `entry_level` for `gva` points at `e.next_table`.
  void fill_guest(const TlbContext& ctx, int guest_levels, Gva gva, int entry_level, const PscEntry& e);

  struct EptHit {
    int level;
    PscEntry e;
  };
  std::optional<EptHit> lookup_ept(u64 eptp, int ept_levels, Gpa gpa);
  void fill_ept(u64 eptp, int ept_levels, Gpa gpa, int entry_level, const PscEntry& e);

  // Invalidation (the same instructions that flush the TLBs).
  void invalidate_vpid_pcid(u16 vpid, u16 pcid);  // INVLPG / INVPCID of that PCID: all guest entries of it
  void invalidate_vpid(u16 vpid);                 // INVVPID single / address / INVPCID all
  void invalidate_eptp(u64 eptp);                 // INVEPT single: guest and EPT entries of that EPTP
  void invalidate_all();                          // INVEPT all / INVVPID all

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace septsim::model
