// Private <-> shared conversion of a TD's memory: KVM_SET_MEMORY_ATTRIBUTES
// from the VMM and the guest's MapGPA, which exits to the VMM that then sets
// the attributes (mmu.c: kvm_arch_pre_set_memory_attributes, kvm_arch_post_set_memory_attributes). Each direction zaps only the root the
// range leaves (attr_filter): private -> shared removes the private pages,
// shared -> private zaps the direct root's shared alias of the range.
#include "mmu/kvm_impl.h"
#include "mmu/lpage_mixed.h"

namespace septsim::mmu {

Cycles Kvm::set_memory_attributes(Gpa gpa, u64 size, bool make_private) {
  Impl& k = *impl_;
  if (!k.td) throw KvmError("set_memory_attributes: the VM is not a TD (vm_create needs \"vm_type\":\"tdx\")");
  TdxVm& td = *k.td;
  if ((gpa | size) & (kPageSize - 1) || size == 0)
    throw KvmError("set_memory_attributes: gpa " + hex(gpa) + " and size " + hex(size) +
                   " must be 4 KiB aligned and non-empty");
  if (!td.is_private(gpa) || !td.is_private(gpa + size - 1))
    throw KvmError("set_memory_attributes: range [" + hex(gpa) + ", " + hex(gpa + size) +
                   ") must lie below the shared bit (bit " + std::to_string(td.shared_bit()) + ")");
  k.op.spent = k.timing.vm_ioctl;
  k.begin_ioctl();
  const Gfn start = gpa_to_gfn(gpa), end = gpa_to_gfn(gpa + size);
  // A split under the lock takes its DEMOTE table and (Dynamic PAMT) its
  // R12/R13 pair from the VM's caches: fill them first, as a fault does.
  if (!make_private &&
      (k.partly_converted_huge_leaf(start, start, end) || k.partly_converted_huge_leaf(end - 1, start, end))) {
    td.topup_external_cache(k.op);
  }
  auto lock = k.lock(MmuLockMode::Write);
  // kvm_main.c:kvm_vm_set_mem_attributes: the zap runs inside an
  // mmu_notifier-style invalidation (kvm_mmu_invalidate_begin .. _end), so a
  // fault that faulted a pfn in before the conversion retries.
  k.kvm_mmu_invalidate_begin(start, end);
  // attr_filter: to private zaps the shared alias in the direct root; to
  // shared removes the private leaves from the mirror root.
  if (make_private) {
    const Gfn bits = gpa_to_gfn(Gpa{1} << td.shared_bit());
    if (k.tdp.zap_leafs(start | bits, end | bits, false, KVM_DIRECT_ROOTS)) k.kvm_flush_remote_tlbs();
  } else {
    // A range BLOCKed for a merge (policy C) is UNBLOCKed first; a private
    // huge page only partly converted is split (DEMOTE), so only the
    // converted 4K pieces leave the TD.
    k.unblock_split_ranges(start, end);
    for (Gfn edge : {start, end - 1}) k.split_private_huge_page(edge, start, end);
    // A failure bugs the VM and keeps the page. TRACK made the TDX module
    // flush the private translations, but tdp_mmu_zap_leafs asks for the
    // remote flush all the same (kvm_flush_remote_tlbs -> tdx_flush_tlb_all).
    // debug.inject=convert-no-removal: the private pages stay mapped.
    if (!k.inject.fire(Inject::ConvertNoRemoval) && k.tdp.zap_leafs(start, end, false, KVM_MIRROR_ROOTS))
      k.kvm_flush_remote_tlbs();
  }
  k.attrs.set(start, end, make_private);
  for (const auto& slot : k.slots.all()) post_set_memory_attributes(*slot, k.attrs, start, end, make_private);
  k.kvm_mmu_invalidate_end();
  return k.finish();
}

std::optional<Gfn> Kvm::Impl::partly_converted_huge_leaf(Gfn edge, Gfn start, Gfn end) {
  for (TdpIter it(mem, *mirror_root, PG_LEVEL_2M, edge); it.valid && it.gfn <= edge; it.next()) {
    if (it.level == PG_LEVEL_4K || !is_present_leaf(it.old_spte, it.level)) continue;
    if (it.gfn >= start && it.gfn + pages_per_level(it.level) <= end) return std::nullopt;  // wholly converted
    return it.gfn;
  }
  return std::nullopt;
}

void Kvm::Impl::split_private_huge_page(Gfn edge, Gfn start, Gfn end) {
  const std::optional<Gfn> huge = partly_converted_huge_leaf(edge, start, end);
  if (!huge) return;
  assert_mmu_lock_held_write("split_private_huge_page");
  if (!tdp.split_mirror_huge_page(edge, td->vm_cache()))
    throw KvmError("set_memory_attributes: splitting the private 2M page at " + hex(gfn_to_gpa(*huge)) +
                   " failed: " + td->last_error());
  note_private_split(*huge);
}

Cycles Kvm::map_gpa(u32 vcpu, Gpa gpa, u64 size) {
  Impl& k = *impl_;
  if (!k.td) throw KvmError("map_gpa: the VM is not a TD (vm_create needs \"vm_type\":\"tdx\")");
  TdxVm& td = *k.td;
  if (vcpu >= td.vcpus()) throw KvmError("map_gpa: vCPU " + std::to_string(vcpu) + " does not exist");
  const bool to_private = td.is_private(gpa);
  const Gpa base = gpa & ~(Gpa{1} << td.shared_bit());
  // TDVMCALL exit to KVM, KVM_EXIT_HYPERCALL to the VMM, which converts, then VP.ENTER.
  k.op.spent = 0;
  k.begin_vcpu_op(*k.vcpus.at(vcpu).ctl);
  td.td_exit(k.op, vcpu);
  Cycles c = k.op.spent + k.timing.vmexit;
  // The conversion is the VMM's ioctl, an operation of its own; the vCPU's
  // VP.ENTER follows it on the VMM's time.
  c += set_memory_attributes(base, size, to_private);
  const Cycles before = k.op.spent;
  td.vp_enter(k.op, vcpu);
  c += k.op.spent - before + k.timing.vmentry;
  k.latest = std::max(k.latest, k.now());  // the next ioctl starts after this VP.ENTER
  return c;
}

u64 Kvm::memory_fault_exits() const { return impl_->td ? impl_->td->memory_faults : 0; }

}  // namespace septsim::mmu
