// kvm_arch_flush_shadow_memslot (arch/x86/kvm/mmu/mmu.c): before a memslot
// is deleted or moved, either every root is made obsolete (fast zap by
// generation and role.invalid, KVM_X86_QUIRK_SLOT_ZAP_ALL, default VMs only)
// or only the slot's leaves are zapped (kvm_mmu_zap_memslot).
#include "mmu/kvm_impl.h"

namespace septsim::mmu {

bool parse_slot_zap(const std::string& value) {
  if (value == "zap-all-fast") return true;
  if (value == "zap-memslot") return false;
  throw model::ConfigError("config key 'mmu.slot_zap': unknown policy '" + value +
                           "' (known: zap-all-fast, zap-memslot)");
}

void Kvm::Impl::kvm_arch_flush_shadow_memslot(const Memslot& slot) {
  Cycles before = op.spent;
  zap_history.begin_flush();
  // kvm_memslot_flush_zap_all: the fast zap is for KVM_X86_DEFAULT_VM only;
  // a TD always zaps just the slot.
  if (inject.fire(Inject::SlotDeleteNoZap)) {
    // debug.inject=slot-delete-no-zap: the slot goes, its leaves stay.
  } else if (slot_zap_all && !td) {
    kvm_mmu_zap_all_fast();
  } else {
    kvm_mmu_zap_memslot(slot);
  }
  zap_history.end_flush(op.spent - before);
}

// kvm_mmu_zap_memslot: shared and private leaves of the slot
// (KVM_FILTER_SHARED | KVM_FILTER_PRIVATE); the page tables stay, then one
// flush. A TD's private pages leave through the removal hooks.
void Kvm::Impl::kvm_mmu_zap_memslot(const Memslot& slot) {
  bool flush = tdp.zap_leafs(slot.base_gfn | gfn_direct_bits(), slot.end_gfn() | gfn_direct_bits(), false,
                             KVM_DIRECT_ROOTS);
  if (mirror_root) {
    unblock_split_ranges(slot.base_gfn, slot.end_gfn());
    flush = tdp.zap_leafs(slot.base_gfn, slot.end_gfn(), flush, KVM_MIRROR_ROOTS);
    forget_split_ranges(slot.base_gfn, slot.end_gfn());
  }
  if (flush) kvm_flush_remote_tlbs();
}

}  // namespace septsim::mmu
