#include "model/walk/psc.h"

#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "model/ept.h"

namespace septsim::model {

namespace {

// Tag layout: context id (24 bits) | 5-level flag (bit 39) | address key (<= 36 bits).
// The context id names an interned (vpid, pcid, eptp) or eptp, so one u64 tag
// identifies an entry fully and invalidation can decode the context.
constexpr unsigned kIdShift = 40;
constexpr u64 kMaxIds = u64{1} << (64 - kIdShift);
constexpr u64 kFiveLevelBit = u64{1} << 39;

// Address bits from the top of a `levels`-deep tree down to the bits an entry
// at `entry_level` translates (e.g. 47:21 for a 4-level PDE).
inline u64 key_of(u64 addr, int levels, int entry_level) {
  unsigned bits = 9u * unsigned(levels - entry_level + 1);
  return (addr >> level_shift(entry_level)) & ((u64{1} << bits) - 1);
}

inline u64 make_tag(u32 id, int levels, u64 key) {
  return (u64(id) << kIdShift) | (levels == 5 ? kFiveLevelBit : 0) | key;
}
inline u32 id_of(u64 tag) { return u32(tag >> kIdShift); }

struct CtxHash {
  size_t operator()(const TlbContext& c) const {
    u64 h = c.eptp * 0x9e3779b97f4a7c15ull;
    h ^= (u64(c.vpid) << 16 | c.pcid) + 0x7f4a7c159e3779b9ull + (h << 6) + (h >> 2);
    return size_t(h);
  }
};

// Maps keys to dense ids; the last key is cached because a walker's context
// changes rarely (CR3 writes, VM entries).
template <class K, class Hash = std::hash<K>>
class Interner {
 public:
  u32 id(const K& k) {
    if (has_last_ && last_ == k) return last_id_;
    auto it = ids_.find(k);
    u32 id;
    if (it != ids_.end()) {
      id = it->second;
    } else {
      if (keys_.size() >= kMaxIds) throw std::length_error("paging-structure cache: too many distinct contexts");
      id = u32(keys_.size());
      keys_.push_back(k);
      ids_.emplace(k, id);
    }
    last_ = k, last_id_ = id, has_last_ = true;
    return id;
  }
  const K& key(u32 id) const { return keys_[id]; }

 private:
  std::vector<K> keys_;
  std::unordered_map<K, u32, Hash> ids_;
  K last_{};
  u32 last_id_ = 0;
  bool has_last_ = false;
};

// One cache per entry level 2..5 (PDE, PDPTE, PML4E, PML5E); 0 entries disables it.
struct LevelCaches {
  std::vector<SetAssoc<PscEntry>> arrays;
  bool enabled[4] = {};

  LevelCaches(const Config& cfg, const char* side, u32 ways, const std::string& policy, u64 seed) {
    static const char* kNames[4] = {"pd", "pdpt", "pml4", "pml5"};
    arrays.reserve(4);
    for (int i = 0; i < 4; ++i) {
      u64 entries = cfg.u(std::string("pwc.") + side + "." + kNames[i] + ".entries");
      enabled[i] = entries != 0;
      arrays.emplace_back(u32(entries), ways, policy, seed + u64(i));
    }
  }
  SetAssoc<PscEntry>* at(int entry_level) {
    int i = entry_level - 2;
    return enabled[i] ? &arrays[size_t(i)] : nullptr;
  }
  // Deepest hit first: returns the entry level that hit, 0 on a miss.
  int lookup(u32 id, int levels, u64 addr, PscEntry& out) {
    for (int l = PG_LEVEL_2M; l <= levels; ++l) {
      SetAssoc<PscEntry>* a = at(l);
      if (!a) continue;
      u64 key = key_of(addr, levels, l);
      if (const PscEntry* e = a->find(key, make_tag(id, levels, key))) {
        out = *e;
        return l;
      }
    }
    return 0;
  }
  void fill(u32 id, int levels, u64 addr, int entry_level, const PscEntry& e) {
    if (entry_level < PG_LEVEL_2M || entry_level > levels) return;
    if (SetAssoc<PscEntry>* a = at(entry_level)) {
      u64 key = key_of(addr, levels, entry_level);
      a->insert(key, make_tag(id, levels, key), e);
    }
  }
  template <class Pred>
  void erase_if(Pred pred) {
    for (auto& a : arrays) a.erase_if([&](u64 tag, const PscEntry&) { return pred(id_of(tag)); });
  }
  void clear() {
    for (auto& a : arrays) a.clear();
  }
};

}  // namespace

struct PagingStructureCaches::Impl {
  LevelCaches guest, ept;
  Interner<TlbContext, CtxHash> ctx_ids;
  Interner<u64> eptp_ids;
  Counter &guest_hits, &guest_misses, &ept_hits, &ept_misses;

