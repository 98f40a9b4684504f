// The VM: construction, vCPU roots and requests, remote flushes, fast zap and
// the memslot ioctls.
#include <algorithm>
#include <string>

#include "mmu/kvm_impl.h"
#include "mmu/lpage_mixed.h"
#include "mmu/sp_layout.h"

namespace septsim::mmu {

namespace {

int config_root_level(const model::Config& cfg) {
  u64 levels = cfg.u("ept.levels");
  if (levels != 4 && levels != 5) throw model::ConfigError("config key 'ept.levels' must be 4 or 5");
  return int(levels);
}

int config_max_huge_level(const model::Config& cfg) {
  u64 level = cfg.u("mmu.max_huge_level");
  if (level < PG_LEVEL_4K || level > PG_LEVEL_1G) throw model::ConfigError("config key 'mmu.max_huge_level' must be 1, 2 or 3");
  return int(level);
}

// A key with two values: true for `yes`, false for `no`; anything else is a ConfigError.
bool config_choice(const model::Config& cfg, const char* key, const char* yes, const char* no) {
  const std::string& v = cfg.s(key);
  if (v != yes && v != no)
    throw model::ConfigError(std::string("config key '") + key + "' must be " + yes + " or " + no + ", not '" + v + "'");
  return v == yes;
}

PamtCache parse_pamt_cache(const std::string& v) {
  if (v == "vcpu") return PamtCache::Vcpu;
  if (v == "vm") return PamtCache::Vm;
  if (v == "kmem-cache") return PamtCache::KmemCache;
  throw model::ConfigError("config key 'mmu.tdx_pamt_cache' must be vcpu, vm or kmem-cache, not '" + v + "'");
}

Gfn config_max_gfn(const model::Config& cfg, int root_level) {
  u64 bits = std::min<u64>(cfg.u("host.maxphyaddr"), level_shift(root_level) + 9);
  return gpa_to_gfn(Gpa{1} << bits);
}

int backing_level(HostBacking b) {
  switch (b) {
    case HostBacking::Thp2M: return PG_LEVEL_2M;
    case HostBacking::Hugetlb1G: return PG_LEVEL_1G;
    case HostBacking::Page4K: break;
  }
  return PG_LEVEL_4K;
}

}  // namespace

Kvm::Impl::Impl(const model::Config& cfg, const model::Timing& t, model::PhysMem& m, model::StatsRegistry& reg)
    : timing(t),
      mem(m),
      stats(reg),
      root_level(config_root_level(cfg)),
      ad_enabled(cfg.b("mmu.ad") && cfg.b("ept.ad")),
      max_huge_level(config_max_huge_level(cfg)),
      eager_page_split(cfg.b("mmu.eager_page_split")),
      pml(cfg.b("mmu.pml")),
      max_gfn(config_max_gfn(cfg, root_level)),
      maxphyaddr(unsigned(cfg.u("host.maxphyaddr"))),
      slot_zap_all(parse_slot_zap(cfg.s("mmu.slot_zap"))),
      vcpu_clock_skew(cfg.u("sim.quantum_ns") * t.freq_mhz / 1000 + 100000),
      pamt_cache(parse_pamt_cache(cfg.s("mmu.tdx_pamt_cache"))),
      sept_pamt_at_link(config_choice(cfg, "mmu.tdx_dpamt_series", "v6", "rfc-v5")),
      demote_pamt_lock(config_choice(cfg, "mmu.tdx_demote_lock", "pamt_lock", "none")),
      merge_policy(TdxMergePolicy::create(cfg.s("mmu.tdx_merge_policy"))),
      huge_pages(TdxHugePages::create(cfg.s("mmu.tdx_huge_pages"))),
      private_dirty_log(config_choice(cfg, "mmu.tdx_private_dirty_log", "allow", "refuse")),
      pending_access_kills(config_choice(cfg, "mmu.tdx_pending_access", "kill", "count")),
      nx_recovery_ratio(cfg.u("mmu.nx_huge_pages_recovery_ratio")),
      merge_stats(reg),
      inject(cfg, reg),
      zap_history(reg),
      tdp(m, timing, stats, op),
      mmu_lock(reg) {
  stats.sp_meta.set_bytes_per_sp(sp_layout(parse_sp_layout(cfg.s("mmu.sp_layout"))).size());
  tdp.set_zap_history(&zap_history);
  tdp.set_injector(&inject);
  // Merging needs something split: private 2M leaves (a huge-page RFC).
  if (std::string(merge_policy->name()) != "none" && !huge_pages->huge_private_leaves())
    throw model::ConfigError(std::string("config key 'mmu.tdx_merge_policy' = ") + merge_policy->name() +
                             " merges split private 2M pages, which need 'mmu.tdx_huge_pages' = rfc-v1 or v3 (it is " +
                             huge_pages->name() + ")");
  // HostMemory keeps pfns in 32 bits.
  if (mem.limit_frames() > (u64{1} << 32))
    throw model::ConfigError("config key 'host.mem_gib' must be at most 16384 (the MMU keeps 32-bit host frame numbers)");
}

void Kvm::Impl::kvm_vm_dead(const std::string& why) {
  if (!dead_reason.empty()) return;
  dead_reason = why;
  for (Vcpu& v : vcpus) v.ctl->make_request(model::KVM_REQ_VM_DEAD);
}

Kvm::Impl::Vcpu& Kvm::Impl::vcpu_of(const model::VcpuControl& ctl) {
  for (Vcpu& v : vcpus)
    if (v.ctl == &ctl) return v;
  throw KvmError("vCPU " + std::to_string(ctl.id()) + " was never added to the VM");
}

Memslot& Kvm::Impl::slot_by_id(u32 id) const {
  Memslot* slot = slots.by_id(id);
  if (!slot) throw KvmError("no memslot with id " + std::to_string(id));
  return *slot;
}

MmuPageRole Kvm::Impl::root_role() const {
  MmuPageRole role;
  role.level = u32(root_level);
  role.direct = 1;
  role.access = ACC_ALL;
  role.cr0_wp = 1;
  role.efer_nx = 1;
  role.ad_disabled = !ad_enabled;
  return role;
}

ept::Eptp Kvm::Impl::eptp_of(const MmuPage& root) const {
  return ept::Eptp{root.spt_pfn << kPageShift, root_level, ad_enabled};
}

void Kvm::Impl::kvm_mmu_free_obsolete_roots(Vcpu& v) {
  if (!v.root || !v.root->role.invalid) return;
  tdp.put_root(v.root);
  v.root = nullptr;
}

void Kvm::Impl::kvm_mmu_load(Vcpu& v) {
  kvm_mmu_free_obsolete_roots(v);
  if (!v.root) v.root = tdp.alloc_root(root_role());
  ept::Eptp eptp = eptp_of(*v.root);
  v.ctl->load_eptp(eptp);
  // flush_tlb_current: the root's page may have been an old root's before.
  v.ctl->invept_single(eptp);
  op.spent += timing.invalidation;
}

void Kvm::Impl::begin_vcpu_op(const model::VcpuControl& ctl) {
  op.vcpu = &ctl;
  op.start = ctl.local_time();
  Cycles floor = op.start;
  for (const Vcpu& v : vcpus) floor = std::min(floor, v.ctl->local_time());
  mmu_lock.prune(floor);
  std::erase_if(recent_installs, [floor](const RecentInstall& r) { return r.visible_at <= floor; });
}

void Kvm::Impl::begin_ioctl() {
  op.vcpu = nullptr;
  op.start = host_time.value_or(std::max(latest, mmu_lock.last_release()));
  host_time.reset();
}

void Kvm::Impl::kvm_flush_remote_tlbs() {
  // kvm_make_all_cpus_request(KVM_REQ_TLB_FLUSH): an IPI to every other vCPU
  // in the guest, which exits, flushes and re-enters; the caller flushes itself.
  // A TD being torn down has no vCPU in the guest: no IPI is sent.
  const bool none_running = td && td->stopped();
  unsigned ipis = 0;
  for (Vcpu& v : vcpus) {
    if (!v.ctl->eptp().root) continue;
    v.ctl->invept_single(v.ctl->eptp());
    if (v.ctl == op.vcpu || none_running) continue;
    op.spent += timing.ipi;
    const Cycles exit = timing.vmexit + timing.invalidation + timing.vmentry;
    if (MmuTracepoints* tp = tdp.tracepoints()) tp->ipi_exit(v.ctl->id(), exit);
    v.ctl->charge(exit);
    ++stats.remote_tlb_flush_ipis;
    ++ipis;
  }
  ++stats.remote_tlb_flush;
  op.spent += timing.tlb_flush;
  if (MmuTracepoints* tp = tdp.tracepoints()) tp->remote_tlb_flush(ipis);
}

void Kvm::Impl::kvm_mmu_zap_all_fast() {
  mmu_valid_gen ^= 1;
  tdp.invalidate_roots();
  // No vCPU re-enters on an invalid root; each loads a new root (and flushes
  // its TLB for it) first, so zapping the invalid roots needs no flush.
  for (Vcpu& v : vcpus) v.ctl->make_request(model::KVM_REQ_MMU_FREE_OBSOLETE_ROOTS);
  tdp.zap_invalidated_roots();
  ++stats.mmu_zap_all_fast;
}

void Kvm::Impl::check_private_dirty_log(u32 id) const {
  // check_memory_region_flags: a guest_memfd slot takes no KVM_MEM_LOG_DIRTY_PAGES.
  if (!private_dirty_log)
    throw KvmError("memslot " + std::to_string(id) +
                   ": KVM refuses dirty logging on a TD's memslot (guest_memfd; kvm_main.c check_memory_region_flags "
                   "returns -EINVAL); the model's private dirty logging needs mmu.tdx_private_dirty_log=allow");
}

void Kvm::Impl::check_slot_range(Gpa gpa, u64 size, const Memslot* except) const {
  if ((gpa | size) & (kPageSize - 1))
    throw KvmError("memslot gpa " + hex(gpa) + " and size " + hex(size) + " must be 4 KiB aligned");
  if (size == 0) throw KvmError("memslot size must not be 0");
  const Gfn gfn = gpa_to_gfn(gpa);
  const u64 npages = size >> kPageShift;
  if (gfn >= max_gfn || npages > max_gfn - gfn)
    throw KvmError("memslot [" + hex(gpa) + ", " + hex(gpa + size) + ") lies beyond the guest-physical limit " +
                   hex(gfn_to_gpa(max_gfn)));
  if (const Memslot* other = slots.overlapping(gfn, npages, except))
    throw KvmError("memslot [" + hex(gpa) + ", " + hex(gpa + size) + ") overlaps memslot " + std::to_string(other->id) +
                   " at [" + hex(gfn_to_gpa(other->base_gfn)) + ", " + hex(gfn_to_gpa(other->end_gfn())) + ")");
}

Kvm::Kvm(const model::Config& cfg, const model::Timing& timing, model::PhysMem& mem, model::StatsRegistry& stats)
    : impl_(std::make_unique<Impl>(cfg, timing, mem, stats)) {}

Kvm::~Kvm() = default;

void Kvm::add_vcpu(model::VcpuControl& vcpu) {
  for (const Impl::Vcpu& v : impl_->vcpus)
    if (v.ctl == &vcpu || v.ctl->id() == vcpu.id()) throw KvmError("vCPU " + std::to_string(vcpu.id()) + " added twice");
  impl_->vcpus.push_back({&vcpu});
}

Cycles Kvm::create_memslot(const MemslotSpec& spec) {
  Impl& k = *impl_;
  k.op.spent = k.timing.vm_ioctl;
  constexpr u32 kValidFlags = KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY;
  if (spec.id >= 32768) throw KvmError("memslot id " + std::to_string(spec.id) + " out of range (KVM_MEM_SLOTS_NUM)");
  if (k.slots.by_id(spec.id)) throw KvmError("memslot id " + std::to_string(spec.id) + " already exists");
  if (spec.flags & ~kValidFlags) throw KvmError("memslot flags " + hex(spec.flags) + " are not supported");
  if (k.td && (spec.flags & KVM_MEM_LOG_DIRTY_PAGES)) k.check_private_dirty_log(spec.id);
  if (spec.userspace_addr & (kPageSize - 1))
    throw KvmError("memslot userspace_addr " + hex(spec.userspace_addr) + " must be 4 KiB aligned");
  k.check_slot_range(spec.gpa, spec.size, nullptr);
  int level = backing_level(spec.backing);
  u64 hva = spec.userspace_addr;
  if (!hva) {
    // Like a VMM's mmap: congruent to the gpa modulo the backing page size.
    u64 base = (k.next_hva + level_size(PG_LEVEL_1G) - 1) & ~(level_size(PG_LEVEL_1G) - 1);
    hva = base + (spec.gpa & (level_size(level) - 1));
    k.next_hva = hva + spec.size;
  }
  auto slot = std::make_unique<Memslot>(k.mem, spec, hva, level);
  init_memslot_memory_attributes(*slot, k.attrs);
  k.slots.insert(std::move(slot));
  return k.finish();
}

Cycles Kvm::delete_memslot(u32 id) {
  Impl& k = *impl_;
  k.op.spent = k.timing.vm_ioctl;
  const Memslot& slot = k.slot_by_id(id);
  k.begin_ioctl();
  auto lock = k.lock(MmuLockMode::Write);
  k.kvm_arch_flush_shadow_memslot(slot);
  k.slots.remove(id);  // releases the slot's host memory
  return k.finish();
}

Cycles Kvm::move_memslot(u32 id, Gpa new_gpa) {
  Impl& k = *impl_;
  k.op.spent = k.timing.vm_ioctl;
  Memslot& slot = k.slot_by_id(id);
  k.check_slot_range(new_gpa, slot.npages << kPageShift, &slot);
  if ((gpa_to_gfn(new_gpa)) == slot.base_gfn) return k.finish();
  k.begin_ioctl();
  auto lock = k.lock(MmuLockMode::Write);
  k.kvm_arch_flush_shadow_memslot(slot);
  slot.base_gfn = gpa_to_gfn(new_gpa);
  slot.init_lpage_info();
  init_memslot_memory_attributes(slot, k.attrs);
  k.slots.resort();
  return k.finish();
}

Cycles Kvm::set_memslot_flags(u32 id, u32 flags) {
  Impl& k = *impl_;
  k.op.spent = k.timing.vm_ioctl;
  Memslot& slot = k.slot_by_id(id);
  if (flags & ~(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY))
    throw KvmError("memslot flags " + hex(flags) + " are not supported");
  if ((flags ^ slot.flags) & KVM_MEM_READONLY)
    throw KvmError("memslot " + std::to_string(id) + ": KVM_MEM_READONLY cannot be changed on an existing slot");
  if (k.td && (flags & ~slot.flags & KVM_MEM_LOG_DIRTY_PAGES)) k.check_private_dirty_log(id);
  k.begin_ioctl();
  auto lock = k.lock(MmuLockMode::Write);
  u32 old_flags = slot.flags;
  slot.flags = flags;
  if (slot.dirty_track_enabled() && slot.dirty_bitmap.empty()) slot.dirty_bitmap.assign((slot.npages + 63) / 64, 0);
  if (!slot.dirty_track_enabled()) std::vector<u64>().swap(slot.dirty_bitmap);
  k.kvm_mmu_slot_apply_flags(slot, old_flags);
  return k.finish();
}

Cycles Kvm::zap_gfn_range(Gpa gpa, u64 size) {
  Impl& k = *impl_;
  k.op.spent = 0;
  k.begin_ioctl();
  auto lock = k.lock(MmuLockMode::Write);
  Gfn start = gpa_to_gfn(gpa), end = gpa_to_gfn(gpa + size + kPageSize - 1);
  // mmu.c:kvm_zap_gfn_range brackets the zap with kvm_mmu_invalidate_begin/_end,
  // so a fault that faulted a pfn in before it retries.
  k.kvm_mmu_invalidate_begin(start, end);
  // An mmu_notifier unmap: KVM_FILTER_SHARED, never the mirror root.
  // debug.inject=no-remote-flush: the zap forgets kvm_flush_remote_tlbs.
  if (k.tdp.zap_leafs(start, end, false, KVM_DIRECT_ROOTS) && !k.inject.fire(Inject::NoRemoteFlush))
    k.kvm_flush_remote_tlbs();
  k.kvm_mmu_invalidate_end();
  return k.finish();
}

Hpa Kvm::host_hpa_for_gpa(Gpa gpa) {
  Memslot* slot = impl_->slots.find(gpa_to_gfn(gpa));
  if (!slot) throw KvmError("gpa " + hex(gpa) + " is not in any memslot");
  u64 allocs = 0;
  Pfn pfn = slot->host.faultin(slot->gfn_to_hva(gpa_to_gfn(gpa)), &allocs);
  return (pfn << kPageShift) | (gpa & (kPageSize - 1));
}

void Kvm::set_host_time(Cycles t) { impl_->host_time = t; }
Cycles Kvm::latest_time() const { return impl_->latest; }

bool Kvm::gpa_in_memslot(Gpa gpa) const { return impl_->slots.find(gpa_to_gfn(gpa)) != nullptr; }

int Kvm::mapped_level(u32 vcpu_id, Gpa gpa) const {
  for (const Impl::Vcpu& v : impl_->vcpus) {
    if (v.ctl->id() != vcpu_id) continue;
    if (!v.root || v.root->role.invalid) return 0;
    u64 spte = 0;
    int level = 0;
    if (!impl_->tdp.fast_pf_get_last_sptep(*v.root, gpa_to_gfn(gpa), &spte, &level)) return 0;
    return is_present_leaf(spte, level) ? level : 0;
  }
  return 0;
}

void Kvm::set_tracepoints(MmuTracepoints* tp) {
  impl_->tdp.set_tracepoints(tp);
  impl_->mmu_lock.set_tracepoints(tp);
  if (impl_->td) impl_->td->set_tracepoints(tp);
}

void Kvm::set_check_log(CheckLog* log) {
  impl_->check_log = log;
  impl_->tdp.set_check_log(log);
  if (impl_->td) impl_->td->set_check_log(log);
}

Cycles Kvm::service_requests(model::VcpuControl& vcpu, u32 requests) {
  Impl& k = *impl_;
  k.op.spent = 0;
  TracepointTask task(k.tdp.tracepoints(), int(vcpu.id()));
  Impl::Vcpu& v = k.vcpu_of(vcpu);
  k.begin_vcpu_op(vcpu);
  auto lock = k.lock(MmuLockMode::Read);  // TDP root allocation and free
  if (requests & model::KVM_REQ_MMU_FREE_OBSOLETE_ROOTS) k.kvm_mmu_free_obsolete_roots(v);
  bool loaded = !v.root || vcpu.eptp().root == 0;
  if (loaded)
    k.kvm_mmu_load(v);  // flushes for the new root
  else if (requests & model::KVM_REQ_LOAD_MMU_PGD)
    vcpu.load_eptp(k.eptp_of(*v.root));
  if ((requests & model::KVM_REQ_TLB_FLUSH) && !loaded) {
    vcpu.invept_single(vcpu.eptp());
    k.op.spent += k.timing.invalidation;
  }
  return k.finish();
}

u64 Kvm::pages(int level) const {
  if (level < PG_LEVEL_4K || level > PG_LEVEL_1G) return 0;
  return *impl_->stats.pages[level];
}

std::vector<std::string> Kvm::check_invariants() const { return impl_->check_invariants(); }

}  // namespace septsim::mmu
