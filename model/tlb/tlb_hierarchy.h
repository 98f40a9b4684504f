// The per-vCPU TLBs: an L1 DTLB per page size and a unified STLB (4K and 2M
// share it; 1G has its own array), as on Skylake-SP (Intel Optimization Manual, Skylake table 2-15). Entries
// are tagged by kind (combined/linear vs guest-physical), VPID, PCID and EPTP.
// A miss in L1 that hits in the STLB refills L1.
//
// API contract (implemented in tlb_hierarchy.cc):
//  - lookup() never walks; a hit whose rights do not allow the access, or a
//    write hit on an entry whose `dirty` is false, counts as a miss (the
//    hardware must walk to fault or to set D) and the stale entry is dropped.
//  - fill() inserts into L1 (array for t.level) and into the STLB.
//  - tlb.l1i.enabled: fetches look up and fill an L1 ITLB (4K and 2M arrays)
//    instead of the L1 DTLBs and share the STLB; counters "<prefix>.itlb.*".
//  - invalidations follow SDM Vol. 3A 4.10.4 / Vol. 3C 29.4.3: INVLPG and
//    INVPCID act on linear (combined) mappings of the current VPID, INVVPID on
//    linear mappings of a VPID, INVEPT on every mapping (both kinds) tagged
//    with that EPTP.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "model/config.h"
#include "model/stats.h"
#include "model/tlb/set_assoc.h"
#include "model/translation.h"

namespace septsim::model {

struct TlbLookup {
  bool hit = false;
  u8 where = 0;        // 1 = L1 DTLB, 2 = STLB
  Translation t;
  Cycles cycles = 0;   // lookup latency (L1 hit, or L1 miss + STLB lookup)
};

class TlbHierarchy {
 public:
  // Geometry, replacement and latencies from the config keys tlb.* and
  // latency.{l1_tlb_hit,stlb_hit}; counters under "<prefix>.dtlb.*" and
  // "<prefix>.stlb.*" (hits, misses, fills, evictions, invalidations).
  TlbHierarchy(const Config& cfg, StatsRegistry& stats, const std::string& prefix);
  ~TlbHierarchy();

  TlbLookup lookup(TranslationKind kind, const TlbContext& ctx, u64 addr, AccessType access);
  void fill(TranslationKind kind, const TlbContext& ctx, u64 addr, const Translation& t,
            AccessType access = AccessType::Read);

  void invlpg(const TlbContext& ctx, Gva gva);                // current VPID+PCID, globals too, all sizes
  void invpcid_address(u16 vpid, u16 pcid, Gva gva);          // INVPCID type 0
  void invpcid_single(u16 vpid, u16 pcid);                    // type 1: non-global of that PCID
  void invpcid_all(u16 vpid, bool include_globals);           // types 2 and 3
  void invvpid_address(u16 vpid, Gva gva);                    // INVVPID type 0
  void invvpid_single(u16 vpid, bool retain_globals);         // types 1 and 3
  void invvpid_all();                                         // type 2
  void invept_single(u64 eptp);                               // INVEPT type 1
  void invept_all();                                          // INVEPT type 2
  void flush_all();

  // Visits every valid entry (L1 and STLB), for invariant checks and tests:
  // fn(kind, ctx, page-aligned address, translation).
  void for_each(const std::function<void(TranslationKind, const TlbContext&, u64, const Translation&)>& fn) const;
  size_t valid_entries() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace septsim::model