  Impl(const Config& cfg, StatsRegistry& stats, const std::string& prefix)
      : guest(cfg, "guest", u32(cfg.u("pwc.ways")), cfg.s("pwc.replacement"), cfg.u("sim.seed")),
        ept(cfg, "ept", u32(cfg.u("pwc.ways")), cfg.s("pwc.replacement"), cfg.u("sim.seed") + 16),
        guest_hits(stats.counter(prefix + ".psc.guest.hits", "guest paging-structure cache lookups that hit (any level)")),
        guest_misses(stats.counter(prefix + ".psc.guest.misses", "guest paging-structure cache lookups that missed every level")),
        ept_hits(stats.counter(prefix + ".psc.ept.hits", "EPT paging-structure cache lookups that hit (any level)")),
        ept_misses(stats.counter(prefix + ".psc.ept.misses", "EPT paging-structure cache lookups that missed every level")) {}
};

PagingStructureCaches::PagingStructureCaches(const Config& cfg, StatsRegistry& stats, const std::string& prefix)
    : impl_(std::make_shared<Impl>(cfg, stats, prefix)) {}

std::optional<PagingStructureCaches::GuestHit> PagingStructureCaches::lookup_guest(const TlbContext& ctx,
                                                                                   int guest_levels, Gva gva) {
  PscEntry e;
  int l = impl_->guest.lookup(impl_->ctx_ids.id(ctx), guest_levels, gva, e);
  if (!l) {
    ++impl_->guest_misses;
    return std::nullopt;
  }
  ++impl_->guest_hits;
  return GuestHit{l - 1, e};
}

void PagingStructureCaches::fill_guest(const TlbContext& ctx, int guest_levels, Gva gva, int entry_level,
                                       const PscEntry& e) {
  impl_->guest.fill(impl_->ctx_ids.id(ctx), guest_levels, gva, entry_level, e);
}

std::optional<PagingStructureCaches::EptHit> PagingStructureCaches::lookup_ept(u64 eptp, int ept_levels, Gpa gpa) {
  PscEntry e;
  int l = impl_->ept.lookup(impl_->eptp_ids.id(eptp), ept_levels, gpa, e);
  if (!l) {
    ++impl_->ept_misses;
    return std::nullopt;
  }
  ++impl_->ept_hits;
  return EptHit{l - 1, e};
}

void PagingStructureCaches::fill_ept(u64 eptp, int ept_levels, Gpa gpa, int entry_level, const PscEntry& e) {
  impl_->ept.fill(impl_->eptp_ids.id(eptp), ept_levels, gpa, entry_level, e);
}

void PagingStructureCaches::invalidate_vpid_pcid(u16 vpid, u16 pcid) {
  Impl& m = *impl_;
  m.guest.erase_if([&](u32 id) {
    const TlbContext& c = m.ctx_ids.key(id);
    return c.vpid == vpid && c.pcid == pcid;
  });
}

void PagingStructureCaches::invalidate_vpid(u16 vpid) {
  Impl& m = *impl_;
  m.guest.erase_if([&](u32 id) { return m.ctx_ids.key(id).vpid == vpid; });
}

// INVEPT single-context acts on the EP4TA (EPTP bits 51:12), SDM Vol. 3C 29.4.3.1,
// so encodings that differ only in A/D enable or walk length are dropped together.
void PagingStructureCaches::invalidate_eptp(u64 eptp) {
  Impl& m = *impl_;
  const u64 root = eptp & ept::kAddrMask;
  m.guest.erase_if([&](u32 id) { return (m.ctx_ids.key(id).eptp & ept::kAddrMask) == root; });
  m.ept.erase_if([&](u32 id) { return (m.eptp_ids.key(id) & ept::kAddrMask) == root; });
}

void PagingStructureCaches::invalidate_all() {
  impl_->guest.clear();
  impl_->ept.clear();
}

}  // namespace septsim::model
