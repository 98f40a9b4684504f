#include "mmu/tdp_mmu.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "mmu/memslot.h"
#include "model/hex.h"

namespace septsim::mmu {

TdpMmu::TdpMmu(model::PhysMem& mem, const model::Timing& timing, MmuStats& stats, KvmOp& op)
    : mem_(mem), timing_(timing), stats_(stats), op_(op) {
  sps_.emplace_back();
}

TdpMmu::~TdpMmu() {
  for (MmuPage* root : roots_) {
    zap_root(root);
    free_sp(root);
  }
}

MmuPage* TdpMmu::alloc_sp() {
  u32 idx;
  if (!free_sps_.empty()) {
    idx = free_sps_.back();
    free_sps_.pop_back();
  } else {
    idx = u32(sps_.size());
    sps_.emplace_back();
  }
  MmuPage* sp = &sps_[idx];
  *sp = MmuPage{};
  sp->spt_pfn = mem_.alloc_table();
  sp->spt = mem_.table_of(sp->spt_pfn);
  std::fill(sp->spt, sp->spt + kPtesPerTable, SHADOW_NONPRESENT_VALUE);
  sp->tdp_mmu_page = true;
  mem_.set_owner(sp->spt_pfn, idx);
  stats_.update_mmu_pages(1);
  op_.spent += timing_.page_alloc;
  return sp;
}

void TdpMmu::free_sp(MmuPage* sp) {
  free_sps_.push_back(mem_.owner(sp->spt_pfn));
  mem_.free(sp->spt_pfn);
  *sp = MmuPage{};
  stats_.update_mmu_pages(-1);
}

void TdpMmu::init_child_sp(MmuPage* sp, const TdpIter& iter) const {
  sp->role = sp_of_table(iter.pt_pfn[iter.level - 1])->role;
  sp->role.level = u32(iter.level - 1);
  sp->gfn = iter.gfn;
  sp->ptep = iter.sptep_hpa();
}

MmuPage* TdpMmu::alloc_root(MmuPageRole role) {
  for (MmuPage* root : roots_) {
    if (!root->role.invalid && root->role.word() == role.word()) {
      ++root->tdp_mmu_root_count;
      return root;
    }
  }
  MmuPage* root = alloc_sp();
  root->role = role;
  root->tdp_mmu_root_count = 2;
  roots_.push_back(root);
  ++stats_.roots_allocated;
  return root;
}

void TdpMmu::put_root(MmuPage* root) {
  if (--root->tdp_mmu_root_count > 0) return;
  // A valid root always holds the TDP MMU's own reference.
  if (!root->role.invalid) {
    internal_errors_.push_back("the last reference of valid root " + hex(root->spt_pfn << kPageShift) +
                               " was dropped; the root is kept");
    root->tdp_mmu_root_count = 1;
    return;
  }
  roots_.erase(std::find(roots_.begin(), roots_.end(), root));
  zap_root(root);
  free_sp(root);
}

bool TdpMmu::walks_root(const MmuPage& root, KvmRootTypes types) {
  if (root.role.invalid && !(types & KVM_INVALID_ROOTS)) return false;
  return types & (root.role.is_mirror ? KVM_MIRROR_ROOTS : KVM_DIRECT_ROOTS);
}

void TdpMmu::invalidate_roots(KvmRootTypes types) {
  for (MmuPage* root : roots_) {
    if (root->role.invalid || !walks_root(*root, types)) continue;
    root->tdp_mmu_scheduled_root_to_zap = true;
    root->role.invalid = 1;
  }
}

void TdpMmu::zap_invalidated_roots() {
  std::vector<MmuPage*> scheduled;
  for (MmuPage* root : roots_)
    if (root->tdp_mmu_scheduled_root_to_zap) scheduled.push_back(root);
  for (MmuPage* root : scheduled) {
    root->tdp_mmu_scheduled_root_to_zap = false;
    zap_root(root);
    put_root(root);
  }
}

bool TdpMmu::set_spte(TdpIter& iter, u64 new_spte) {
  if (iter.mirror && ext_ && !propagate_to_external(iter, new_spte)) return false;
  *iter.sptep = new_spte;
  op_.spent += timing_.spte_write;
  handle_changed_spte(iter.gfn, iter.old_spte, new_spte, iter.level);
  iter.old_spte = new_spte;
  return true;
}

void TdpMmu::handle_changed_spte(Gfn gfn, u64 old_spte, u64 new_spte, int level) {
  bool was_present = is_shadow_present_pte(old_spte), is_present = is_shadow_present_pte(new_spte);
  bool was_leaf = was_present && is_last_spte(old_spte, level);
  bool is_leaf = is_present && is_last_spte(new_spte, level);
  bool pfn_changed = spte_to_pfn(old_spte) != spte_to_pfn(new_spte);
  if (old_spte == new_spte) return;
  if (check_log_) note_change(gfn, level, old_spte, new_spte);
  if (tp_) tp_->kvm_tdp_mmu_spte_changed(0, gfn, level, old_spte, new_spte);
  if (!was_present && !is_present) return;
  if (was_leaf && is_leaf && pfn_changed)
    internal_errors_.push_back("present leaf for gfn " + hex(gfn) + " level " + std::to_string(level) +
                               " changed pfn without a zap: " + hex(old_spte) + " -> " + hex(new_spte));
  if (was_leaf != is_leaf) stats_.update_page_stats(level, is_leaf ? 1 : -1);
  if (history_ && was_leaf != is_leaf) is_leaf ? history_->leaf_installed(gfn, level) : history_->leaf_zapped(gfn, level);
  if (was_present && !was_leaf && (is_leaf || !is_present || pfn_changed)) handle_removed_pt(spte_to_pfn(old_spte));
}

void TdpMmu::note_change(Gfn gfn, int level, u64 old_spte, u64 new_spte) {
  check_log_->touch(gfn & ~(pages_per_level(level) - 1), pages_per_level(level));
  // A TLB entry can only outlive a change that takes a right away or moves the frame.
  if (is_shadow_present_pte(old_spte) &&
      (!is_shadow_present_pte(new_spte) || spte_to_pfn(old_spte) != spte_to_pfn(new_spte) ||
       (old_spte & ~new_spte & ept::kRwx) || is_last_spte(old_spte, level) != is_last_spte(new_spte, level)))
    check_log_->tlb_may_be_stale = true;
}

void TdpMmu::handle_removed_pt(Pfn pt) {
  MmuPage* sp = sp_of_table(pt);
  if (!sp) [[unlikely]] {
    // The frame was freed and reused behind the MMU's back (a bug elsewhere),
    // or was never a table: reported (rule internal) instead of dereferenced.
    internal_errors_.push_back("a zapped non-leaf entry points at frame " + hex(pt << kPageShift) +
                               ", which has no MmuPage (freed and reused while linked)");
    return;
  }
  int level = sp->role.level;
  for (unsigned i = 0; i < kPtesPerTable; ++i) {
    u64 old_spte = sp->spt[i];
    if (!is_shadow_present_pte(old_spte)) continue;
    // Children of a table being freed are left FROZEN, as KVM does.
    sp->spt[i] = sp->role.is_mirror ? FROZEN_SPTE : SHADOW_NONPRESENT_VALUE;
    op_.spent += timing_.spte_write;
    if (sp->role.is_mirror) remove_external_children(*sp, i, old_spte);
    handle_changed_spte(sp->gfn + i * pages_per_level(level), old_spte, SHADOW_NONPRESENT_VALUE, level);
  }
  if (history_) history_->table_freed(sp->gfn, level);
  if (sp->role.is_mirror && ext_ && sp->external_spt) ext_->free_external_spt(sp->gfn, level, sp->external_spt, op_);
  free_sp(sp);
}

bool TdpMmu::link_sp(TdpIter& iter, MmuPage* sp) {
  return set_spte(iter, make_nonleaf_spte(sp->spt_pfn, sp->role.ad_disabled));
}

int TdpMmu::map(MmuPage& root, KvmPageFault& fault, bool* flush) {
  if (tp_) tp_->kvm_mmu_spte_requested(fault.gfn, fault.pfn | (fault.gfn.raw() & (pages_per_level(fault.goal_level) - 1)), fault.goal_level);
  for (TdpIter iter(mem_, root, PG_LEVEL_4K, fault.gfn); iter.valid && iter.gfn < fault.gfn + 1; iter.next()) {
    if (iter.level == fault.goal_level) return map_handle_target_level(iter, fault, flush);
    // Descend through tables; link a new one where there is none, or split
    // a huge leaf above the goal level in place.
    if (is_shadow_present_pte(iter.old_spte) && !is_large_pte(iter.old_spte)) continue;
    // A mirror huge leaf is never split on the fault path: it maps the gfn already.
    if (iter.mirror && is_shadow_present_pte(iter.old_spte)) return RET_PF_SPURIOUS;
    MmuPage* sp = alloc_sp();
    init_child_sp(sp, iter);
    if (history_) history_->table_allocated(sp->gfn, int(sp->role.level));
    sp->nx_huge_page_disallowed = fault.huge_page_disallowed;
    if (iter.mirror) {
      if (!link_mirror_sp(iter, sp, fault)) return RET_PF_RETRY;
    } else if (is_shadow_present_pte(iter.old_spte)) {
      split_huge_page(iter, sp);
    } else {
      link_sp(iter, sp);
    }
  }
  return RET_PF_RETRY;
}

int TdpMmu::map_handle_target_level(TdpIter& iter, KvmPageFault& fault, bool* flush) {
  u64 old_spte = iter.old_spte;
  const MmuPage* sp = sp_of_table(iter.pt_pfn[iter.level - 1]);
  u64 new_spte = make_spte(iter.level, fault.pfn, fault.map_writable, !sp->role.ad_disabled) | fault.spte_sw_bits;
  // debug.inject=double-map: the fault maps a mirror leaf that is already
  // mapped (a second AUG of the page) instead of finding it spurious.
  const bool double_map = iter.mirror && is_present_leaf(old_spte, iter.level) && inject_ &&
                          inject_->fire(Inject::DoubleMap);
  if (!double_map) {
    if (is_present_leaf(old_spte, iter.level) && is_access_allowed(fault, old_spte)) return RET_PF_SPURIOUS;
    // A mirror leaf is never replaced in place (rule 17).
    if (iter.mirror && is_present_leaf(old_spte, iter.level)) return RET_PF_SPURIOUS;
    if (new_spte == old_spte) return RET_PF_SPURIOUS;
  }
  if (!set_spte(iter, new_spte)) return RET_PF_RETRY;
  if (is_shadow_present_pte(old_spte) &&
      (!is_last_spte(old_spte, iter.level) || leaf_spte_change_needs_tlb_flush(old_spte, new_spte)))
    *flush = true;
  if (is_writable_pte(new_spte) && fault.slot) fault.slot->mark_page_dirty(iter.gfn & ~fault.direct_bits);
  return RET_PF_FIXED;
}

u64* TdpMmu::fast_pf_get_last_sptep(const MmuPage& root, Gfn gfn, u64* spte, int* level) {
  u64* sptep = nullptr;
  for (TdpIter iter(mem_, root, PG_LEVEL_4K, gfn); iter.valid && iter.gfn < gfn + 1; iter.next()) {
    sptep = iter.sptep;
    *spte = iter.old_spte;
    *level = iter.level;
  }
  return sptep;
}

bool TdpMmu::zap_leafs(Gfn start, Gfn end, bool flush, KvmRootTypes types) {
  for (MmuPage* root : roots_) {
    if (!walks_root(*root, KvmRootTypes(types | KVM_INVALID_ROOTS))) continue;
    for (TdpIter iter(mem_, *root, PG_LEVEL_4K, start); iter.valid && iter.gfn < end; iter.next()) {
      if (!is_present_leaf(iter.old_spte, iter.level)) continue;
      if (!set_spte(iter, SHADOW_NONPRESENT_VALUE)) continue;
      // Invalid roots are unreachable by vCPUs (see kvm_mmu_zap_all_fast).
      if (!root->role.invalid) flush = true;
    }
  }
  return flush;
}

void TdpMmu::zap_root(MmuPage* root) {
  // Passes of decreasing granularity keep each removed subtree small.
  const int levels[] = {PG_LEVEL_4K, PG_LEVEL_2M, PG_LEVEL_1G, int(root->role.level)};
  for (int zap_level : levels) {
    for (TdpIter iter(mem_, *root, zap_level, Gfn{}); iter.valid; iter.next()) {
      if (!is_shadow_present_pte(iter.old_spte) || iter.level > zap_level) continue;
      set_spte(iter, SHADOW_NONPRESENT_VALUE);
    }
  }
}

}  // namespace septsim::mmu
