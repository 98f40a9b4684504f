// Invariant rules written as self-contained functions over one piece of
// state, so a checker can call them where that state changes (per installed
// leaf, per SPTE) as well as in the full sweep (docs/invariants.md).
// Each returns an empty string when the rule holds, otherwise the
// violation's line ("rule NAME: what").
#pragma once
#include <string>

#include "mmu/memslot.h"
#include "model/types.h"

namespace septsim::mmu {

// Rule dirty-log (write-protect dirty logging, no PML): a writable 4K leaf
// of a dirty-logged slot at slot gfn `gfn` has the gfn's bit in the slot's
// dirty bitmap, so the next KVM_GET_DIRTY_LOG / KVM_CLEAR_DIRTY_LOG reports
// every guest write through it (spte.c:make_spte marks the page dirty when it
// makes a writable SPTE in a logged slot; kvm_main.c:kvm_get_dirty_log_protect
// write-protects every page it reports; mmu.c:kvm_mmu_slot_apply_flags
// write-protects the slot when logging starts).
std::string check_dirty_log_leaf(const Memslot& slot, Gfn gfn, int level, u64 spte);

// Rule mmu-notifier: a leaf a fault installs at slot gfn `gfn` (level
// `level`, first frame `pfn`) maps what the host backs the gfn with at
// install time. A fault that faulted its pfn in before an mmu_notifier
// invalidation of the gfn must retry (mmu.c:is_page_fault_stale ->
// kvm_host.h:mmu_invalidate_retry_gfn); `mmu_seq` is the fault's snapshot of
// kvm->mmu_invalidate_seq and `seq_now` its value at install, for the message.
std::string check_install_pfn(const Memslot& slot, Gfn gfn, int level, Pfn pfn, u64 mmu_seq, u64 seq_now);

}  // namespace septsim::mmu
