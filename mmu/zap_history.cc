#include "mmu/zap_history.h"

#include <algorithm>

#include "mmu/spte.h"

namespace septsim::mmu {

ZapHistory::ZapHistory(model::StatsRegistry& r)
    : flushes_(r.counter("kvm.slot_zap.flushes", "memslot flushes (kvm_arch_flush_shadow_memslot on DELETE or MOVE)")),
      zapped_sptes_(r.counter("kvm.slot_zap.zapped_sptes", "present leaf SPTEs zapped by memslot flushes")),
      zapped_pages_(r.counter("kvm.slot_zap.zapped_pages", "page-table pages (roots excluded) freed by memslot flushes")),
      refaults_(r.counter("kvm.slot_zap.refaults", "leaves installed again over a range a memslot flush zapped")),
      rebuilt_pages_(r.counter("kvm.slot_zap.rebuilt_pages",
                               "page-table pages allocated again at a level and gfn a memslot flush freed")),
      cycles_(r.counter("kvm.slot_zap.cycles", "host cycles in memslot flushes")) {}

void ZapHistory::end_flush(Cycles cycles) {
  recording_ = false;
  ++flushes_;
  cycles_ += cycles;
}

void ZapHistory::leaf_zapped(Gfn gfn, int level) {
  if (!recording_) return;
  ++zapped_sptes_;
  Gfn start = gfn, end = gfn + pages_per_level(level);
  auto it = zapped_leaves_.upper_bound(start);
  if (it != zapped_leaves_.begin() && std::prev(it)->second >= start) --it;
  // Merge with every range that overlaps or touches [start, end).
  while (it != zapped_leaves_.end() && it->first <= end) {
    start = std::min(start, it->first);
    end = std::max(end, it->second);
    it = zapped_leaves_.erase(it);
  }
  zapped_leaves_.emplace(start, end);
}

void ZapHistory::leaf_installed(Gfn gfn, int level) {
  if (zapped_leaves_.empty()) return;
  Gfn end = gfn + pages_per_level(level);
  auto it = zapped_leaves_.upper_bound(gfn);
  if (it != zapped_leaves_.begin() && std::prev(it)->second > gfn) --it;
  bool hit = false;
  // Cut [gfn, end) out of the ranges it overlaps.
  while (it != zapped_leaves_.end() && it->first < end) {
    hit = true;
    Gfn first = it->first, last = it->second;
    it = zapped_leaves_.erase(it);
    if (first < gfn) zapped_leaves_.emplace(first, gfn);
    if (last > end) {
      zapped_leaves_.emplace(end, last);
      break;
    }
  }
  refaults_ += hit;
}

void ZapHistory::table_freed(Gfn gfn, int level) {
  if (!recording_) return;
  ++zapped_pages_;
  freed_tables_.insert({level, gfn});
}

void ZapHistory::table_allocated(Gfn gfn, int level) {
  if (!freed_tables_.empty()) rebuilt_pages_ += freed_tables_.erase({level, gfn});
}

}  // namespace septsim::mmu
