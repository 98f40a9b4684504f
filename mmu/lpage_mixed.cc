#include "mmu/lpage_mixed.h"

#include <algorithm>

namespace septsim::mmu {

namespace {

// hugepage_has_attrs: every gfn of the frame at `gfn` has `priv`; a 1G
// frame also needs no mixed 2M frame inside.
bool hugepage_has_attrs(const Memslot& slot, const MemAttributes& attrs, Gfn gfn, int level, bool priv) {
  const Gfn end = gfn + pages_per_level(level);
  if (level == PG_LEVEL_2M) return attrs.uniform(gfn, end, priv);
  for (Gfn g = gfn; g < end; g += pages_per_level(level - 1))
    if (slot.hugepage_test_mixed(g, level - 1) || attrs.is_private(g) != priv) return false;
  return true;
}

bool in_slot(const Memslot& slot, Gfn gfn, int level) {
  return gfn >= slot.base_gfn && gfn + pages_per_level(level) <= slot.end_gfn();
}

void recompute(Memslot& slot, const MemAttributes& attrs, Gfn gfn, int level, bool priv) {
  if (in_slot(slot, gfn, level)) slot.hugepage_set_mixed(gfn, level, !hugepage_has_attrs(slot, attrs, gfn, level, priv));
}

}  // namespace

void init_memslot_memory_attributes(Memslot& slot, const MemAttributes& attrs) {
  for (int level = PG_LEVEL_2M; level <= PG_LEVEL_1G; ++level) {
    const u64 n = pages_per_level(level);
    for (Gfn gfn = (slot.base_gfn + n - 1) & ~(n - 1); gfn + n <= slot.end_gfn(); gfn += n)
      recompute(slot, attrs, gfn, level, attrs.is_private(gfn));
  }
}

void post_set_memory_attributes(Memslot& slot, const MemAttributes& attrs, Gfn start, Gfn end, bool priv) {
  start = std::max(start, slot.base_gfn);
  end = std::min(end, slot.end_gfn());
  if (start >= end) return;
  for (int level = PG_LEVEL_2M; level <= PG_LEVEL_1G; ++level) {
    const u64 n = pages_per_level(level);
    Gfn gfn = start & ~(n - 1);
    if (gfn != start || gfn + n > end) {
      recompute(slot, attrs, gfn, level, priv);
      gfn += n;
    }
    // Frames the range covers hold only the attribute just set.
    for (; gfn + n <= end; gfn += n) slot.hugepage_set_mixed(gfn, level, false);
    if (gfn < end) recompute(slot, attrs, gfn, level, priv);
  }
}

}  // namespace septsim::mmu
