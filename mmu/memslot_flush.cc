// kvm_arch_flush_shadow_memslot (kvm-mmu.md 5.4): before a memslot is
// deleted or moved, either every root is made obsolete (fast zap by
// generation and role.invalid, KVM_X86_QUIRK_SLOT_ZAP_ALL) or only the
// slot's leaves are zapped (kvm_mmu_zap_memslot).
#include "mmu/kvm_impl.h"

namespace septsim::mmu {

bool parse_slot_zap(const std::string& value) {
  if (value == "zap-all-fast") return true;
  if (value == "zap-memslot") return false;
  throw model::ConfigError("config key 'mmu.slot_zap': unknown policy '" + value +
                           "' (known: zap-all-fast, zap-memslot)");
}

void Kvm::Impl::kvm_arch_flush_shadow_memslot(const Memslot& slot) {
  Cycles before = spent;
  zap_history.begin_flush();
  if (slot_zap_all) {
    kvm_mmu_zap_all_fast();
  } else if (tdp.zap_leafs(slot.base_gfn | gfn_direct_bits(), slot.end_gfn() | gfn_direct_bits(), false, KVM_DIRECT_ROOTS)) {
    // The slot's page tables stay; only its leaves go, then one flush.
    kvm_flush_remote_tlbs();
  }
  zap_history.end_flush(spent - before);
}

}  // namespace septsim::mmu
