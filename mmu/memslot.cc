#include "mmu/memslot.h"

#include <algorithm>

namespace septsim::mmu {

Memslot::Memslot(model::PhysMem& mem, const MemslotSpec& spec, u64 hva, int backing_level)
    : id(spec.id),
      base_gfn(gpa_to_gfn(spec.gpa)),
      npages(spec.size >> kPageShift),
      userspace_addr(hva),
      flags(spec.flags),
      host(mem, hva, spec.size, backing_level) {
  if (dirty_track_enabled()) dirty_bitmap.assign((npages + 63) / 64, 0);
  init_lpage_info();
}

void Memslot::init_lpage_info() {
  for (int level = PG_LEVEL_2M; level <= PG_LEVEL_1G; ++level) {
    unsigned shift = 9u * unsigned(level - 1);
    u64 mask = pages_per_level(level) - 1;
    u64 lpages = ((base_gfn + npages - 1).raw() >> shift) - (base_gfn.raw() >> shift) + 1;
    std::vector<int>& linfo = lpage_info[level - 2];
    linfo.assign(lpages, 0);
    if (base_gfn.raw() & mask) linfo.front() = 1;
    if ((base_gfn + npages).raw() & mask) linfo.back() = 1;
    if ((base_gfn.raw() ^ (userspace_addr >> kPageShift)) & mask) std::fill(linfo.begin(), linfo.end(), 1);
  }
}

int kvm_mmu_max_mapping_level(const Memslot& slot, Gfn gfn, int max_level) {
  for (; max_level > PG_LEVEL_4K; --max_level)
    if (!slot.disallow_lpage(gfn, max_level)) break;
  if (max_level == PG_LEVEL_4K) return PG_LEVEL_4K;
  return std::min(max_level, slot.host.mapping_level(slot.gfn_to_hva(gfn)));
}

const Memslot* Memslots::find(Gfn gfn) const {
  if (last_ && last_->contains(gfn)) return last_;
  auto it = std::upper_bound(slots_.begin(), slots_.end(), gfn,
                             [](Gfn g, const std::unique_ptr<Memslot>& s) { return g < s->base_gfn; });
  if (it == slots_.begin() || !(*--it)->contains(gfn)) return nullptr;
  return last_ = it->get();
}

Memslot* Memslots::by_id(u32 id) const {
  for (const auto& s : slots_)
    if (s->id == id) return s.get();
  return nullptr;
}

const Memslot* Memslots::overlapping(Gfn start, u64 npages, const Memslot* except) const {
  for (const auto& s : slots_)
    if (s.get() != except && start < s->end_gfn() && s->base_gfn < start + npages) return s.get();
  return nullptr;
}

void Memslots::insert(std::unique_ptr<Memslot> slot) {
  slots_.push_back(std::move(slot));
  resort();
}

std::unique_ptr<Memslot> Memslots::remove(u32 id) {
  auto it = std::find_if(slots_.begin(), slots_.end(), [id](const auto& s) { return s->id == id; });
  if (it == slots_.end()) return nullptr;
  std::unique_ptr<Memslot> out = std::move(*it);
  slots_.erase(it);
  last_ = nullptr;
  return out;
}

void Memslots::resort() {
  std::sort(slots_.begin(), slots_.end(), [](const auto& a, const auto& b) { return a->base_gfn < b->base_gfn; });
  last_ = nullptr;
}

}  // namespace septsim::mmu
