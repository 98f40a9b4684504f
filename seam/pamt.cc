#include "seam/pamt.h"

namespace septsim::seam {

u64 Pamt::owner_index(Hpa owner) {
  if (owner == 0) return 0;
  auto it = owner_index_.find(owner);
  if (it != owner_index_.end()) return it->second;
  const u64 i = owners_.size();
  owners_.push_back(owner);
  owner_index_.emplace(owner, i);
  return i;
}

PamtEntry Pamt::unpack(Hpa hpa, u64 w) const {
  if (w == 0) return PamtEntry{};
  if (w & kBig) return big_.at(hpa >> kPageShift);
  return PamtEntry{PageType(w & 15), owners_[(w >> 5) & ((u64{1} << kOwnerBits) - 1)], w >> kBepochShift};
}

void Pamt::pack(Hpa hpa, u64& w, const PamtEntry& e) {
  const u64 owner = owner_index(e.owner);
  if (u64(e.pt) < 16 && owner < (u64{1} << kOwnerBits) && e.bepoch < (u64{1} << (64 - kBepochShift))) {
    if (w & kBig) big_.erase(hpa >> kPageShift);
    w = u64(e.pt) | (owner << 5) | (e.bepoch << kBepochShift);
  } else {
    big_[hpa >> kPageShift] = e;
    w = kBig;
  }
}

Pamt::Pamt(u64 tdmr_bytes, bool dynamic) : tdmr_bytes_(tdmr_bytes), dynamic_(dynamic) {}

u64 Pamt::static_bytes_per_gib(bool dynamic) {
  const u64 per_1g = kPamtEntryBytes;
  const u64 per_2m = 512 * kPamtEntryBytes;
  const u64 per_4k = dynamic ? (512 * 512) / 8 : 512 * 512 * kPamtEntryBytes;  // bitmap: 1 bit per 4K page
  return per_1g + per_2m + per_4k;
}

u64 Pamt::static_bytes() const {
  const u64 gib = (tdmr_bytes_ + (u64{1} << 30) - 1) >> 30;
  return gib * static_bytes_per_gib(dynamic_);
}

int Pamt::leaf_level(Hpa hpa) const {
  if (!table(PG_LEVEL_1G).empty() && table(PG_LEVEL_1G).count(key(hpa, PG_LEVEL_1G))) return PG_LEVEL_1G;
  if (!table(PG_LEVEL_2M).empty() && table(PG_LEVEL_2M).count(key(hpa, PG_LEVEL_2M))) return PG_LEVEL_2M;
  return PG_LEVEL_4K;
}

PamtEntry Pamt::get(Hpa hpa, int level) const {
  if (level == PG_LEVEL_4K) {
    const Region4k* r = region4k(hpa >> 21);
    if (!r) return PamtEntry{};
    return unpack(hpa, r->e[(hpa >> kPageShift) & 511]);
  }
  auto it = table(level).find(key(hpa, level));
  return it == table(level).end() ? PamtEntry{} : it->second;
}

bool Pamt::set(Hpa hpa, int level, const PamtEntry& e) {
  const bool now_used = e.pt != PageType::PT_NDA;
  if (level != PG_LEVEL_4K) {
    auto& t = table(level);
    const u64 k = key(hpa, level);
    if (now_used)
      t[k] = e;
    else
      t.erase(k);
    return false;
  }
  const u64 region = hpa >> 21;
  if (region >= regions_.size()) {
    if (!now_used) return false;
    regions_.resize(region + 1);
  }
  std::unique_ptr<Region4k>& r = regions_[region];
  if (!r) {
    if (!now_used) return false;
    r = std::make_unique<Region4k>();
  }
  u64& w = r->e[(hpa >> kPageShift) & 511];
  const bool was_used = w != 0;
  if (now_used) {
    pack(hpa, w, e);
  } else {
    if (w & kBig) big_.erase(hpa >> kPageShift);
    w = 0;
  }
  if (was_used == now_used) return false;
  const u32 used = r->used += now_used ? 1 : u32(-1);
  auto pr = pairs_.find(region);
  if (pr != pairs_.end()) pr->second.page_count = used;
  if (used == 0) r.reset();
  return !now_used && used == 0 && pr != pairs_.end();
}

void Pamt::set_bepoch(Hpa hpa, int level, u64 bepoch) {
  if (level == PG_LEVEL_4K) {
    const u64 region = hpa >> 21;
    if (region >= regions_.size() || !regions_[region]) return;
    u64& w = regions_[region]->e[(hpa >> kPageShift) & 511];
    if (w == 0) return;
    PamtEntry e = unpack(hpa, w);
    e.bepoch = bepoch;
    pack(hpa, w, e);
    return;
  }
  auto it = table(level).find(key(hpa, level));
  if (it != table(level).end()) it->second.bepoch = bepoch;
}

Status Pamt::check_free_4k(Hpa hpa) const {
  if (!in_tdmr(hpa)) return TDX_OPERAND_ADDR_RANGE_ERROR;
  if (leaf_level(hpa) != PG_LEVEL_4K) return TDX_PAGE_METADATA_INCORRECT;
  if (dynamic_ && !has_pair(hpa)) return TDX_MISSING_PAMT_PAGE_PAIR;
  if (is_pamt_page(hpa) || get(hpa, PG_LEVEL_4K).pt != PageType::PT_NDA) return TDX_PAGE_METADATA_INCORRECT;
  return TDX_SUCCESS;
}

Status Pamt::check_free_2m(Hpa hpa) const {
  if (!in_tdmr(hpa)) return TDX_OPERAND_ADDR_RANGE_ERROR;
  if (leaf_level(hpa) != PG_LEVEL_4K || has_pair(hpa) || used_4k_in_region(hpa)) return TDX_PAGE_METADATA_INCORRECT;
  // A 2M page may not contain a page in use as a PAMT page.
  auto it = pamt_pages_.lower_bound(hpa >> kPageShift);
  if (it != pamt_pages_.end() && *it < ((hpa >> kPageShift) + 512)) return TDX_PAGE_METADATA_INCORRECT;
  return TDX_SUCCESS;
}

const PamtPair* Pamt::pair(Hpa hpa) const {
  auto it = pairs_.find(hpa >> 21);
  return it == pairs_.end() ? nullptr : &it->second;
}

void Pamt::install_pair(Hpa region, Hpa page0, Hpa page1) {
  PamtPair p{page0, page1, used_4k_in_region(region)};
  pairs_[region >> 21] = p;
  pamt_pages_.insert(page0 >> kPageShift);
  pamt_pages_.insert(page1 >> kPageShift);
}

PamtPair Pamt::remove_pair(Hpa region) {
  auto it = pairs_.find(region >> 21);
  PamtPair p = it->second;
  pairs_.erase(it);
  pamt_pages_.erase(p.page0 >> kPageShift);
  pamt_pages_.erase(p.page1 >> kPageShift);
  return p;
}

u32 Pamt::used_4k_in_region(Hpa region) const {
  const Region4k* r = region4k(region >> 21);
  return r ? r->used : 0;
}

}  // namespace septsim::seam
