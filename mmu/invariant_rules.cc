#include "mmu/invariant_rules.h"

#include "mmu/spte.h"
#include "model/hex.h"

namespace septsim::mmu {

std::string check_dirty_log_leaf(const Memslot& slot, Gfn gfn, int level, u64 spte) {
  if (level != PG_LEVEL_4K || !is_writable_pte(spte) || !slot.dirty_track_enabled() || slot.dirty_bitmap.empty())
    return {};
  const u64 rel = gfn - slot.base_gfn;
  if (slot.dirty_bitmap[rel / 64] >> (rel % 64) & 1) return {};
  return "rule dirty-log: gfn " + hex(gfn) + " of dirty-logged memslot " + std::to_string(slot.id) +
         " has a writable 4K leaf (spte " + hex(spte) +
         ") but is not in the dirty bitmap: guest writes through it are never reported";
}

std::string check_install_pfn(const Memslot& slot, Gfn gfn, int level, Pfn pfn, u64 mmu_seq, u64 seq_now) {
  const Pfn host = slot.host.lookup(slot.gfn_to_hva(gfn)) & ~(pages_per_level(level) - 1);
  if (host == pfn) return {};
  return "rule mmu-notifier: a fault installed gfn " + hex(gfn) + " level " + std::to_string(level) + " -> pfn " +
         hex(pfn) + " faulted in at mmu_invalidate_seq " + std::to_string(mmu_seq) + ", but at install (seq " +
         std::to_string(seq_now) + ") the host backs it with pfn " + hex(host) +
         " (is_page_fault_stale: mmu_invalidate_retry_gfn must have retried)";
}

}  // namespace septsim::mmu
