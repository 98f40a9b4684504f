// KVM_LPAGE_MIXED_FLAG upkeep (mmu.c: hugepage_set_mixed, kvm_arch_post_set_memory_attributes): which 2M and 1G frames of a
// memslot hold both private and shared gfns. Set when a slot is created and
// after every KVM_SET_MEMORY_ATTRIBUTES over the frames the range touches,
// 2M before 1G, so the level choice reads one flag instead of scanning.
#pragma once
#include "mmu/mem_attributes.h"
#include "mmu/memslot.h"

namespace septsim::mmu {

// kvm_mmu_init_memslot_memory_attributes: every frame wholly in the slot.
void init_memslot_memory_attributes(Memslot& slot, const MemAttributes& attrs);
// kvm_arch_post_set_memory_attributes: [start, end) now has attribute `priv`
// (attrs already updated); recomputes the head and tail frames and clears
// the frames the range covers.
void post_set_memory_attributes(Memslot& slot, const MemAttributes& attrs, Gfn start, Gfn end, bool priv);

}  // namespace septsim::mmu
