// The EPT-violation path (arch/x86/kvm/mmu/mmu.c: kvm_mmu_page_fault,
// kvm_tdp_page_fault): exit qualification to kvm_page_fault,
// fast_page_fault, faultin, max mapping level, then kvm_tdp_mmu_map on the
// fault's root. One path for a normal VM's faults and a TD's shared and
// private ones: a private fault only differs in its root (the mirror), its
// pfn (guest_memfd) and its caches (the mirror's external hooks).
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
    op.spent += timing.spte_write;
    if (check_log) check_log->touch(fault.gfn & ~(pages_per_level(level) - 1), pages_per_level(level));
    if (!is_writable_pte(spte) && is_writable_pte(new_spte) && fault.slot) fault.slot->mark_page_dirty(slot_gfn(fault));
    ret = RET_PF_FIXED;
  } while (false);
  if (MmuTracepoints* tp = tdp.tracepoints()) tp->fast_page_fault(v.ctl->id(), fault.addr, fault.error_code, spte, sptep ? *sptep : 0, ret);
  if (ret != RET_PF_INVALID) ++stats.pf_fast;
  return ret;
}

int Kvm::Impl::kvm_mmu_faultin_pfn(KvmPageFault& fault) {
  // The snapshot is_page_fault_stale compares under mmu_lock (mmu.c:kvm_mmu_faultin_pfn).
  fault.mmu_seq = mmu_invalidate_seq;
  // With the snapshot taken, a private access to a shared gfn or a shared
  // access to a private one is a KVM_EXIT_MEMORY_FAULT: the VMM converts
  // (or kills) and the vCPU re-enters. Only a TD has private gfns.
  if (td && fault.is_private != attrs.is_private(slot_gfn(fault))) {
    ++stats.tdx_memory_faults;
    return KVM_EXIT_MEMORY_FAULT_RET;
  }
  if (fault.is_private) {
    // kvm_mmu_faultin_pfn_private: the page comes from the slot's
    // guest_memfd; no slot, or a TD torn down (no vendor hooks left), is a
    // KVM_EXIT_MEMORY_FAULT for the VMM to resolve.
    if (!fault.slot || !tdp.external_spt()) {
      ++stats.tdx_memory_faults;
      return KVM_EXIT_MEMORY_FAULT_RET;
    }
    u64 allocs = 0;
    fault.pfn = fault.slot->host.faultin(fault.slot->gfn_to_hva(fault.gfn), &allocs);
    op.spent += allocs * timing.page_alloc;
    fault.map_writable = true;  // private pages are always mapped RWX
    return RET_PF_CONTINUE;
  }
  // No memslot: MMIO. MMIO SPTEs are not cached, so every access exits.
  if (!fault.slot) return RET_PF_EMULATE;
  // A write to a read-only slot (KVM_PFN_ERR_RO_FAULT) is emulated.
  if (fault.write && fault.slot->readonly()) return RET_PF_EMULATE;
  u64 allocs = 0;
  fault.pfn = fault.slot->host.faultin(fault.slot->gfn_to_hva(slot_gfn(fault)), &allocs);
  op.spent += allocs * timing.page_alloc;
  fault.map_writable = !fault.slot->readonly();
  return RET_PF_CONTINUE;
}

