// The EPT-violation path (kvm-mmu.md 4.1-4.3, 4.6): exit qualification to
// kvm_page_fault, fast_page_fault, faultin, max mapping level, kvm_tdp_mmu_map.
#include <algorithm>

#include "mmu/kvm_impl.h"

namespace septsim::mmu {

u64 ept_violation_error_code(u64 q) {
  namespace qual = ept::qual;
  u64 error_code = 0;
  if (q & qual::kRead) error_code |= PFERR_USER_MASK;
  if (q & qual::kWrite) error_code |= PFERR_WRITE_MASK;
  if (q & qual::kFetch) error_code |= PFERR_FETCH_MASK;
  if (q & (qual::kGpaReadable | qual::kGpaWritable | qual::kGpaExecutable)) error_code |= PFERR_PRESENT_MASK;
  if (q & qual::kGlaValid) error_code |= (q & qual::kGlaTranslated) ? PFERR_GUEST_FINAL_MASK : PFERR_GUEST_PAGE_MASK;
  return error_code;
}

int Kvm::Impl::fast_page_fault(Vcpu& v, KvmPageFault& fault) {
  if (!v.root) return RET_PF_INVALID;
  int ret = RET_PF_INVALID;
  u64 spte = 0;
  int level = 0;
  u64* sptep = tdp.fast_pf_get_last_sptep(*v.root, fault.gfn, &spte, &level);
  // KVM loops on a failed cmpxchg; nothing races here, so one pass decides.
  do {
    if (!sptep || !is_present_leaf(spte, level)) break;
    if (is_access_allowed(fault, spte)) {
      ret = RET_PF_SPURIOUS;
      break;
    }
    u64 new_spte = spte;
    if (fault.write && is_mmu_writable_spte(spte)) {
      new_spte |= PT_WRITABLE_MASK;
      // A huge page must not become writable while its slot is dirty-logged.
      if (level > PG_LEVEL_4K && fault.slot && fault.slot->dirty_track_enabled()) break;
    }
    if (new_spte == spte || !is_access_allowed(fault, new_spte)) break;
    *sptep = new_spte;
    spent += timing.spte_write;
    if (!is_writable_pte(spte) && is_writable_pte(new_spte) && fault.slot) fault.slot->mark_page_dirty(slot_gfn(fault));
    ret = RET_PF_FIXED;
  } while (false);
  if (MmuTracepoints* tp = tdp.tracepoints()) tp->fast_page_fault(v.ctl->id(), fault.addr, fault.error_code, spte, sptep ? *sptep : 0, ret);
  if (ret != RET_PF_INVALID) ++stats.pf_fast;
  return ret;
}

int Kvm::Impl::kvm_mmu_faultin_pfn(KvmPageFault& fault) {
  // No memslot: MMIO. MMIO SPTEs are not cached, so every access exits.
  if (!fault.slot) return RET_PF_EMULATE;
  // A write to a read-only slot (KVM_PFN_ERR_RO_FAULT) is emulated.
  if (fault.write && fault.slot->readonly()) return RET_PF_EMULATE;
  u64 allocs = 0;
  fault.pfn = fault.slot->host.faultin(fault.slot->gfn_to_hva(slot_gfn(fault)), &allocs);
  spent += allocs * timing.page_alloc;
  fault.map_writable = !fault.slot->readonly();
  return RET_PF_CONTINUE;
}

void Kvm::Impl::kvm_mmu_hugepage_adjust(KvmPageFault& fault) const {
  fault.req_level = fault.goal_level = PG_LEVEL_4K;
  if (fault.max_level == PG_LEVEL_4K || fault.slot->dirty_track_enabled()) return;
  fault.req_level = kvm_mmu_max_mapping_level(*fault.slot, slot_gfn(fault), std::min(fault.max_level, max_huge_level));
  if (fault.req_level == PG_LEVEL_4K) return;
  fault.goal_level = fault.req_level;
  fault.pfn &= ~(pages_per_level(fault.goal_level) - 1);
}

bool Kvm::Impl::lost_cmpxchg(const KvmPageFault& fault) {
  const unsigned me = current ? current->id() : ~0u;
  for (const RecentInstall& r : recent_installs) {
    if (r.vcpu == me || r.visible_at <= now() || fault.gfn < r.gfn || fault.gfn >= r.gfn + r.pages) continue;
    // The walk read the entry before the other vCPU's write landed: the
    // new SPTE is built, and tdp_mmu_set_spte_atomic fails against it.
    spent += timing.spte_write;
    return true;
  }
  return false;
}

int Kvm::Impl::map_and_record(Vcpu& v, KvmPageFault& fault) {
  bool flush = false;
  const int r = tdp.map(*v.root, fault, &flush);
  if (r == RET_PF_FIXED && vcpus.size() > 1) {
    const u64 pages = pages_per_level(fault.goal_level);
    // A vCPU that never advances its clock keeps the floor low: bound the list.
    if (recent_installs.size() >= kMaxRecentInstalls)
      recent_installs.erase(recent_installs.begin(), recent_installs.begin() + kMaxRecentInstalls / 2);
    recent_installs.push_back({fault.gfn & ~(pages - 1), pages, v.ctl->id(), now()});
  }
  if (flush) kvm_flush_remote_tlbs();
  return r;
}

int Kvm::Impl::kvm_mmu_do_page_fault(Vcpu& v, KvmPageFault& fault) {
  fault.slot = slot_gfn(fault) < max_gfn ? slots.find(slot_gfn(fault)) : nullptr;
  ++stats.pf_taken;
  int r = RET_PF_INVALID;
  // page_fault_can_be_fast: a write to a present SPTE (A/D on: no access tracking).
  if (!fault.rsvd && (fault.present ? fault.write : !ad_enabled)) r = fast_page_fault(v, fault);
  if (r == RET_PF_INVALID) {
    r = kvm_mmu_faultin_pfn(fault);
    if (r == RET_PF_CONTINUE) {
      auto lock = this->lock(MmuLockMode::Read);
      // is_page_fault_stale: the vCPU must first reload its root.
      if (!v.root || v.root->role.invalid) {
        r = RET_PF_RETRY;
      } else {
        kvm_mmu_hugepage_adjust(fault);
        r = lost_cmpxchg(fault) ? RET_PF_RETRY : map_and_record(v, fault);
      }
    }
  }
  if (r == RET_PF_RETRY) ++stats.pf_retry;
  if (r == RET_PF_FIXED)
    ++stats.pf_fixed;
  else if (r == RET_PF_EMULATE)
    ++stats.pf_emulate;
  else if (r == RET_PF_SPURIOUS)
    ++stats.pf_spurious;
  return r;
}

Cycles Kvm::handle_ept_violation(model::VcpuControl& vcpu, Gpa gpa, u64 exit_qualification) {
  Impl& k = *impl_;
  k.spent = k.timing.fault_handler;
  TracepointTask task(k.tdp.tracepoints(), int(vcpu.id()));
  if (task.tp) task.tp->kvm_page_fault(vcpu.id(), 0, gpa, exit_qualification);
  KvmPageFault fault(gpa, ept_violation_error_code(exit_qualification));
  Impl::Vcpu& v = k.vcpu_of(vcpu);
  k.begin_vcpu_op(vcpu);
  if (k.td && k.td->finalized() && vcpu.id() < k.td->vcpus()) {
    // A TD vCPU leaves the TD for the exit and re-enters through VP.ENTER.
    k.td->set_clock(k.now(), 1 + vcpu.id());
    k.spent += k.td->td_exit(vcpu.id());
    const bool priv = k.td->is_private(gpa);
    const Gfn gfn = (gpa & ~(Gpa{1} << k.td->shared_bit())) >> kPageShift;
    if (priv != k.attrs.is_private(gfn)) {
      // The access disagrees with the attribute: KVM_EXIT_MEMORY_FAULT, the
      // VMM decides (convert or kill); nothing is mapped.
      ++k.td->memory_faults;
    } else if (priv) {
      fault.error_code |= PFERR_PRIVATE_ACCESS;
      fault.max_level = k.huge_pages->max_private_level(PrivateFaultCause::EptViolation);
      k.promote_blocked_range(fault.gfn, 1 + vcpu.id());
      // tdx_is_sept_violation_unexpected_pending: a guest access (not an
      // ACCEPT) to a mapped page that is still PENDING; KVM kills the TD
      // (kvm_vm_dead, "Guest access before accepting").
      if (k.tdx_private_fault(v, fault) == RET_PF_SPURIOUS && k.td->pending(gpa)) {
        ++k.stats.tdx_pending_access;
        if (k.pending_access_kills)
          k.kvm_vm_dead("Guest access before accepting " + hex(gpa) + " on vCPU " + std::to_string(vcpu.id()) +
                      " (tdx_handle_ept_violation: kvm_vm_dead)");
      }
      k.merge_on_violation(fault.gfn, 1 + vcpu.id());
    } else {
      // Mixed attributes inside a huge frame keep the mapping small through
      // lpage_info's KVM_LPAGE_MIXED_FLAG (kvm_mmu_max_mapping_level).
      fault.direct_bits = k.gfn_direct_bits();
      k.kvm_mmu_do_page_fault(v, fault);
    }
    k.td->set_clock(k.now(), 1 + vcpu.id());
    k.spent += k.td->vp_enter(vcpu.id());
    return k.finish();
  }
  k.kvm_mmu_do_page_fault(v, fault);
  return k.finish();
}

Cycles Kvm::handle_ept_misconfig(model::VcpuControl& vcpu, Gpa gpa) {
  // Only MMIO SPTEs may be misconfigured on purpose, and this MMU creates
  // none: as in KVM (handle_mmio_page_fault -> -EINVAL), KVM_RUN fails.
  throw KvmError("EPT misconfiguration at gpa " + hex(gpa) + " on vCPU " + std::to_string(vcpu.id()) +
                 ": the EPT holds a malformed entry the MMU did not write");
}

}  // namespace septsim::mmu
