// The VM's TD ioctls (KVM_TDX_INIT_MEM_REGION, KVM_TDX_FINALIZE_VM, teardown)
// and the TD's EPT-violation exit (arch/x86/kvm/vmx/tdx.c:
// tdx_handle_ept_violation): TD exit, the attribute check, then the common
// fault path (mmu/page_fault.cc) with the private bit, retried locally, then
// VP.ENTER. The mirror root's hooks (TdxVm) SEPT.ADD and AUG.
#include <stdexcept>

#include "mmu/kvm_impl.h"
#include "mmu/sept_level.h"
#include "model/vcpu.h"

namespace septsim::mmu {

namespace {

TdxVm& need_td(const std::unique_ptr<TdxVm>& td, const char* what) {
  if (!td) throw KvmError(std::string(what) + ": the VM is not a TD (vm_create needs \"vm_type\":\"tdx\")");
  return *td;
}

}  // namespace

Cycles Kvm::create_td(seam::TdxModule& tdx, const TdxVmParams& p, const std::vector<model::Vcpu*>& hw) {
  Impl& k = *impl_;
  if (k.td) throw KvmError("the VM is already a TD");
  if (!k.private_dirty_log)
    for (const auto& slot : k.slots.all())
      if (slot->dirty_track_enabled())
        throw KvmError("memslot " + std::to_string(slot->id) +
                       " is dirty-logged: KVM refuses dirty logging on a TD's memslot (guest_memfd; kvm_main.c "
                       "check_memory_region_flags); the model's private dirty logging needs "
                       "mmu.tdx_private_dirty_log=allow");
  k.op.spent = k.timing.vm_ioctl;
  // tdx.c:__tdx_bringup: a huge-page series that needs a module feature the
  // module lacks leaves enable_tdx_huge_page off, so the TD maps 4K.
  if (k.huge_pages->needs_demote_interruptibility() && !tdx.enhance_demote_interruptibility())
    k.huge_pages = make_tdx_huge_pages_off();
  auto td = std::make_unique<TdxVm>(tdx, k.mem, k.stats);
  td->set_kick_cost(k.timing.ipi);
  td->set_page_alloc_cost(k.timing.page_alloc);
  td->set_mmu_lock(&k.mmu_lock);
  td->set_injector(&k.inject);
  td->set_tracepoints(k.tdp.tracepoints());
  td->set_pamt_cache(k.pamt_cache, k.sept_pamt_at_link);
  td->set_huge_page_calls(k.huge_pages->wbinvd_per_4k_piece(), k.huge_pages->demote_busy_kicks_vcpus());
  td->set_demote_pamt_lock(k.demote_pamt_lock);
  td->set_check_log(k.check_log);
  if (hw.size() > 1) {
    td->set_clock_skew(k.vcpu_clock_skew);
    k.tdp.set_race_skew(k.vcpu_clock_skew);
  }
  try {
    td->create(k.op, p, hw);
  } catch (const std::runtime_error& e) {
    throw KvmError(e.what());
  }
  k.td = std::move(td);
  MmuPageRole role = k.root_role();
  role.is_mirror = 1;
  k.mirror_root = k.tdp.alloc_root(role);
  k.tdp.set_external_spt(k.td.get());
  return k.finish();
}

Cycles Kvm::td_init_mem_region(Gpa gpa, u64 size, u64 tag, bool measure) {
  Impl& k = *impl_;
  TdxVm& td = need_td(k.td, "td_init_mem_region");
  k.op.spent = k.timing.vm_ioctl;
  if ((gpa | size) & (kPageSize - 1) || size == 0)
    throw KvmError("td_init_mem_region: gpa " + hex(gpa) + " and size " + hex(size) + " must be 4 KiB aligned and non-empty");
  if (td.finalized()) throw KvmError("td_init_mem_region after td_finalize (PAGE.ADD needs an unfinalized TD)");
  if (!td.is_private(gpa) || !td.is_private(gpa + size - 1))
    throw KvmError("td_init_mem_region: [" + hex(gpa) + ", " + hex(gpa + size) + ") has the shared bit set");
  k.begin_ioctl();
  try {
    for (u64 off = 0; off < size; off += kPageSize) k.tdx_premap_page(gpa + off, tag + (off >> kPageShift), measure);
  } catch (const std::runtime_error& e) {
    td.set_page_add_src(std::nullopt);
    throw KvmError(e.what());
  }
  return k.finish();
}

void Kvm::Impl::tdx_premap_page(Gpa gpa, u64 tag, bool measure) {
  const Gfn gfn = gpa_to_gfn(gpa);
  Memslot* slot = slots.find(gfn);
  if (!slot) throw KvmError("td_init_mem_region: gpa " + hex(gpa) + " is not in any memslot");
  if (!attrs.is_private(gfn))
    throw KvmError("td_init_mem_region: gpa " + hex(gpa) + " is shared (set_memory_attributes)");
  u64 allocs = 0;
  const Pfn pfn = slot->host.faultin(slot->gfn_to_hva(gfn), &allocs);
  op.spent += allocs * timing.page_alloc;
  const u32 cache = td->topup_external_cache(op);
  auto lock = this->lock(MmuLockMode::Read);  // kvm_tdp_map_page, as a fault
  // kvm_tdp_mmu_map_private_pfn: the set hook PAGE.ADDs from page_add_src.
  KvmPageFault fault(gpa, PFERR_GUEST_FINAL_MASK | PFERR_PRIVATE_ACCESS | PFERR_WRITE_MASK);
  fault.slot = slot;
  fault.pfn = pfn;
  fault.map_writable = true;
  fault.external_spt_cache = cache;
  fault.spte_sw_bits = SPTE_TDX_PAGE_ADDED;
  td->set_page_add_src(tag);
  // kvm_tdp_mmu_map_private_pfn maps again while kvm_tdp_mmu_map answers
  // RET_PF_RETRY (PAGE.ADD BUSY is tdx_mem_page_add's -EBUSY); it stops on
  // a dead VM first (KVM_REQ_VM_DEAD).
  const int r = td->bugged() ? RET_PF_RETRY : retry_while_busy([&](bool&) {
    bool flush = false;
    return tdp.map(*mirror_root, fault, &flush);
  });
  td->set_page_add_src(std::nullopt);
  if (r == RET_PF_SPURIOUS) throw KvmError("td_init_mem_region: gpa " + hex(gpa) + " is already private");
  if (r != RET_PF_FIXED) throw KvmError("td_init_mem_region: " + td->last_error());
  if (measure) td->mr_extend(gpa, op);
}

Cycles Kvm::td_finalize() {
  Impl& k = *impl_;
  TdxVm& td = need_td(k.td, "td_finalize");
  k.op.spent = k.timing.vm_ioctl;
  k.begin_ioctl();
  try {
    td.finalize(k.op);
  } catch (const std::runtime_error& e) {
    throw KvmError(e.what());
  }
  return k.finish();
}

Cycles Kvm::td_accept(u32 vcpu, Gpa gpa, TdxLevel level, u64* status, bool interrupt) {
  Impl& k = *impl_;
  TdxVm& td = need_td(k.td, "accept");
  k.op.spent = 0;
  if (!td.finalized()) throw KvmError("accept: the TD is not finalized (no TD vCPU runs yet)");
  if (vcpu >= td.vcpus()) throw KvmError("accept: vCPU " + std::to_string(vcpu) + " does not exist");
  k.begin_vcpu_op(*k.vcpus.at(vcpu).ctl);
  seam::Status s = td.accept(vcpu, gpa, level, k.op, interrupt);
  if (s == seam::SEPTSIM_TD_EXIT_EPT_VIOLATION) {
    // The ACCEPT exits with an EPT violation on a page the VMM has not
    // given yet: KVM faults it in (private, at the accepted level) and the
    // guest retries.
    td.td_exit(k.op, vcpu);
    k.op.spent += k.timing.vmexit + k.timing.fault_handler;
    Impl::Vcpu& v = k.vcpus.at(vcpu);
    const int accept_level = tdx_sept_level_to_pg_level(level);
    switch (k.huge_pages->accept_exit()) {
      case AcceptExit::FaultOnly: break;
      case AcceptExit::InhibitThenSplit:
        if (accept_level == PG_LEVEL_4K) k.tdx_inhibit_and_split(gpa);
        break;
      case AcceptExit::SplitThenInhibit:
        k.tdx_handle_mismatched_accept(gpa, accept_level);
        break;
    }
    KvmPageFault fault(gpa, PFERR_WRITE_MASK | PFERR_PRIVATE_ACCESS);
    fault.max_level = std::min(accept_level, k.huge_pages->max_private_level(accept_level > PG_LEVEL_4K
                                                                                  ? PrivateFaultCause::Accept2M
                                                                                  : PrivateFaultCause::Accept4K));
    if (!td.bugged()) k.tdx_private_page_fault(v, fault);
    td.vp_enter(k.op, vcpu);
    k.op.spent += k.timing.vmentry;
    s = td.accept(vcpu, gpa, level, k.op);
  }
  // A pending host interrupt stopped a 2M ACCEPT after a chunk (the module
  // keeps its progress in the PENDING entry): the TD exit is an external
  // interrupt, KVM handles it and re-enters, and the guest repeats the
  // TDCALL, which goes on from where it stopped. The interrupt is served
  // by then, so the repeat runs to the end.
  while (s == seam::SEPTSIM_TD_EXIT_INTERRUPT && !td.bugged()) {
    ++k.stats.tdx_accept_interrupted;
    td.td_exit(k.op, vcpu);
    k.op.spent += k.timing.vmexit;
    td.vp_enter(k.op, vcpu);
    k.op.spent += k.timing.vmentry;
    s = td.accept(vcpu, gpa, level, k.op);
  }
  if (status) *status = s;
  return k.finish();
}

Cycles Kvm::td_vcpu_migrate(u32 vcpu, u32 lp) {
  Impl& k = *impl_;
  TdxVm& td = need_td(k.td, "vcpu_migrate");
  if (vcpu >= td.vcpus()) throw KvmError("vcpu_migrate: vCPU " + std::to_string(vcpu) + " does not exist");
  k.op.spent = 0;
  k.begin_vcpu_op(*k.vcpus.at(vcpu).ctl);
  if (!td.migrate_vcpu(k.op, vcpu, lp))
    throw KvmError("vcpu_migrate: LP " + std::to_string(lp) + " is not on the platform (host.packages x host.lps_per_package = " +
                   std::to_string(td.module().lps()) + ")");
  return k.finish();
}

Cycles Kvm::td_teardown(bool terminate) {
  Impl& k = *impl_;
  TdxVm& td = need_td(k.td, "td_teardown");
  k.op.spent = k.timing.vm_ioctl;
  k.begin_ioctl();
  auto lock = k.lock(MmuLockMode::Write);
  try {
    td.stop_vcpus(k.op);
    if (!terminate) {
      // The VMM closes its files: guest_memfd's release (kvm_gmem_release)
      // unmaps every private page while the HKID is still assigned, so each
      // leaves through tdx_sept_remove_leaf_spte (BLOCK, TRACK, REMOVE,
      // WBINVD); then the remote flush the zap asks for. Ranges a merge
      // policy left BLOCKed are UNBLOCKed first, as a conversion does.
      k.unblock_split_ranges(Gfn{}, k.max_gfn);
      if (k.tdp.zap_leafs(Gfn{}, k.max_gfn, false, KVM_MIRROR_ROOTS)) k.kvm_flush_remote_tlbs();
    }
    // kvm_destroy_vm -> vm_pre_destroy: tdx_mmu_release_hkid. With
    // KVM_TDX_TERMINATE_VM (`terminate`) this comes first and the private
    // pages are RECLAIMed by the mirror's teardown below instead.
    td.release_hkid(k.op);
  } catch (const std::runtime_error& e) {
    throw KvmError(e.what());
  }
  // kvm_mmu_uninit_tdp_mmu for the mirror: with the HKID released, the
  // hooks RECLAIM what is left (the tables' external_spt pages, and the
  // private pages on the terminate path).
  k.tdp.invalidate_roots(KVM_MIRROR_ROOTS);
  k.tdp.zap_invalidated_roots();
  k.tdp.put_root(k.mirror_root);
  k.mirror_root = nullptr;
  k.tdp.set_external_spt(nullptr);
  k.split_ranges = SplitPrivateRanges{};
  k.merge_stats.candidates = 0;
  td.reclaim_control_pages(k.op);
  return k.finish();
}

bool Kvm::is_td() const { return impl_->td != nullptr; }
const std::string& Kvm::dead_reason() const { return impl_->dead_reason; }
const TdxVm* Kvm::tdx_vm() const { return impl_->td.get(); }
TdxVm* Kvm::tdx_vm() { return impl_->td.get(); }

std::optional<PrivateMapping> Kvm::private_mapping(Gpa gpa) const {
  const Impl& k = *impl_;
  if (!k.mirror_root) return std::nullopt;
  for (TdpIter it(k.mem, *k.mirror_root, PG_LEVEL_4K, gpa_to_gfn(gpa)); it.valid && it.gfn <= gpa_to_gfn(gpa);
       it.next()) {
    if (!is_present_leaf(it.old_spte, it.level)) continue;
    PrivateMapping m;
    m.hpa = spte_to_pfn(it.old_spte) << kPageShift;
    m.level = it.level;
    m.added = it.old_spte & SPTE_TDX_PAGE_ADDED;
    m.sptep = it.sptep_hpa();
    m.external_spt = Hpa{k.tdp.sp_of_table(it.pt_pfn[it.level - 1])->external_spt} << kPageShift;
    return m;
  }
  return std::nullopt;
}

void Kvm::Impl::tdx_handle_ept_violation(Vcpu& v, KvmPageFault& fault) {
  const unsigned id = v.ctl->id();
  const Gpa gpa = fault.addr;
  // The vCPU left the TD for this exit and re-enters through VP.ENTER.
  td->td_exit(op, id);
  const bool priv = td->is_private(gpa);
  const Gfn gfn = gpa_to_gfn(gpa & ~(Gpa{1} << td->shared_bit()));
  if (priv) {
    // __vmx_handle_ept_violation: a private GPA's fault is a private access.
    fault.error_code |= PFERR_PRIVATE_ACCESS;
    fault.is_private = true;
  } else {
    // Mixed attributes inside a huge frame keep the mapping small through
    // lpage_info's KVM_LPAGE_MIXED_FLAG (kvm_mmu_max_mapping_level).
    fault.direct_bits = gfn_direct_bits();
  }
  if (!priv || !attrs.is_private(gfn)) {
    // A shared access, or a private one to a shared gfn, which
    // kvm_mmu_faultin_pfn turns into KVM_EXIT_MEMORY_FAULT after
    // kvm_mmu_do_page_fault counted it: the merge policies' hooks around a
    // private fault are not for it.
    kvm_mmu_do_page_fault(v, fault);
  } else {
    fault.max_level = huge_pages->max_private_level(PrivateFaultCause::EptViolation);
    // tdx_is_sept_violation_unexpected_pending: a guest access (not an
    // ACCEPT) to a mapped page that is still PENDING; KVM kills the TD
    // (kvm_vm_dead, "Guest access before accepting").
    if (tdx_private_page_fault(v, fault) == RET_PF_SPURIOUS && td->pending(gpa)) {
      ++stats.tdx_pending_access;
      if (pending_access_kills)
        kvm_vm_dead("Guest access before accepting " + hex(gpa) + " on vCPU " + std::to_string(id) +
                    " (tdx_handle_ept_violation: kvm_vm_dead)");
    }
  }
  td->vp_enter(op, id);
}

void Kvm::Impl::tdx_inhibit_and_split(Gpa gpa) {
  const Gfn gfn = gpa_to_gfn(gpa);
  Memslot* slot = slots.find(gfn);
  if (!slot) return;
  // Every frame above the ACCEPT level holding the gfn: the next fault of
  // any vCPU there maps 4K (kvm_mmu_max_mapping_level reads the flag).
  for (int level = PG_LEVEL_2M; level <= PG_LEVEL_1G; ++level) slot->hugepage_set_guest_inhibit(gfn, level);
  if (!partly_converted_huge_leaf(gfn, gfn, gfn + 1)) return;
  // The DEMOTE's table and PAMT pair come from the vCPU's caches, filled
  // before mmu_lock as for a fault.
  const u32 cache = td->topup_external_cache(op);
  auto lock = this->lock(MmuLockMode::Write);
  // A refused BLOCK/TRACK/DEMOTE bugged the VM in the hook (TDX_BUG_ON).
  if (tdp.split_mirror_huge_page(gfn, cache)) ++stats.tdx_accept_splits;
}

void Kvm::Impl::tdx_handle_mismatched_accept(Gpa gpa, int accept_level) {
  const Gfn gfn = gpa_to_gfn(gpa);
  Memslot* slot = slots.find(gfn);
  // A level above 2M is not handled; so the guest's 1G ACCEPT maps 2M.
  if (!slot || accept_level > PG_LEVEL_2M) return;
  // Already inhibited: the mapping the fault makes is small enough.
  if (slot->hugepage_test_guest_inhibit(gfn, accept_level + 1)) return;
  // The split's table and PAMT pair come from the vCPU's caches. The series
  // tops them up while the split allocates (dropping mmu_lock if it must);
  // the model tops up before taking it, as for a fault.
  const bool split = accept_level == PG_LEVEL_4K && partly_converted_huge_leaf(gfn, gfn, gfn + 1);
  const u32 cache = split ? td->topup_external_cache(op) : 0;
  // The write lock whether or not a leaf needs splitting.
  auto lock = this->lock(MmuLockMode::Write);
  if (split && tdp.split_mirror_huge_page(gfn, cache)) ++stats.tdx_accept_splits;
  // Then the flag: one level above the ACCEPT's, and two for a 4K ACCEPT.
  slot->hugepage_set_guest_inhibit(gfn, accept_level + 1);
  if (accept_level == PG_LEVEL_4K) slot->hugepage_set_guest_inhibit(gfn, accept_level + 2);
}

int Kvm::Impl::tdx_private_page_fault(Vcpu& v, KvmPageFault& fault) {
  const unsigned initiator = 1 + v.ctl->id();
  merge_policy->before_private_fault(*this, fault.gfn, initiator);
  // tdx_handle_ept_violation retries a private fault locally, without
  // re-entering the guest, while it returns RET_PF_RETRY (the mirror entry
  // FROZEN_SPTE by a racing vCPU's hook, or SEPT.ADD / AUG answered BUSY);
  // each try is a whole kvm_mmu_page_fault. KVM_REQ_VM_DEAD (a hook bugged
  // the VM) stops it.
  const int r = retry_while_busy([&](bool& found_frozen) {
    KvmPageFault f = fault;
    const int ret = kvm_mmu_do_page_fault(v, f);
    found_frozen = f.found_frozen;
    return ret;
  });
  merge_policy->after_private_fault(*this, fault.gfn, initiator);
  return r;
}

}  // namespace septsim::mmu
