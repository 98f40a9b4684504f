#include "seam/sept_tree.h"

namespace septsim::seam {

using septe::SeptState;

SeptWalk SeptTree::walk(Gpa gpa, int level) const {
  SeptWalk w;
  Hpa table = root_;
  for (int l = top_level();; --l) {
    w.level = l;
    w.entry_hpa = table + u64(index(gpa, l)) * 8;
    w.entry = mem_.read64(w.entry_hpa);
    w.state = septe::state_or_free(w.entry);
    if (l == level) {
      w.reached = true;
      return w;
    }
    if (w.state != SeptState::NL_MAPPED) return w;
    table = septe::hpa_of(w.entry);
  }
}

SeptWalk SeptTree::walk_to_leaf(Gpa gpa) const {
  SeptWalk w;
  Hpa table = root_;
  for (int l = top_level(); l >= 0; --l) {
    w.level = l;
    w.entry_hpa = table + u64(index(gpa, l)) * 8;
    w.entry = mem_.read64(w.entry_hpa);
    w.state = septe::state_or_free(w.entry);
    if (septe::is_leaf_state(w.state)) {
      w.reached = true;
      return w;
    }
    if (w.state != SeptState::NL_MAPPED) return w;
    table = septe::hpa_of(w.entry);
  }
  return w;
}

void SeptTree::init_page(Hpa page) {
  u64* t = mem_.table_of(page >> kPageShift);
  for (unsigned i = 0; i < kPtesPerTable; ++i) t[i] = septe::kInitValue;
}

u64 septe_arch_value(u64 entry) {
  const SeptState s = septe::state_or_free(entry);
  if (s == SeptState::FREE) return septe::kSve;
  if (septe::is_leaf_state(s))
    return entry & (septe::kRwx | (7ull << septe::kMtShift) | septe::kIpat | septe::kPs | septe::kHpaMask | septe::kSve);
  return entry & (septe::kRwx | septe::kPs);
}

u64 septe_level_state(int level, SeptState s) { return u64(level) | (u64(septe::public_state(s)) << 8); }

}  // namespace septsim::seam