void Kvm::Impl::kvm_mmu_hugepage_adjust(KvmPageFault& fault) {
  fault.req_level = fault.goal_level = PG_LEVEL_4K;
  if (fault.max_level == PG_LEVEL_4K || fault.slot->dirty_track_enabled()) return;
  fault.req_level = kvm_mmu_max_mapping_level(*fault.slot, slot_gfn(fault), std::min(fault.max_level, max_huge_level));
  // debug.inject=huge-over-mixed: a 2M frame kept small only by
  // KVM_LPAGE_MIXED_FLAG (mixed private/shared attributes) is mapped 2M.
  if (fault.req_level == PG_LEVEL_4K && fault.max_level >= PG_LEVEL_2M && max_huge_level >= PG_LEVEL_2M &&
      fault.slot->disallow_lpage(slot_gfn(fault), PG_LEVEL_2M) == KVM_LPAGE_MIXED_FLAG &&
      fault.slot->host.mapping_level(fault.slot->gfn_to_hva(slot_gfn(fault))) >= PG_LEVEL_2M &&
      inject.fire(Inject::HugeOverMixed))
    fault.req_level = PG_LEVEL_2M;
  // A private range the mirror already maps with a table stays 4K: replacing
  // the table by a huge leaf would be a present -> present mirror change.
  if (fault.is_private && fault.req_level > PG_LEVEL_4K) {
    u64 spte = 0;
    int level = 0;
    tdp.fast_pf_get_last_sptep(*mirror_root, fault.gfn & ~Gfn{511}, &spte, &level);
    if (level < PG_LEVEL_2M) fault.req_level = PG_LEVEL_4K;
  }
  if (fault.req_level == PG_LEVEL_4K) return;
  fault.goal_level = fault.req_level;
  fault.pfn &= ~(pages_per_level(fault.goal_level) - 1);
}

bool Kvm::Impl::lost_cmpxchg(KvmPageFault& fault) {
  if (fault.is_private) {
    // The model ran a racing vCPU's fault first: one that read the mirror
    // before that fault's hook returned finds the entry FROZEN_SPTE
    // (tdp_mmu.c:__tdp_mmu_set_spte_atomic): its cmpxchg fails with no hook
    // called, and the fault returns RET_PF_RETRY. tdx_handle_ept_violation
    // retries it at once; the retries spin until the winner's SEAMCALL
    // returns and unfreezes the entry: the model charges the failed
    // cmpxchg and that wait.
    const Cycles until = tdp.frozen_until(fault.gfn, fault.goal_level);
    if (!until) return false;
    op.spent += timing.spte_write;
    if (until > now()) op.spent += until - now();
    fault.found_frozen = true;
    ++stats.tdx_frozen_retries;
    return true;
  }
  const unsigned me = op.vcpu ? op.vcpu->id() : ~0u;
  for (const RecentInstall& r : recent_installs) {
    if (r.vcpu == me || r.visible_at <= now() || fault.gfn < r.gfn || fault.gfn >= r.gfn + r.pages) continue;
    // The walk read the entry before the other vCPU's write landed: the
    // new SPTE is built, and tdp_mmu_set_spte_atomic fails against it.
    op.spent += timing.spte_write;
    return true;
  }
  return false;
}

int Kvm::Impl::map_and_record(Vcpu& v, MmuPage& root, KvmPageFault& fault) {
  bool flush = false;
  const int r = tdp.map(root, fault, &flush);
  // Rule mmu-notifier: what was installed is what the host backs the gfn with.
  if (r == RET_PF_FIXED && fault.slot && !fault.is_private) check_install(fault);
  // Private installs race through the TDX module's locks (lost_cmpxchg).
  if (r == RET_PF_FIXED && vcpus.size() > 1 && !fault.is_private) {
    const u64 pages = pages_per_level(fault.goal_level);
    // A vCPU that never advances its clock keeps the floor low: bound the list.
    if (recent_installs.size() >= kMaxRecentInstalls)
      recent_installs.erase(recent_installs.begin(), recent_installs.begin() + kMaxRecentInstalls / 2);
    recent_installs.push_back({fault.gfn & ~(pages - 1), pages, v.ctl->id(), now()});
  }
  if (flush) kvm_flush_remote_tlbs();
  return r;
}

void Kvm::Impl::mmu_topup_memory_caches(const Vcpu& v, KvmPageFault& fault) {
  if (!fault.is_private) return;
  // The mirror's hooks take their external_spt and PAMT pages from the
  // faulting vCPU's caches, filled through the vendor hook before mmu_lock.
  // After teardown no hook is left: kvm_mmu_faultin_pfn refuses the fault.
  if (ExternalSpt* ext = tdp.external_spt()) fault.external_spt_cache = ext->topup_external_cache(op);
}

