#include "mmu/shadow_ept.h"

namespace septsim::mmu {

namespace {
unsigned index_at(Gpa gpa, int level) { return unsigned((gpa >> level_shift(level)) & 511); }
}  // namespace

ShadowEptRoot::ShadowEptRoot(Gfn root_gfn, MmuPageRole role) : root_gfn_(root_gfn), role_(role) {
  pages_[{int(role.level), Gfn{}}].level = int(role.level);
}

ShadowEptRoot::Key ShadowEptRoot::key(Gpa gpa, int level) const {
  // A table at `level` maps pages(level + 1) gfns.
  Gfn gfn = gpa_to_gfn(gpa);
  return {level, gfn & ~(pages_per_level(level + 1) - 1)};
}

unsigned ShadowEptRoot::link_path(Gpa gpa) {
  unsigned created = 0;
  for (int level = int(role_.level); level >= PG_LEVEL_4K; --level) {
    auto [it, fresh] = pages_.try_emplace(key(gpa, level));
    if (fresh) it->second.level = level, ++created;
    if (level > PG_LEVEL_4K) it->second.present.set(index_at(gpa, level));
  }
  return created;
}

ShadowPage* ShadowEptRoot::leaf_page(Gpa gpa) {
  auto it = pages_.find(key(gpa, PG_LEVEL_4K));
  return it == pages_.end() ? nullptr : &it->second;
}

const ShadowPage* ShadowEptRoot::leaf_page(Gpa gpa) const {
  auto it = pages_.find(key(gpa, PG_LEVEL_4K));
  return it == pages_.end() ? nullptr : &it->second;
}

bool ShadowEptRoot::leaf_present(Gpa gpa, bool fresh_only) const {
  const ShadowPage* sp = leaf_page(gpa);
  unsigned i = index_at(gpa, PG_LEVEL_4K);
  return sp && sp->present.test(i) && !(fresh_only && sp->stale.test(i));
}

void ShadowEptRoot::install_leaf(Gpa gpa) {
  ShadowPage* sp = leaf_page(gpa);
  unsigned i = index_at(gpa, PG_LEVEL_4K);
  sp->present.set(i);
  sp->stale.reset(i);
}

bool ShadowEptRoot::guest_entry_written(Gpa gpa) {
  ShadowPage* sp = leaf_page(gpa);
  if (!sp) return false;  // nothing shadows that EPT12 table yet
  unsigned i = index_at(gpa, PG_LEVEL_4K);
  if (sp->present.test(i)) sp->stale.set(i);
  if (sp->unsync) return false;
  sp->unsync = true;
  ++unsync_pages_;
  return true;
}

unsigned ShadowEptRoot::sync_unsync_pages() {
  unsigned synced = 0;
  for (auto& [k, sp] : pages_) {
    if (!sp.unsync) continue;
    sp.present &= ~sp.stale;
    sp.stale.reset();
    sp.unsync = false;
    ++synced;
  }
  unsync_pages_ = 0;
  return synced;
}

size_t ShadowEptRoot::present_sptes() const {
  size_t n = 0;
  for (const auto& [k, sp] : pages_) n += sp.present.count();
  return n;
}

}  // namespace septsim::mmu
