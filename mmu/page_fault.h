// struct kvm_page_fault and the vocabulary of the fault path (arch/x86/kvm/mmu/mmu_internal.h).
#pragma once
#include "mmu/spte.h"
#include "model/types.h"

namespace septsim::mmu {

struct Memslot;

constexpr u64 PFERR_PRESENT_MASK = 1ull << 0;
constexpr u64 PFERR_WRITE_MASK = 1ull << 1;
constexpr u64 PFERR_USER_MASK = 1ull << 2;
constexpr u64 PFERR_RSVD_MASK = 1ull << 3;
constexpr u64 PFERR_FETCH_MASK = 1ull << 4;
constexpr u64 PFERR_GUEST_FINAL_MASK = 1ull << 32;
constexpr u64 PFERR_GUEST_PAGE_MASK = 1ull << 33;
constexpr u64 PFERR_PRIVATE_ACCESS = 1ull << 49;

enum RetPf { RET_PF_CONTINUE = 0, RET_PF_RETRY, RET_PF_EMULATE, RET_PF_WRITE_PROTECTED, RET_PF_INVALID, RET_PF_FIXED, RET_PF_SPURIOUS };
// kvm_mmu_faultin_pfn's -EFAULT after kvm_mmu_prepare_memory_fault_exit: the
// VMM gets KVM_EXIT_MEMORY_FAULT; no RET_PF_* statistic counts it.
constexpr int KVM_EXIT_MEMORY_FAULT_RET = -14;

// __vmx_handle_ept_violation: exit qualification -> PFERR error code.
u64 ept_violation_error_code(u64 exit_qualification);

struct KvmPageFault {
  KvmPageFault(Gpa gpa, u64 ec)
      : addr(gpa),
        error_code(ec),
        exec(ec & PFERR_FETCH_MASK),
        write(ec & PFERR_WRITE_MASK),
        present(ec & PFERR_PRESENT_MASK),
        rsvd(ec & PFERR_RSVD_MASK),
        user(ec & PFERR_USER_MASK),
        is_private(ec & PFERR_PRIVATE_ACCESS),
        gfn(gpa_to_gfn(gpa)) {}

  Gpa addr;
  u64 error_code;
  bool prefetch = false;
  bool exec, write, present, rsvd, user;
  bool is_private;       // a TD's private GPA: the mirror root maps it (tdp_mmu_get_root_for_fault)
  Gfn gfn;               // as the root maps it (a TD's shared gfns carry the shared bit)
  Gfn direct_bits{};   // kvm_gfn_direct_bits of a TD's shared fault: not part of the memslot gfn
  Memslot* slot = nullptr;
  int max_level = PG_LEVEL_1G;  // KVM_MAX_HUGEPAGE_LEVEL
  int req_level = PG_LEVEL_4K;
  int goal_level = PG_LEVEL_4K;
  Pfn pfn = 0;
  bool map_writable = false;
  bool huge_page_disallowed = false;
  u32 external_spt_cache = 0;  // a TD's private fault: whose external_spt cache new mirror tables take from
  u64 spte_sw_bits = 0;        // software-available bits for the new leaf (SPTE_TDX_PAGE_ADDED)
  u64 mmu_seq = 0;             // kvm->mmu_invalidate_seq when the pfn was faulted in (kvm_mmu_faultin_pfn)
  bool skip_stale_check = false;  // debug.inject=stale-snapshot: is_page_fault_stale is not asked
  bool found_frozen = false;  // a private fault's cmpxchg found a racing vCPU's mirror entry FROZEN_SPTE
};

// The gfn the memslots know.
inline Gfn slot_gfn(const KvmPageFault& fault) { return fault.gfn & ~fault.direct_bits; }

inline bool is_access_allowed(const KvmPageFault& fault, u64 spte) {
  if (fault.exec) return spte & shadow_x_mask;
  if (fault.write) return is_writable_pte(spte);
  return spte & shadow_user_mask;
}

}  // namespace septsim::mmu
