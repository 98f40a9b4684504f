// The VM's memory attributes (kvm->mem_attr_array, KVM_SET_MEMORY_ATTRIBUTES):
// which gfns are private. Kept as boundaries: the attribute of a gfn is the
// value at the last boundary at or below it. A TD VM starts all private, as a
// VMM sets KVM_MEMORY_ATTRIBUTE_PRIVATE over guest RAM before the first
// vCPU runs.
#pragma once
#include <iterator>
#include <map>

#include "model/types.h"

namespace septsim::mmu {

class MemAttributes {
 public:
  explicit MemAttributes(bool default_private = true) : default_(default_private) {}

  bool is_private(Gfn gfn) const {
    auto it = bounds_.upper_bound(gfn);
    return it == bounds_.begin() ? default_ : std::prev(it)->second;
  }
  // Every gfn in [start, end) has attribute `priv` (kvm_range_has_memory_attributes).
  bool uniform(Gfn start, Gfn end, bool priv) const {
    if (is_private(start) != priv) return false;
    for (auto it = bounds_.upper_bound(start); it != bounds_.end() && it->first < end; ++it)
      if (it->second != priv) return false;
    return true;
  }
  void set(Gfn start, Gfn end, bool priv) {
    if (start >= end) return;
    const bool after = is_private(end);
    bounds_.erase(bounds_.lower_bound(start), bounds_.lower_bound(end));
    bounds_[end] = after;
    bounds_[start] = priv;
    // Drop boundaries that do not change the attribute.
    bool prev = default_;
    for (auto it = bounds_.begin(); it != bounds_.end();) {
      if (it->second == prev) {
        it = bounds_.erase(it);
      } else {
        prev = it->second;
        ++it;
      }
    }
  }

 private:
  bool default_;
  std::map<Gfn, bool> bounds_;
};

}  // namespace septsim::mmu