int Kvm::Impl::kvm_tdp_mmu_page_fault(Vcpu& v, KvmPageFault& fault) {
  auto lock = this->lock(MmuLockMode::Read);
  // tdp_mmu_get_root_for_fault: private faults map the mirror root.
  MmuPage* root = fault.is_private ? mirror_root : v.root;
  if (!fault.is_private && (!root || root->role.invalid)) {
    return RET_PF_RETRY;  // is_page_fault_stale: the vCPU must first reload its root
  }
  // is_page_fault_stale: an mmu_notifier invalidation of the gfn ran or is
  // running since the pfn was faulted in (mmu_invalidate_retry_gfn).
  if (fault.slot && !fault.skip_stale_check && mmu_invalidate_retry_gfn(fault.mmu_seq, slot_gfn(fault)))
    return RET_PF_RETRY;
  kvm_mmu_hugepage_adjust(fault);
  return lost_cmpxchg(fault) ? RET_PF_RETRY : map_and_record(v, *root, fault);
}

int Kvm::Impl::kvm_mmu_do_page_fault(Vcpu& v, KvmPageFault& fault) {
  fault.slot = slot_gfn(fault) < max_gfn ? slots.find(slot_gfn(fault)) : nullptr;
  ++stats.pf_taken;
  int r = RET_PF_INVALID;
  // page_fault_can_be_fast: a write to a present SPTE (A/D on: no access
  // tracking); never a private fault.
  // A VM with private memory never takes it fast when the access and the
  // gfn's attribute disagree.
  if (!fault.is_private && !fault.rsvd && (fault.present ? fault.write : !ad_enabled) &&
      !(td && attrs.is_private(slot_gfn(fault))))
    r = fast_page_fault(v, fault);
  if (r == RET_PF_INVALID) {
    mmu_topup_memory_caches(v, fault);
    r = kvm_mmu_faultin_pfn(fault);
    if (r == RET_PF_CONTINUE && !fault.is_private) {
      // debug.inject: a host page migration races this fault; with
      // stale-snapshot KVM then maps the pfn it faulted in without asking
      // is_page_fault_stale.
      fault.skip_stale_check = inject.fire(Inject::StaleSnapshot);
      if (fault.skip_stale_check || inject.fire(Inject::MigrateRace)) host_migrate_during_fault(fault);
    }
    if (r == RET_PF_CONTINUE) r = kvm_tdp_mmu_page_fault(v, fault);
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
  k.op.spent = k.timing.fault_handler;
  TracepointTask task(k.tdp.tracepoints(), int(vcpu.id()));
  if (task.tp) task.tp->kvm_page_fault(vcpu.id(), 0, gpa, exit_qualification);
  KvmPageFault fault(gpa, ept_violation_error_code(exit_qualification));
  Impl::Vcpu& v = k.vcpu_of(vcpu);
  k.begin_vcpu_op(vcpu);
  // A TD vCPU's exit goes to the TDX module's handler (vt_handle_exit ->
  // tdx_handle_exit), an ordinary vCPU's to VMX's.
  if (k.td && k.td->finalized() && vcpu.id() < k.td->vcpus())
    k.tdx_handle_ept_violation(v, fault);
  else
    k.kvm_mmu_do_page_fault(v, fault);
  const Cycles cycles = k.finish();
  if (task.tp) task.tp->exit_handled(vcpu.id(), cycles);
  return cycles;
}

Cycles Kvm::handle_ept_misconfig(model::VcpuControl& vcpu, Gpa gpa) {
  // Only MMIO SPTEs may be misconfigured on purpose, and this MMU creates
  // none: as in KVM (handle_mmio_page_fault -> -EINVAL), KVM_RUN fails.
  throw KvmError("EPT misconfiguration at gpa " + hex(gpa) + " on vCPU " + std::to_string(vcpu.id()) +
                 ": the EPT holds a malformed entry the MMU did not write");
}

}  // namespace septsim::mmu
