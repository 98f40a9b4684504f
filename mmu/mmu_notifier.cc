// The mmu_notifier protocol between the host's primary MMU and KVM's faults
// (virt/kvm/kvm_main.c, include/linux/kvm_host.h, arch/x86/kvm/mmu/mmu.c):
// an invalidation bumps mmu_invalidate_in_progress and records its gfn range
// before it zaps, and bumps mmu_invalidate_seq when it ends; a fault takes
// its snapshot of the sequence before it faults in the pfn and, under
// mmu_lock, retries if the snapshot is stale (is_page_fault_stale).
#include "mmu/invariant_rules.h"
#include "mmu/kvm_impl.h"

namespace septsim::mmu {

void Kvm::Impl::kvm_mmu_invalidate_begin(Gfn start, Gfn end) {
  // kvm_mmu_invalidate_begin: the first invalidation in flight resets the range.
  if (++mmu_invalidate_in_progress == 1) mmu_invalidate_range_start = mmu_invalidate_range_end = kInvalidGfn;
  // kvm_mmu_invalidate_range_add: the range only grows while any is in flight.
  if (mmu_invalidate_range_start == kInvalidGfn) {
    mmu_invalidate_range_start = start;
    mmu_invalidate_range_end = end;
  } else {
    mmu_invalidate_range_start = std::min(mmu_invalidate_range_start, start);
    mmu_invalidate_range_end = std::max(mmu_invalidate_range_end, end);
  }
}

void Kvm::Impl::kvm_mmu_invalidate_end() {
  // kvm_mmu_invalidate_end: the sequence moves before in_progress drops.
  ++mmu_invalidate_seq;
  --mmu_invalidate_in_progress;
}

bool Kvm::Impl::mmu_invalidate_retry_gfn(u64 mmu_seq, Gfn gfn) const {
  if (mmu_invalidate_in_progress && gfn >= mmu_invalidate_range_start && gfn < mmu_invalidate_range_end) return true;
  return mmu_invalidate_seq != mmu_seq;
}

void Kvm::Impl::host_migrate_during_fault(const KvmPageFault& fault) {
  // mm/migrate.c on the host: try_to_migrate() unmaps the page with the
  // mmu_notifier (kvm_mmu_notifier_invalidate_range_start: invalidate_begin,
  // kvm_unmap_gfn_range, flush), the page moves, invalidate_range_end.
  Memslot& slot = *fault.slot;
  const Gfn gfn = slot_gfn(fault);
  const u64 hva = slot.gfn_to_hva(gfn);
  const u64 block = level_size(slot.host.mapping_level(hva));
  const Gfn start = std::max(slot.base_gfn, gfn - ((hva & (block - 1)) >> kPageShift));
  const Gfn end = std::min(slot.end_gfn(), start + (block >> kPageShift));
  {
    auto lock = this->lock(MmuLockMode::Write);
    kvm_mmu_invalidate_begin(start, end);
    if (tdp.zap_leafs(start | fault.direct_bits, end | fault.direct_bits, false, KVM_DIRECT_ROOTS))
      kvm_flush_remote_tlbs();
  }
  slot.host.migrate(hva);
  kvm_mmu_invalidate_end();
}

void Kvm::Impl::check_install(const KvmPageFault& fault) {
  if (install_violations.size() >= 1000) return;
  std::string v = check_install_pfn(*fault.slot, slot_gfn(fault), fault.goal_level, fault.pfn, fault.mmu_seq,
                                    mmu_invalidate_seq);
  if (!v.empty()) install_violations.push_back(std::move(v));
}

}  // namespace septsim::mmu
