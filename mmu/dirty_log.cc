// Dirty logging (arch/x86/kvm/mmu/mmu.c, x86.c): kvm_mmu_slot_apply_flags, and
// KVM_GET_DIRTY_LOG / KVM_CLEAR_DIRTY_LOG with their re-protection.
#include <bit>

#include "mmu/kvm_impl.h"

namespace septsim::mmu {

void Kvm::Impl::kvm_mmu_slot_apply_flags(Memslot& slot, u32 old_flags) {
  bool log_dirty_pages = slot.dirty_track_enabled();
  if (bool(old_flags & KVM_MEM_LOG_DIRTY_PAGES) == log_dirty_pages) return;
  if (!log_dirty_pages) {
    // Recovery skips the mirror root: only mmu.tdx_merge_policy C acts here.
    if (tdp.recover_huge_pages(slot, max_huge_level)) kvm_flush_remote_tlbs();
    merge_policy->dirty_logging_stopped(*this, slot);
    return;
  }
  // Read-only slots can't be dirtied and have no writable SPTEs.
  if (slot.readonly()) return;
  if (eager_page_split) {
    tdp.split_huge_pages(slot.base_gfn, slot.end_gfn(), PG_LEVEL_4K);
    // The "dirty-logging-style" split of a TD's private memory (seed 004;
    // upstream KVM does not log private memory).
    split_private_slot(slot);
  }
  if (inject.fire(Inject::DirtyLogNoWrprot)) {
    // debug.inject=dirty-log-no-wrprot: logging starts with the slot's leaves as they were.
  } else if (use_pml()) {
    tdp.clear_dirty_gfn_range(slot.base_gfn, slot.end_gfn());
    tdp.wrprot_gfn_range(slot.base_gfn, slot.end_gfn(), PG_LEVEL_2M);
  } else {
    tdp.wrprot_gfn_range(slot.base_gfn, slot.end_gfn(), PG_LEVEL_4K);
  }
  // Unconditional, as KVM: the helpers above skip the subtle "was anything
  // writable" bookkeeping.
  kvm_flush_remote_tlbs();
}

// kvm_arch_mmu_enable_log_dirty_pt_masked without initially-set mode: the
// dirty pages are 4K (no writable huge leaf in a logged slot).
void Kvm::Impl::enable_log_dirty_pt_masked(Memslot& slot, u64 gfn_offset, u64 mask) {
  tdp.clear_dirty_pt_masked(slot.base_gfn + gfn_offset, mask, !use_pml());
}

bool Kvm::pml_logging() const {
  if (!impl_->use_pml()) return false;
  for (const auto& slot : impl_->slots.all())
    if (slot->dirty_track_enabled()) return true;
  return false;
}

bool Kvm::pml_logged(Gpa gpa) const {
  if (!impl_->use_pml()) return false;
  const Gfn gfn = gpa_to_gfn(gpa) & ~impl_->gfn_direct_bits();
  const Memslot* slot = gfn < impl_->max_gfn ? impl_->slots.find(gfn) : nullptr;
  return slot && slot->dirty_track_enabled();
}

Cycles Kvm::get_dirty_log(u32 id, u64* dirty_pages) {
  Impl& k = *impl_;
  k.op.spent = k.timing.vm_ioctl;
  Memslot& slot = k.slot_by_id(id);
  if (!slot.dirty_track_enabled()) throw KvmError("memslot " + std::to_string(id) + " is not dirty-logged");
  k.begin_ioctl();
  auto lock = k.lock(MmuLockMode::Write);
  if (k.use_pml()) k.tdp.harvest_dirty_bits(slot);  // kvm_arch_sync_dirty_log
  u64 n = 0;
  bool flush = false;
  for (u64 i = 0; i < slot.dirty_bitmap.size(); ++i) {
    u64 mask = slot.dirty_bitmap[i];
    if (!mask) continue;
    slot.dirty_bitmap[i] = 0;
    n += unsigned(std::popcount(mask));
    flush = true;
    k.enable_log_dirty_pt_masked(slot, i * 64, mask);
  }
  // debug.inject=pml-no-flush: the D bits are cleared but the vCPUs' TLBs
  // keep their dirty translations (kvm_get_dirty_log_protect's flush is skipped).
  if (flush && !(k.use_pml() && k.inject.fire(Inject::PmlNoFlush))) k.kvm_flush_remote_tlbs();
  k.stats.dirty_pages_reported += n;
  if (dirty_pages) *dirty_pages = n;
  return k.finish();
}

Cycles Kvm::clear_dirty_log(u32 id, u64 first_page, u64 num_pages) {
  Impl& k = *impl_;
  k.op.spent = k.timing.vm_ioctl;
  Memslot& slot = k.slot_by_id(id);
  if (!slot.dirty_track_enabled()) throw KvmError("memslot " + std::to_string(id) + " is not dirty-logged");
  if (first_page == 0 && num_pages == 0) num_pages = slot.npages;  // trace vocabulary: whole slot
  if (first_page % 64 || first_page > slot.npages || num_pages > slot.npages - first_page ||
      (num_pages % 64 && first_page + num_pages != slot.npages))
    throw KvmError("memslot " + std::to_string(id) + ": clear_dirty_log range [" + std::to_string(first_page) + ", +" +
                   std::to_string(num_pages) + ") must be 64-page aligned and inside the slot's " +
                   std::to_string(slot.npages) + " pages");
  k.begin_ioctl();
  auto lock = k.lock(MmuLockMode::Write);
  if (k.use_pml()) k.tdp.harvest_dirty_bits(slot);
  bool flush = false;
  for (u64 page = first_page; page < first_page + num_pages; page += 64) {
    u64 word = page / 64, left = first_page + num_pages - page;
    u64 mask = slot.dirty_bitmap[word] & (left >= 64 ? ~0ull : (1ull << left) - 1);
    if (!mask) continue;
    slot.dirty_bitmap[word] &= ~mask;
    flush = true;
    k.enable_log_dirty_pt_masked(slot, page, mask);
  }
  if (flush) k.kvm_flush_remote_tlbs();
  return k.finish();
}

}  // namespace septsim::mmu
