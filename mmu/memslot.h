// struct kvm_memory_slot with its x86 metadata (lpage_info disallow_lpage per
// huge level, the dirty bitmap) and its host backing; Memslots is the VM's
// gfn-sorted slot set with KVM's gfn_to_memslot lookup.
#pragma once
#include <memory>
#include <utility>
#include <vector>

#include "mmu/host_memory.h"
#include "mmu/kvm.h"

namespace septsim::mmu {

// Bit 31 of disallow_lpage: the huge frame holds gfns with different memory
// attributes (private and shared), so it must not be mapped huge.
constexpr int KVM_LPAGE_MIXED_FLAG = int(1u << 31);
// The TDX guest asked for this frame at a smaller level (its ACCEPT level):
// KVM_LPAGE_GUEST_INHIBIT_FLAG of the TDX huge-page series (v3 and RFC v5,
// not merged; mmu.tdx_huge_pages=v3/v5). Never cleared while the slot lives.
constexpr int KVM_LPAGE_GUEST_INHIBIT_FLAG = int(1u << 30);

struct Memslot {
  Memslot(model::PhysMem& mem, const MemslotSpec& spec, u64 hva, int backing_level);

  u32 id;
  Gfn base_gfn;
  u64 npages;
  u64 userspace_addr;
  u32 flags;
  HostMemory host;
  std::vector<u64> dirty_bitmap;   // one bit per page while dirty logging is on
  std::vector<int> lpage_info[2];  // disallow_lpage per 2M and 1G frame: a count | KVM_LPAGE_MIXED_FLAG

  Gfn end_gfn() const { return base_gfn + npages; }
  bool contains(Gfn gfn) const { return gfn >= base_gfn && gfn < end_gfn(); }
  bool dirty_track_enabled() const { return flags & KVM_MEM_LOG_DIRTY_PAGES; }
  bool readonly() const { return flags & KVM_MEM_READONLY; }
  u64 gfn_to_hva(Gfn gfn) const { return userspace_addr + ((gfn - base_gfn) << kPageShift); }

  // kvm_alloc_memslot_metadata: disallow huge frames at misaligned head and
  // tail, and everywhere when gfn and hva disagree in the low bits.
  void init_lpage_info();
  int disallow_lpage(Gfn gfn, int level) const { return const_cast<Memslot*>(this)->lpage(gfn, level); }
  // KVM_LPAGE_MIXED_FLAG of the frame holding gfn (mmu/lpage_mixed.h).
  bool hugepage_test_mixed(Gfn gfn, int level) const { return disallow_lpage(gfn, level) & KVM_LPAGE_MIXED_FLAG; }
  void hugepage_set_mixed(Gfn gfn, int level, bool mixed) {
    int& l = lpage(gfn, level);
    l = mixed ? l | KVM_LPAGE_MIXED_FLAG : l & ~KVM_LPAGE_MIXED_FLAG;
  }
  void hugepage_set_guest_inhibit(Gfn gfn, int level) { lpage(gfn, level) |= KVM_LPAGE_GUEST_INHIBIT_FLAG; }
  bool hugepage_test_guest_inhibit(Gfn gfn, int level) const {
    return disallow_lpage(gfn, level) & KVM_LPAGE_GUEST_INHIBIT_FLAG;
  }
  int& lpage(Gfn gfn, int level) {
    unsigned shift = 9u * unsigned(level - 1);
    return lpage_info[level - 2][(gfn.raw() >> shift) - (base_gfn.raw() >> shift)];
  }
  void mark_page_dirty(Gfn gfn) {
    if (dirty_bitmap.empty()) return;
    u64 rel = gfn - base_gfn;
    dirty_bitmap[rel / 64] |= 1ull << (rel % 64);
  }
};

// The largest level <= max_level at which gfn may be mapped: lpage_info and
// the host mapping level (kvm_mmu_max_mapping_level).
int kvm_mmu_max_mapping_level(const Memslot& slot, Gfn gfn, int max_level);

class Memslots {
 public:
  Memslot* find(Gfn gfn) { return const_cast<Memslot*>(std::as_const(*this).find(gfn)); }
  const Memslot* find(Gfn gfn) const;
  Memslot* by_id(u32 id) const;
  // A slot other than `except` sharing a gfn with [start, start + npages).
  const Memslot* overlapping(Gfn start, u64 npages, const Memslot* except) const;
  void insert(std::unique_ptr<Memslot> slot);
  std::unique_ptr<Memslot> remove(u32 id);
  // Restores the gfn order after a slot's base_gfn changed.
  void resort();
  // Sorted by base_gfn.
  const std::vector<std::unique_ptr<Memslot>>& all() const { return slots_; }

 private:
  std::vector<std::unique_ptr<Memslot>> slots_;
  mutable const Memslot* last_ = nullptr;
};

}  // namespace septsim::mmu
