// struct kvm_mmu_page and union kvm_mmu_page_role for the TDP MMU
// (struct kvm_mmu_page, arch/x86/kvm/mmu/mmu_internal.h). Only the fields the TDP MMU uses are kept, so a table
// page costs 48 bytes of metadata (KVM: ~184).
#pragma once
#include <bit>

#include "model/types.h"

namespace septsim::mmu {

constexpr u32 ACC_EXEC_MASK = 1, ACC_WRITE_MASK = 2, ACC_USER_MASK = 4;
constexpr u32 ACC_ALL = ACC_EXEC_MASK | ACC_WRITE_MASK | ACC_USER_MASK;
constexpr int PT64_ROOT_MAX_LEVEL = 5;

// The 6.14-6.17 layout; roots are reused when word() matches.
struct MmuPageRole {
  u32 level : 4 = 0;
  u32 has_4_byte_gpte : 1 = 0;
  u32 quadrant : 2 = 0;
  u32 direct : 1 = 0;
  u32 access : 3 = 0;
  u32 invalid : 1 = 0;
  u32 efer_nx : 1 = 0;
  u32 cr0_wp : 1 = 0;
  u32 smep_andnot_wp : 1 = 0;
  u32 smap_andnot_wp : 1 = 0;
  u32 ad_disabled : 1 = 0;
  u32 guest_mode : 1 = 0;
  u32 passthrough : 1 = 0;
  u32 is_mirror : 1 = 0;
  u32 pad : 4 = 0;
  u32 smm : 8 = 0;

  u32 word() const { return std::bit_cast<u32>(*this); }
};
static_assert(sizeof(MmuPageRole) == 4);

struct MmuPage {
  MmuPageRole role;
  int tdp_mmu_root_count = 0;  // roots only
  Gfn gfn{};                 // first gfn mapped by this table
  u64* spt = nullptr;          // the table's 512 entries (PhysMem contents)
  Pfn spt_pfn = 0;             // __pa(spt) >> 12
  Hpa ptep = 0;                // the parent SPTE pointing here; 0 for roots
  bool tdp_mmu_page = false;
  bool tdp_mmu_scheduled_root_to_zap = false;
  bool nx_huge_page_disallowed = false;
  u32 external_spt = 0;        // mirror tables: pfn of the Secure-EPT page at this level (0 = none)
};
static_assert(sizeof(MmuPage) == 48);

}  // namespace septsim::mmu
