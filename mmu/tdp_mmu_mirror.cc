// Propagation of mirror-root changes to the Secure-EPT (tdp_mmu.c:
// set_external_spte_present, handle_changed_spte): the mirror entry holds
// FROZEN_SPTE while the hook runs; a refused map leaves the old value, a refused removal keeps the leaf
// (the VM is bugged and the page stays tracked).
#include <string>

#include "model/hex.h"
#include "mmu/tdp_mmu.h"

namespace septsim::mmu {

// The VM's valid mirror root (the kernel keeps it as mmu->mirror_root_hpa).
MmuPage* TdpMmu::mirror_root() const {
  for (MmuPage* root : roots_)
    if (root->role.is_mirror && !root->role.invalid) return root;
  return nullptr;
}

bool TdpMmu::propagate_to_external(TdpIter& iter, u64 new_spte) {
  const u64 old_spte = iter.old_spte;
  const bool was_present = is_shadow_present_pte(old_spte), is_present = is_shadow_present_pte(new_spte);
  if (!was_present && !is_present) return true;
  // The hooks change the Secure EPT even when the mirror entry keeps its value (a refused removal).
  if (check_log_) note_change(iter.gfn, iter.level, old_spte, new_spte);
  if (was_present && is_present) {
    mirror_bugs_.push_back("mirror gfn " + hex(iter.gfn) + " level " + std::to_string(iter.level) + " spte " +
                           hex(old_spte) + " -> " + hex(new_spte) + " (present -> present)");
    return false;
  }
  // A table leaving the mirror: handle_removed_pt removes its leaves and
  // reclaims its external_spt.
  if (was_present && !is_last_spte(old_spte, iter.level)) return true;
  *iter.sptep = FROZEN_SPTE;
  const Cycles frozen_at = op_.now();
  const Pfn child = is_present && !is_last_spte(new_spte, iter.level) ? sp_of_table(spte_to_pfn(new_spte))->external_spt : 0;
  if (!ext_->set_external_spte(iter.gfn, iter.level, old_spte, new_spte, child, op_)) {
    *iter.sptep = old_spte;
    return false;
  }
  if (is_present) frozen_.note_installed(iter.gfn, iter.level, frozen_at, op_);
  return true;
}

Cycles TdpMmu::frozen_until_slow(Gfn gfn, int level) const {
  const MmuPage* root = mirror_root();
  return root ? frozen_.frozen_until(gfn, level, int(root->role.level), op_) : 0;
}

void TdpMmu::remove_external_children(MmuPage& sp, unsigned index, u64 old_spte) {
  const int level = sp.role.level;
  if (!ext_ || !is_last_spte(old_spte, level)) return;
  // A refused removal bugs the VM; the table goes anyway, so the page is leaked.
  ext_->set_external_spte(sp.gfn + index * pages_per_level(level), level, old_spte, SHADOW_NONPRESENT_VALUE, 0, op_);
}

bool TdpMmu::link_mirror_sp(TdpIter& iter, MmuPage* sp, const KvmPageFault& fault) {
  if (ext_) {
    sp->external_spt = u32(ext_->take_external_spt(fault.external_spt_cache, op_));
    if (!sp->external_spt) {
      free_sp(sp);
      return false;
    }
  }
  if (link_sp(iter, sp)) return true;
  if (sp->external_spt) ext_->free_unlinked_external_spt(sp->external_spt, op_);
  free_sp(sp);
  return false;
}

bool TdpMmu::split_mirror_huge_page(Gfn gfn, u32 cache) {
  MmuPage* mirror = mirror_root();
  if (!mirror || !ext_) return true;
  for (TdpIter iter(mem_, *mirror, PG_LEVEL_2M, gfn); iter.valid && iter.gfn <= gfn; iter.next()) {
    if (iter.level == PG_LEVEL_4K || !is_present_leaf(iter.old_spte, iter.level) || !is_large_pte(iter.old_spte))
      continue;
    MmuPage* sp = alloc_sp();
    init_child_sp(sp, iter);
    sp->external_spt = u32(ext_->take_external_spt(cache, op_));
    if (!sp->external_spt) {
      free_sp(sp);
      return false;
    }
    const u64 old_spte = iter.old_spte;
    if (check_log_) note_change(iter.gfn, iter.level, old_spte, FROZEN_SPTE);
    *iter.sptep = FROZEN_SPTE;
    if (!ext_->split_external_spt(iter.gfn, iter.level, old_spte, sp->external_spt, op_)) {
      *iter.sptep = old_spte;
      ext_->free_unlinked_external_spt(sp->external_spt, op_);
      free_sp(sp);
      return false;
    }
    const int child_level = iter.level - 1;
    for (unsigned i = 0; i < kPtesPerTable; ++i) sp->spt[i] = make_small_spte(old_spte, child_level, i);
    op_.spent += kPtesPerTable * timing_.spte_write;
    stats_.update_page_stats(child_level, kPtesPerTable);
    const u64 table = make_nonleaf_spte(sp->spt_pfn, sp->role.ad_disabled);
    *iter.sptep = table;
    op_.spent += timing_.spte_write;
    handle_changed_spte(iter.gfn, old_spte, table, iter.level);
    ++stats_.split_huge_page;
    return true;
  }
  return true;
}

}  // namespace septsim::mmu
