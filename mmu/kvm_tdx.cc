// The VM's TD ioctls (KVM_TDX_INIT_MEM_REGION, KVM_TDX_FINALIZE_VM, teardown)
// and the private half of the fault path: a TD's EPT violation on a GPA
// without the shared bit is served from the memslot's backing through
// SEPT.ADD + AUG instead of the direct root.
#include <stdexcept>

#include "mmu/kvm_impl.h"
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
  k.spent = k.timing.vm_ioctl;
  auto td = std::make_unique<TdxVm>(tdx, k.mem, k.stats);
  td->set_kick_cost(k.timing.ipi);
  td->set_mmu_lock(&k.mmu_lock);
  td->set_pamt_cache_per_vcpu(k.pamt_cache_per_vcpu);
  if (hw.size() > 1) td->set_clock_skew(k.vcpu_clock_skew);
  try {
    k.spent += td->create(p, hw);
  } catch (const std::runtime_error& e) {
    throw KvmError(e.what());
  }
  k.td = std::move(td);
  return k.finish();
}

Cycles Kvm::td_init_mem_region(Gpa gpa, u64 size, u64 tag, bool measure) {
  Impl& k = *impl_;
  TdxVm& td = need_td(k.td, "td_init_mem_region");
  k.spent = k.timing.vm_ioctl;
  if ((gpa | size) & (kPageSize - 1) || size == 0)
    throw KvmError("td_init_mem_region: gpa " + hex(gpa) + " and size " + hex(size) + " must be 4 KiB aligned and non-empty");
  k.begin_ioctl();
  try {
    for (u64 off = 0; off < size; off += kPageSize) {
      const Gfn gfn = (gpa + off) >> kPageShift;
      Memslot* slot = k.slots.find(gfn);
      if (!slot) throw KvmError("td_init_mem_region: gpa " + hex(gpa + off) + " is not in any memslot");
      if (!k.attrs.is_private(gfn))
        throw KvmError("td_init_mem_region: gpa " + hex(gpa + off) + " is shared (set_memory_attributes)");
      u64 allocs = 0;
      const Pfn pfn = slot->host.faultin(slot->gfn_to_hva(gfn), &allocs);
      k.spent += allocs * k.timing.page_alloc;
      k.spent += td.topup_pamt_cache(td.vm_cache()) * k.timing.page_alloc;
      auto lock = k.lock(MmuLockMode::Read);  // kvm_tdp_map_page, as a fault
      td.set_clock(k.now(), 0);
      k.spent += td.page_add(gpa + off, pfn << kPageShift, tag + (off >> kPageShift), measure);
    }
  } catch (const std::runtime_error& e) {
    throw KvmError(e.what());
  }
  return k.finish();
}

Cycles Kvm::td_finalize() {
  Impl& k = *impl_;
  TdxVm& td = need_td(k.td, "td_finalize");
  k.spent = k.timing.vm_ioctl;
  k.begin_ioctl();
  td.set_clock(k.now(), 0);
  try {
    k.spent += td.finalize();
  } catch (const std::runtime_error& e) {
    throw KvmError(e.what());
  }
  return k.finish();
}

Cycles Kvm::td_accept(u32 vcpu, Gpa gpa, int tdx_level, u64* status) {
  Impl& k = *impl_;
  TdxVm& td = need_td(k.td, "accept");
  k.spent = 0;
  if (!td.finalized()) throw KvmError("accept: the TD is not finalized (no TD vCPU runs yet)");
  if (vcpu >= td.vcpus()) throw KvmError("accept: vCPU " + std::to_string(vcpu) + " does not exist");
  k.begin_vcpu_op(*k.vcpus.at(vcpu).ctl);
  td.set_clock(k.now(), 1 + vcpu);
  seam::Status s = td.accept(vcpu, gpa, tdx_level, k.spent);
  if (s == seam::SEPTSIM_TD_EXIT_EPT_VIOLATION) {
    // The ACCEPT exits with an EPT violation on a page the VMM has not
    // given yet: KVM faults it in (private, at the accepted level) and the
    // guest retries.
    k.spent += td.td_exit(vcpu) + k.timing.vmexit + k.timing.fault_handler;
    KvmPageFault fault(gpa, PFERR_WRITE_MASK | PFERR_PRIVATE_ACCESS);
    fault.max_level = tdx_level + 1;
    k.tdx_private_fault(k.vcpus.at(vcpu), fault);
    td.set_clock(k.now(), 1 + vcpu);
    k.spent += td.vp_enter(vcpu) + k.timing.vmentry;
    s = td.accept(vcpu, gpa, tdx_level, k.spent);
  }
  if (status) *status = s;
  return k.finish();
}

