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

  TlbLookup lookup(TranslationKind kind, const TlbContext& ctx, u64 addr, AccessType access) {
    if (const Translation* t = lookup_hot(kind, ctx, addr, access)) {
      TlbLookup r;
      r.hit = true, r.where = 1, r.t = *t, r.cycles = hot_.lat_l1;
      return r;
    }
    return lookup_rest(kind, ctx, addr, access);
  }
  // The first half of lookup(), inline in the caller: the L1 DTLB hit the
  // hot list answers (most lookups of a real program's trace), counted, with
  // latency l1_hit_cycles(); null when the list does not answer, and then
  // lookup_rest() must follow.
  const Translation* lookup_hot(TranslationKind kind, const TlbContext& ctx, u64 addr, AccessType access) {
    if (!hot_.on || (hot_.itlb && access == AccessType::Fetch) || kind != hot_.kind || !(ctx == hot_.ctx))
      return nullptr;
    static constexpr u8 kNeedPerm[3] = {kPermRead, kPermWrite, kPermExec};
    const u64 page = (addr & kHotAddrMask) >> kPageShift;
    for (const HotEntry& h : hot_.entries)
      if (h.page == page) {
        if (!(h.t.perms & kNeedPerm[unsigned(access)]) || (access == AccessType::Write && !h.t.dirty))
          return nullptr;  // the full lookup drops it
        ++*hot_.l1_hits;
        hot_.count = 0;
        return &h.t;
      }
    return nullptr;
  }
  // The rest of lookup(), after lookup_hot() returned null.
  TlbLookup lookup_rest(TranslationKind kind, const TlbContext& ctx, u64 addr, AccessType access);
  Cycles l1_hit_cycles() const { return hot_.lat_l1; }

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
  // Recent L1 DTLB hits of one context, each the last entry touched in its
  // set (L1 array and set): another access to the same 4K page finds the same
  // entry (the smaller page sizes before it missed and still miss), and
  // touching it again changes no replacement decision (it is already the most
  // recent of its set under LRU and tree-PLRU; random ignores touches). A hit
  // found by a full lookup replaces the entry of its set; any other lookup
  // outcome, a fill or an invalidation empties the list. Kept out of Impl so
  // that lookup() answers from it inline; Impl maintains it.
  static constexpr u64 kHotAddrMask = (u64{1} << 57) - 1;  // addresses cut to 57 bits, as the tags
  struct HotEntry {
    u64 page = ~u64{0};  // (addr & kHotAddrMask) >> kPageShift; all ones: empty
    Translation t;
  };
  struct HotList {
    // Slot i holds a hit of a set whose number is i modulo kSlots (a new hit
    // replaces the entry of its own set, or one it shares the slot with).
    static constexpr unsigned kSlots = 4;
    HotEntry entries[kSlots];
    TranslationKind kind = TranslationKind::Linear;
    TlbContext ctx;
    // Streams that never repeat a page (a strided run of L1 hits) would only
    // pay for the list: after kTries lookups in a row that it does not
    // answer, it stays empty and unused until the next L1 DTLB miss.
    static constexpr u32 kTries = 64;
    bool on = true;
    u32 count = 0;  // lookups in a row the list did not answer
    bool itlb = false;  // tlb.l1i.enabled: fetches use the L1 ITLB and never the list
    Cycles lat_l1 = 0;
    Counter* l1_hits = nullptr;  // the L1 DTLB's hit counter
  };
  struct Impl;
  HotList hot_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace septsim::model
