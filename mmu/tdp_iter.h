// struct tdp_iter (arch/x86/kvm/mmu/tdp_iter.h): a pre-order walk of one root's EPT over
// the entries that map [start, end), never below min_level. Use as
//   for (TdpIter it(mem, root, min_level, start); it.valid && it.gfn < end; it.next())
// Writers store through it.sptep and refresh it.old_spte; the next step down
// re-reads the entry, so a freshly linked table is descended into.
#pragma once
#include "mmu/mmu_page.h"
#include "mmu/spte.h"
#include "model/phys_mem.h"

namespace septsim::mmu {

struct TdpIter {
  Gfn next_last_level_gfn{};
  u64* pt_path[PT64_ROOT_MAX_LEVEL] = {};
  Pfn pt_pfn[PT64_ROOT_MAX_LEVEL] = {};
  u64* sptep = nullptr;
  Gfn gfn{};  // first gfn mapped by the current entry
  int root_level = 0;
  int min_level = 0;
  int level = 0;
  u64 old_spte = 0;
  bool valid = false;
  bool mirror = false;  // the root is a TD's mirror root (is_mirror_sptep)

  TdpIter(model::PhysMem& mem, const MmuPage& root, int min_level_, Gfn start) : mem_(&mem) {
    root_level = root.role.level;
    mirror = root.role.is_mirror;
    min_level = min_level_;
    next_last_level_gfn = start;
    pt_path[root_level - 1] = root.spt;
    pt_pfn[root_level - 1] = root.spt_pfn;
    restart();
  }

  // Host-physical address of the current entry (sp->ptep for a child linked here).
  Hpa sptep_hpa() const { return (pt_pfn[level - 1] << kPageShift) + u64(sptep - pt_path[level - 1]) * 8; }

  void next() {
    if (try_step_down()) return;
    do {
      if (try_step_side()) return;
    } while (try_step_up());
    valid = false;
  }

 private:
  void refresh_sptep() {
    sptep = pt_path[level - 1] + pt_index(gfn_to_gpa(gfn), level);
    old_spte = *sptep;
  }
  void restart() {
    level = root_level;
    gfn = gfn_round_for_level(next_last_level_gfn, level);
    refresh_sptep();
    valid = true;
  }
  bool try_step_down() {
    if (level == min_level) return false;
    old_spte = *sptep;
    if (!is_shadow_present_pte(old_spte) || is_last_spte(old_spte, level)) return false;
    Pfn child = spte_to_pfn(old_spte);
    --level;
    pt_path[level - 1] = mem_->table_of(child);
    pt_pfn[level - 1] = child;
    gfn = gfn_round_for_level(next_last_level_gfn, level);
    refresh_sptep();
    return true;
  }
  bool try_step_side() {
    if (pt_index(gfn_to_gpa(gfn), level) == kPtesPerTable - 1) return false;
    gfn += pages_per_level(level);
    next_last_level_gfn = gfn;
    ++sptep;
    old_spte = *sptep;
    return true;
  }
  bool try_step_up() {
    if (level == root_level) return false;
    ++level;
    gfn = gfn_round_for_level(gfn, level);
    refresh_sptep();
    return true;
  }

  model::PhysMem* mem_;
};

}  // namespace septsim::mmu