Cycles Kvm::td_teardown() {
  Impl& k = *impl_;
  TdxVm& td = need_td(k.td, "td_teardown");
  k.spent = k.timing.vm_ioctl;
  k.begin_ioctl();
  auto lock = k.lock(MmuLockMode::Write);
  td.set_clock(k.now(), 0);
  try {
    k.spent += td.teardown();
  } catch (const std::runtime_error& e) {
    throw KvmError(e.what());
  }
  return k.finish();
}

bool Kvm::is_td() const { return impl_->td != nullptr; }
const TdxVm* Kvm::tdx_vm() const { return impl_->td.get(); }
TdxVm* Kvm::tdx_vm() { return impl_->td.get(); }

int Kvm::Impl::tdx_private_fault(Vcpu& v, KvmPageFault& fault) {
  ++stats.pf_taken;
  const u32 cache = v.ctl->id() < td->vcpus() ? v.ctl->id() : td->vm_cache();
  // mmu_topup_memory_caches: before mmu_lock, so the external hooks only take.
  td->topup_external_spt_cache(cache, spent);
  spent += td->topup_pamt_cache(cache) * timing.page_alloc;
  const Gfn gfn = fault.gfn;
  fault.slot = slots.find(gfn);
  if (!fault.slot || td->torn_down() || !attrs.is_private(gfn)) {
    // No private backing: KVM_EXIT_MEMORY_FAULT to the VMM.
    ++td->memory_faults;
    return RET_PF_EMULATE;
  }
  // Fault the host page in before mmu_lock: the host mapping level depends on it.
  u64 allocs = 0;
  fault.pfn = fault.slot->host.faultin(fault.slot->gfn_to_hva(gfn), &allocs);
  spent += allocs * timing.page_alloc;
  // KVM retries a private fault in its handler while it returns RET_PF_RETRY
  // (SEPT.ADD or AUG found the entry busy), without re-entering the guest.
  for (int attempt = 1;; ++attempt) {
    const int r = tdx_map_private_gfn(v, fault, cache);
    if (r != RET_PF_RETRY) return r;
    ++stats.pf_retry;
    ++td->busy_retries;
    if (attempt == kPrivateFaultRetries) return r;
  }
}

int Kvm::Impl::tdx_map_private_gfn(Vcpu& v, KvmPageFault& fault, u32 cache) {
  auto lock = this->lock(MmuLockMode::Read);
  td->set_clock(now(), 1 + v.ctl->id());
  const auto& priv = td->private_pages();
  const Gfn gfn = fault.gfn, base2m = gfn & ~Gfn{511};
  const PrivatePage* huge = priv.lookup(base2m);
  if ((priv.count(gfn) && !td->mapping_in_flight(gfn, PG_LEVEL_4K)) ||
      (huge && huge->level == PG_LEVEL_2M && !td->mapping_in_flight(base2m, PG_LEVEL_2M))) {
    ++stats.pf_spurious;
    return RET_PF_SPURIOUS;
  }
  // TDX maps private memory at 4K unless the fault (an ACCEPT at 2M) asks
  // for more and the whole 2M range is free of private pages.
  int level = PG_LEVEL_4K;
  if (fault.max_level >= PG_LEVEL_2M && kvm_mmu_max_mapping_level(*fault.slot, gfn, PG_LEVEL_2M) >= PG_LEVEL_2M) {
    auto it = priv.lower_bound(base2m);
    if ((it == priv.end() || it->first >= base2m + 512) && attrs.uniform(base2m, base2m + 512, true))
      level = PG_LEVEL_2M;
  }
  const Gfn map_gfn = level == PG_LEVEL_2M ? base2m : gfn;
  const Pfn pfn = level == PG_LEVEL_2M ? fault.pfn & ~Pfn{511} : fault.pfn;
  if (!td->map_private(cache, map_gfn << kPageShift, pfn << kPageShift, level, spent)) {
    if (td->map_busy()) return RET_PF_RETRY;
    ++stats.pf_emulate;
    return RET_PF_EMULATE;
  }
  ++stats.pf_fixed;
  return RET_PF_FIXED;
}

}  // namespace septsim::mmu
