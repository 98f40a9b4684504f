#include "seam/pamt.h"

namespace septsim::seam {

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
  if (table(PG_LEVEL_1G).count(key(hpa, PG_LEVEL_1G))) return PG_LEVEL_1G;
  if (table(PG_LEVEL_2M).count(key(hpa, PG_LEVEL_2M))) return PG_LEVEL_2M;
  return PG_LEVEL_4K;
}

PamtEntry Pamt::get(Hpa hpa, int level) const {
  auto it = table(level).find(key(hpa, level));
  return it == table(level).end() ? PamtEntry{} : it->second;
}

bool Pamt::set(Hpa hpa, int level, const PamtEntry& e) {
  auto& t = table(level);
  const u64 k = key(hpa, level);
  auto it = t.find(k);
  const bool was_used = it != t.end();
  const bool now_used = e.pt != PageType::PT_NDA;
  if (now_used)
    t[k] = e;
  else if (was_used)
    t.erase(it);
  if (level != PG_LEVEL_4K || was_used == now_used) return false;
  u32& used = used_4k_[hpa >> 21];
  used += now_used ? 1 : u32(-1);
  auto p = pairs_.find(hpa >> 21);
  if (p != pairs_.end()) p->second.page_count = used;
  if (used == 0) used_4k_.erase(hpa >> 21);
  return !now_used && used == 0 && p != pairs_.end();
}

void Pamt::set_bepoch(Hpa hpa, int level, u64 bepoch) {
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
  auto it = used_4k_.find(region >> 21);
  return it == used_4k_.end() ? 0 : it->second;
}

}  // namespace septsim::seam
