#include "model/tlb/tlb_hierarchy.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <tuple>
#include <vector>

namespace septsim::model {

namespace {

// Tag layout: [63:19] page number at the entry's size, [18:3] context id,
// [2] kind, [1:0] level. Addresses are cut to 57 bits (LA57 / any MAXPHYADDR),
// so the page number fits in 45 bits.
constexpr unsigned kAddrBits = 57;
constexpr u64 kAddrMask = (u64{1} << kAddrBits) - 1;
constexpr unsigned kCtxShift = 3;
constexpr unsigned kCtxBits = 16;
constexpr unsigned kVpnShift = kCtxShift + kCtxBits;
constexpr u32 kMaxContexts = u32{1} << kCtxBits;
static_assert(kVpnShift + (kAddrBits - kPageShift) == 64);

constexpr u64 make_tag(u64 vpn, int level, TranslationKind kind, u32 ctx) {
  return (vpn << kVpnShift) | (u64(ctx) << kCtxShift) | (u64(kind) << 2) | u64(level);
}
constexpr int tag_level(u64 tag) { return int(tag & 3); }
constexpr TranslationKind tag_kind(u64 tag) { return TranslationKind((tag >> 2) & 1); }
constexpr u32 tag_ctx(u64 tag) { return u32((tag >> kCtxShift) & (kMaxContexts - 1)); }
constexpr u64 tag_vpn(u64 tag) { return tag >> kVpnShift; }

// Bits 51:12 of the EPTP: INVEPT single-context matches on these (the EP4TA).
constexpr u64 kEp4taMask = 0x000F'FFFF'FFFF'F000ull;

constexpr u8 kNeed[3] = {kPermRead, kPermWrite, kPermExec};

// Which entries of a context an invalidation removes.
constexpr u8 kDropNonGlobal = 1, kDropGlobal = 2, kDropAll = 3;

u64 mix_seed(u64 seed, u64 k) {
  u64 z = seed + 0x9E3779B97F4A7C15ull * (k + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

struct TlbHierarchy::Impl {
  using Array = SetAssoc<Translation>;

  struct Ctx {
    TranslationKind kind;
    TlbContext c;  // vpid = pcid = 0 for guest-physical contexts
  };
  static bool linear(const Ctx& x) { return x.kind == TranslationKind::Linear; }
  using Key = std::tuple<u8, u16, u16, u64>;

  Array l1_4k, l1_2m, l1_1g, stlb, stlb_1g;
  Array* l1[4];    // by level
  Array* l1i[4];   // by level, for fetches when the ITLB is enabled
  Array* l2[4];    // STLB array by level
  Array* all[7];

  Cycles lat_l1, lat_stlb;

  Counter *dtlb_hits, *dtlb_misses, *stlb_hits, *stlb_misses, *fills, *evictions, *invalidated;
  Counter *itlb_hits = nullptr, *itlb_misses = nullptr;
  Counter* fills_by_level[4] = {};  // PG_LEVEL_4K .. PG_LEVEL_1G

  std::vector<Ctx> ctxs;
  std::map<Key, u32> ids;
  std::vector<u32> free_ids;  // kept sorted descending: back() is the smallest
  std::vector<u8> drop;       // scratch: per-context drop mask

  // One-entry caches of the last resolved context per kind.
  bool lin_valid = false, gp_valid = false;
  TlbContext lin_ctx;
  u32 lin_id = 0;
  u64 gp_eptp = 0;
  u32 gp_id = 0;

  // L1 ITLB (tlb.l1i.enabled): 4K and 2M arrays; 1G fetch translations live
  // in the STLB only (`no_1g` stays empty). Last: the data path's members
  // above stay where they were.
  Array i_4k, i_2m, no_1g;
  bool itlb;

  // The owner's hot list (see TlbHierarchy::HotList), kept up to date here.
  HotList& hot;
  void hot_wake() {
    hot.on = true;  // empty: everything that happened meanwhile is forgotten
    hot.count = 0;
  }

  void hot_clear() {
    for (HotEntry& h : hot.entries) h.page = ~u64{0};
  }
  void hot_add(TranslationKind kind, const TlbContext& ctx, u64 a, int lvl, const Translation& t) {
    if (kind != hot.kind || !(ctx == hot.ctx)) [[unlikely]]
      hot_clear(), hot.kind = kind, hot.ctx = ctx;
    const u32 set = l1[lvl]->set_of(a >> level_shift(lvl));
    HotEntry& h = hot.entries[set % HotList::kSlots];
    h.page = a >> kPageShift, h.t = t;
  }

  Impl(const Config& cfg, StatsRegistry& st, const std::string& p, HotList& hot_list)
      : l1_4k(u32(cfg.u("tlb.l1d.4k.entries")), u32(cfg.u("tlb.l1d.4k.ways")), cfg.s("tlb.replacement"),
              mix_seed(cfg.u("sim.seed"), 0)),
        l1_2m(u32(cfg.u("tlb.l1d.2m.entries")), u32(cfg.u("tlb.l1d.2m.ways")), cfg.s("tlb.replacement"),
              mix_seed(cfg.u("sim.seed"), 1)),
        l1_1g(u32(cfg.u("tlb.l1d.1g.entries")), u32(cfg.u("tlb.l1d.1g.ways")), cfg.s("tlb.replacement"),
              mix_seed(cfg.u("sim.seed"), 2)),
        stlb(u32(cfg.u("tlb.stlb.entries")), u32(cfg.u("tlb.stlb.ways")), cfg.s("tlb.replacement"),
             mix_seed(cfg.u("sim.seed"), 3)),
        stlb_1g(u32(cfg.u("tlb.stlb_1g.entries")), u32(cfg.u("tlb.stlb_1g.ways")), cfg.s("tlb.replacement"),
                mix_seed(cfg.u("sim.seed"), 4)),
        l1{nullptr, &l1_4k, &l1_2m, &l1_1g},
        l1i{nullptr, &i_4k, &i_2m, &no_1g},
        l2{nullptr, &stlb, &stlb, &stlb_1g},
        all{&l1_4k, &l1_2m, &l1_1g, &stlb, &stlb_1g, &i_4k, &i_2m},
        lat_l1(cfg.u("latency.l1_tlb_hit")),
        lat_stlb(cfg.u("latency.stlb_hit")),
        i_4k(u32(cfg.u("tlb.l1i.4k.entries")), u32(cfg.u("tlb.l1i.4k.ways")), cfg.s("tlb.replacement"),
             mix_seed(cfg.u("sim.seed"), 5)),
        i_2m(u32(cfg.u("tlb.l1i.2m.entries")), 0, cfg.s("tlb.replacement"), mix_seed(cfg.u("sim.seed"), 6)),
        no_1g(1, 1, "lru", 0),
        itlb(cfg.b("tlb.l1i.enabled")),
        hot(hot_list) {
    dtlb_hits = &st.counter(p + ".dtlb.hits", "L1 DTLB hits");
    dtlb_misses = &st.counter(p + ".dtlb.misses", "L1 DTLB misses (permission and clean-write misses included)");
    stlb_hits = &st.counter(p + ".stlb.hits", "STLB hits after an L1 DTLB miss");
    stlb_misses = &st.counter(p + ".stlb.misses", "STLB misses: the lookup needs a walk");
    fills = &st.counter(p + ".tlb.fills", "translations filled after a walk");
    evictions = &st.counter(p + ".tlb.evictions", "valid entries evicted by a fill or an L1 refill (L1 and STLB)");
    invalidated = &st.counter(p + ".tlb.invalidated", "entries removed by invalidations (L1 and STLB copies each count)");
    // What perf counts as DTLB_LOAD_MISSES.WALK_COMPLETED_4K / _2M_4M / _1G
    // (Intel SDM Vol. 3B 20, Skylake events): a completed walk by the page
    // size it found.
    static const char* const kSize[4] = {"", "4k", "2m", "1g"};
    for (int lvl = PG_LEVEL_4K; lvl <= PG_LEVEL_1G; ++lvl)
      fills_by_level[lvl] = &st.counter(p + ".tlb.fills_" + kSize[lvl],
                                        std::string("translations of ") + (lvl == 1 ? "4K" : lvl == 2 ? "2M" : "1G") +
                                            " pages filled after a walk (completed walks by page size)");
    hot.itlb = itlb, hot.lat_l1 = lat_l1, hot.l1_hits = dtlb_hits;
    if (itlb) {
      itlb_hits = &st.counter(p + ".itlb.hits", "L1 ITLB hits (fetches)");
      itlb_misses = &st.counter(p + ".itlb.misses", "L1 ITLB misses (fetches; they go on to the STLB)");
    }
  }

  // The L1 arrays an access of this type uses.
  Array* const* first_level(AccessType access) { return itlb && access == AccessType::Fetch ? l1i : l1; }

  // Context id of an existing context, or kMaxContexts when none.
  u32 find_id(TranslationKind kind, const TlbContext& c) {
    if (kind == TranslationKind::Linear) {
      if (lin_valid && lin_ctx == c) return lin_id;
      auto it = ids.find(Key{0, c.vpid, c.pcid, c.eptp});
      if (it == ids.end()) return kMaxContexts;
      lin_valid = true, lin_ctx = c, lin_id = it->second;
      return lin_id;
    }
    if (gp_valid && gp_eptp == c.eptp) return gp_id;
    auto it = ids.find(Key{1, 0, 0, c.eptp});
    if (it == ids.end()) return kMaxContexts;
    gp_valid = true, gp_eptp = c.eptp, gp_id = it->second;
    return gp_id;
  }

  u32 intern(TranslationKind kind, const TlbContext& c) {
    u32 id = find_id(kind, c);
    if (id != kMaxContexts) return id;
    if (free_ids.empty() && ctxs.size() >= kMaxContexts) reclaim();
    Ctx ctx{kind, kind == TranslationKind::Linear ? c : TlbContext{0, 0, c.eptp}};
    if (!free_ids.empty()) {
      id = free_ids.back();
      free_ids.pop_back();
      ctxs[id] = ctx;
    } else {
      id = u32(ctxs.size());
      ctxs.push_back(ctx);
    }
    ids.emplace(Key{u8(kind), ctx.c.vpid, ctx.c.pcid, ctx.c.eptp}, id);
    if (kind == TranslationKind::Linear)
      lin_valid = true, lin_ctx = c, lin_id = id;
    else
      gp_valid = true, gp_eptp = c.eptp, gp_id = id;
    return id;
  }

  // Frees the ids no entry uses; if every id is in use, empties the TLBs.
  void reclaim() {
    std::vector<u8> used(ctxs.size(), 0);
    for (Array* a : all) a->for_each([&](u64 tag, const Translation&) { used[tag_ctx(tag)] = 1; });
    bool any_free = std::find(used.begin(), used.end(), 0) != used.end();
    if (!any_free) {
      for (Array* a : all) *evictions += a->size(), a->clear();
      std::fill(used.begin(), used.end(), 0);
    }
    free_ids.clear();
    for (u32 id = u32(ctxs.size()); id-- > 0;)
      if (!used[id]) {
        const Ctx& x = ctxs[id];
        ids.erase(Key{u8(x.kind), x.c.vpid, x.c.pcid, x.c.eptp});
        free_ids.push_back(id);  // descending, so back() is the smallest id
      }
    lin_valid = gp_valid = false;
  }

  void drop_entry(int level, u64 a, u64 tag) {
    hot_clear();
    u64 index = a >> level_shift(level);
    l1[level]->erase(index, tag);
    if (itlb) l1i[level]->erase(index, tag);
    l2[level]->erase(index, tag);
  }

  // What TlbHierarchy::lookup() leaves: the hot list missed, or is not in use.
  TlbLookup lookup(TranslationKind kind, const TlbContext& ctx, u64 addr, AccessType access) {
    if (itlb && access == AccessType::Fetch) [[unlikely]]
      return lookup_in<true, false>(kind, ctx, addr, access);
    if (hot.on) return lookup_in<false, true>(kind, ctx, addr, access);
    return lookup_in<false, false>(kind, ctx, addr, access);
  }

  // kItlb: the L1 arrays are the ITLB's (a fetch with tlb.l1i.enabled); a
  // separate instance keeps the data path's code as it was without an ITLB.
  // kHot: the hot list is in use (the data path only) and has just missed;
  // without it the lookup is the plain one.
  template <bool kItlb, bool kHot>
  TlbLookup lookup_in(TranslationKind kind, const TlbContext& ctx, u64 addr, AccessType access) {
    Array* const* const first = kItlb ? l1i : l1;
    Counter* const l1_hits = kItlb ? itlb_hits : dtlb_hits;
    Counter* const l1_misses = kItlb ? itlb_misses : dtlb_misses;
    TlbLookup r;
    const u8 need = kNeed[unsigned(access)];
    const bool write = access == AccessType::Write;
    if (kHot && ++hot.count >= HotList::kTries) hot_clear(), hot.on = false;
    u32 id = find_id(kind, ctx);
    if (id != kMaxContexts) {
      const u64 a = addr & kAddrMask;
      // Arrays of a page size nothing was filled at (1G, often 2M) are skipped.
      for (int lvl = PG_LEVEL_4K; lvl <= PG_LEVEL_1G; ++lvl) {
        if (first[lvl]->empty()) continue;
        u64 index = a >> level_shift(lvl);
        u64 tag = make_tag(index, lvl, kind, id);
        if (const Translation* e = first[lvl]->find(index, tag)) {
          if ((e->perms & need) && !(write && !e->dirty)) {
            ++*l1_hits;
            r.hit = true, r.where = 1, r.t = *e, r.cycles = lat_l1;
            if (kItlb)
              hot_clear();
            else if (kHot && hot.on)  // the lookup may just have put it to rest
              hot_add(kind, ctx, a, lvl, *e);
            return r;
          }
          drop_entry(lvl, a, tag);
          if (!kItlb) hot_wake();
          ++*l1_misses, ++*stlb_misses;
          r.cycles = lat_l1 + lat_stlb;
          return r;
        }
      }
      if (!kItlb) hot_wake();
      ++*l1_misses;
      r.cycles = lat_l1 + lat_stlb;
      for (int lvl = PG_LEVEL_4K; lvl <= PG_LEVEL_1G; ++lvl) {
        if (l2[lvl]->empty()) continue;
        u64 index = a >> level_shift(lvl);
        u64 tag = make_tag(index, lvl, kind, id);
        if (const Translation* e = l2[lvl]->find(index, tag)) {
          if ((e->perms & need) && !(write && !e->dirty)) {
            ++*stlb_hits;
            r.hit = true, r.where = 2, r.t = *e;
            hot_clear();  // the refill below changes an L1 set
            if ((!kItlb || first[lvl] != &no_1g) && first[lvl]->insert(index, tag, r.t)) ++*evictions;
            return r;
          }
          drop_entry(lvl, a, tag);
          break;
        }
      }
      ++*stlb_misses;
      return r;
    }
    if (!kItlb) hot_wake();
    ++*l1_misses, ++*stlb_misses;
    r.cycles = lat_l1 + lat_stlb;
    return r;
  }

  void fill(TranslationKind kind, const TlbContext& ctx, u64 addr, const Translation& t, AccessType access) {
    if (t.level < PG_LEVEL_4K || t.level > PG_LEVEL_1G)
      throw std::invalid_argument("TlbHierarchy::fill: level " + std::to_string(t.level) + " is not 1, 2 or 3");
    hot_clear();
    u32 id = intern(kind, ctx);
    u64 index = (addr & kAddrMask) >> level_shift(t.level);
    u64 tag = make_tag(index, t.level, kind, id);
    ++*fills;
    ++*fills_by_level[t.level];
    Array* const first = first_level(access)[t.level];
    if (first != &no_1g && first->insert(index, tag, t)) ++*evictions;
    if (l2[t.level]->insert(index, tag, t)) ++*evictions;
  }

  // Removes every entry whose context has a non-zero drop mask that covers
  // the entry's global bit; `addr_match` (if set) also requires the entry's
  // page to contain `gva`.
  void invalidate(bool addr_match, u64 gva) {
    hot_clear();
    const u64 a = gva & kAddrMask;
    size_t n = 0;
    for (Array* arr : all)
      n += arr->erase_if([&](u64 tag, const Translation& t) {
        u8 m = drop[tag_ctx(tag)];
        if (!(m & (t.global ? kDropGlobal : kDropNonGlobal))) return false;
        return !addr_match || tag_vpn(tag) == a >> level_shift(tag_level(tag));
      });
    *invalidated += n;
  }

  // Fills `drop` from f(ctx) for every live context.
  template <class F>
  void select(F f) {
    drop.assign(ctxs.size(), 0);
    for (size_t id = 0; id < ctxs.size(); ++id) drop[id] = f(ctxs[id]);
    // Freed ids never tag a valid entry, so their stale Ctx does no harm.
  }

  void invalidate_all() {
    hot_clear();
    size_t n = 0;
    for (Array* arr : all) n += arr->size(), arr->clear();
    *invalidated += n;
  }
};

TlbHierarchy::TlbHierarchy(const Config& cfg, StatsRegistry& stats, const std::string& prefix)
    : impl_(std::make_unique<Impl>(cfg, stats, prefix, hot_)) {}

TlbHierarchy::~TlbHierarchy() = default;

TlbLookup TlbHierarchy::lookup_rest(TranslationKind kind, const TlbContext& ctx, u64 addr, AccessType access) {
  return impl_->lookup(kind, ctx, addr, access);
}

void TlbHierarchy::fill(TranslationKind kind, const TlbContext& ctx, u64 addr, const Translation& t,
                        AccessType access) {
  impl_->fill(kind, ctx, addr, t, access);
}

void TlbHierarchy::invlpg(const TlbContext& ctx, Gva gva) {
  // Current VPID; the current PCID, plus globals of any PCID; every EPTP.
  impl_->select([&](const Impl::Ctx& x) -> u8 {
    if (!Impl::linear(x) || x.c.vpid != ctx.vpid) return 0;
    return x.c.pcid == ctx.pcid ? kDropAll : kDropGlobal;
  });
  impl_->invalidate(true, gva);
}

void TlbHierarchy::invpcid_address(u16 vpid, u16 pcid, Gva gva) {
  impl_->select([&](const Impl::Ctx& x) -> u8 {
    return Impl::linear(x) && x.c.vpid == vpid && x.c.pcid == pcid ? kDropNonGlobal : 0;
  });
  impl_->invalidate(true, gva);
}

void TlbHierarchy::invpcid_single(u16 vpid, u16 pcid) {
  impl_->select([&](const Impl::Ctx& x) -> u8 {
    return Impl::linear(x) && x.c.vpid == vpid && x.c.pcid == pcid ? kDropNonGlobal : 0;
  });
  impl_->invalidate(false, 0);
}

void TlbHierarchy::invpcid_all(u16 vpid, bool include_globals) {
  u8 m = include_globals ? kDropAll : kDropNonGlobal;
  impl_->select([&](const Impl::Ctx& x) -> u8 { return Impl::linear(x) && x.c.vpid == vpid ? m : 0; });
  impl_->invalidate(false, 0);
}

void TlbHierarchy::invvpid_address(u16 vpid, Gva gva) {
  impl_->select([&](const Impl::Ctx& x) -> u8 { return Impl::linear(x) && x.c.vpid == vpid ? kDropAll : 0; });
  impl_->invalidate(true, gva);
}

void TlbHierarchy::invvpid_single(u16 vpid, bool retain_globals) {
  u8 m = retain_globals ? kDropNonGlobal : kDropAll;
  impl_->select([&](const Impl::Ctx& x) -> u8 { return Impl::linear(x) && x.c.vpid == vpid ? m : 0; });
  impl_->invalidate(false, 0);
}

void TlbHierarchy::invvpid_all() {
  // SDM: every VPID except 0000H.
  impl_->select([&](const Impl::Ctx& x) -> u8 { return Impl::linear(x) && x.c.vpid != 0 ? kDropAll : 0; });
  impl_->invalidate(false, 0);
}

void TlbHierarchy::invept_single(u64 eptp) {
  impl_->select([&](const Impl::Ctx& x) -> u8 {
    return (x.c.eptp & kEp4taMask) == (eptp & kEp4taMask) ? kDropAll : 0;
  });
  impl_->invalidate(false, 0);
}

void TlbHierarchy::invept_all() { impl_->invalidate_all(); }

void TlbHierarchy::flush_all() { impl_->invalidate_all(); }

void TlbHierarchy::for_each(
    const std::function<void(TranslationKind, const TlbContext&, u64, const Translation&)>& fn) const {
  for (const Impl::Array* arr : impl_->all)
    arr->for_each([&](u64 tag, const Translation& t) {
      const Impl::Ctx& x = impl_->ctxs[tag_ctx(tag)];
      u64 a = tag_vpn(tag) << level_shift(tag_level(tag));
      // Linear addresses are canonical: sign-extend from bit 56.
      if (tag_kind(tag) == TranslationKind::Linear && (a >> (kAddrBits - 1)) & 1) a |= ~kAddrMask;
      fn(tag_kind(tag), x.c, a, t);
    });
}

size_t TlbHierarchy::valid_entries() const {
  size_t n = 0;
  for (const Impl::Array* arr : impl_->all) n += arr->size();
  return n;
}

}  // namespace septsim::model
