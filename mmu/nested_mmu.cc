#include "mmu/nested_mmu.h"

#include <algorithm>

#include "mmu/kvm.h"
#include "model/hex.h"

namespace septsim::mmu {

struct NestedMmu::Stats {
  explicit Stats(model::StatsRegistry& r)
      : vmentries(r.counter("nested.vmentries", "nested VM entries (L1 entering an L2 with an EPTP)")),
        current_hits(r.counter("nested.root_current_hits", "entries whose EPTP is the current root's")),
        prev_roots_hits(r.counter("nested.prev_roots_hits", "entries that found their root in prev_roots")),
        root_loads(r.counter("nested.root_loads", "kvm_mmu_load: no cached root, look up mmu_page_hash")),
        root_shared(r.counter("nested.root_shared", "loads that found the root held by another vCPU")),
        root_unused_hits(r.counter("nested.root_unused_hits", "loads that found the root kept unused in the hash")),
        root_builds(r.counter("nested.root_builds", "shadow-EPT roots built")),
        root_rebuilds(r.counter("nested.root_rebuilds", "roots built again for an EPTP and role built before")),
        roots_freed(r.counter("nested.roots_freed", "roots zapped: at their last reference, or recycled for room")),
        accesses(r.counter("nested.l2_accesses", "L2 guest-physical accesses")),
        faults(r.counter("nested.faults", "EPT violations of L2 handled by the shadow-EPT fault path")),
        refaults(r.counter("nested.refaults", "faults on an L2 gfn whose shadow SPTE existed before")),
        pages_built(r.counter("nested.shadow_pages_built", "shadow-EPT pages allocated, roots included")),
        invept_single(r.counter("nested.invept_single", "single-context INVEPTs by L1")),
        invept_global(r.counter("nested.invept_global", "global INVEPTs by L1")),
        unsync_marks(r.counter("nested.unsync_marks", "shadow pages made unsync by L1 writing its EPT")),
        syncs(r.counter("nested.syncs", "roots synced before reuse (keep-sync) or at load")),
        synced_pages(r.counter("nested.synced_pages", "unsync shadow pages synced (kvm_sync_page)")),
        cycles(r.counter("nested.cycles", "host cycles in KVM for nested entries, faults, INVEPT and syncs")),
        roots(r.gauge("nested.roots", "shadow-EPT roots alive")),
        pages(r.gauge("nested.shadow_pages", "shadow-EPT pages alive, roots included")) {}
  u64 &vmentries, &current_hits, &prev_roots_hits, &root_loads, &root_shared, &root_unused_hits, &root_builds, &root_rebuilds,
      &roots_freed, &accesses, &faults, &refaults, &pages_built, &invept_single, &invept_global, &unsync_marks,
      &syncs, &synced_pages, &cycles, &roots, &pages;
};

namespace {

constexpr u64 kEptpPaMask = ((u64{1} << 52) - 1) & ~u64{0xfff};

u32 config_prev_roots(const model::Config& cfg) {
  u64 n = cfg.u("mmu.prev_roots");
  if (n > 16) throw model::ConfigError("config key 'mmu.prev_roots' must be 0..16");
  return u32(n);
}

bool config_keep_on_invept(const model::Config& cfg) {
  const std::string& v = cfg.s("mmu.nested.invept");
  if (v == "free") return false;
  if (v == "keep-sync") return true;
  throw model::ConfigError("config key 'mmu.nested.invept': unknown policy '" + v + "' (known: free, keep-sync)");
}

// nested_ept_root_matches: same EPT12 root table, whatever the other bits.
bool root_matches(const KvmMmuRootInfo& info, u64 eptp) {
  return info.hpa && (info.pgd & kEptpPaMask) == (eptp & kEptpPaMask);
}

bool is_root_usable(const KvmMmuRootInfo& info, u64 pgd, MmuPageRole role) {
  return info.hpa && info.pgd == pgd && info.hpa->role().word() == role.word();
}

}  // namespace

NestedMmu::NestedMmu(const model::Config& cfg, const model::Timing& timing, model::StatsRegistry& stats, u32 vcpus)
    : timing_(timing),
      sync_page_cycles_(cfg.u("latency.shadow_sync_page")),
      keep_on_invept_(config_keep_on_invept(cfg)),
      max_shadow_pages_(cfg.u("mmu.nested.max_shadow_pages")),
      mmus_(vcpus),
      stats_(std::make_unique<Stats>(stats)) {
  u32 n = config_prev_roots(cfg);
  for (GuestMmu& m : mmus_) m.prev_roots.resize(n);
}

NestedMmu::~NestedMmu() = default;

GuestMmu& NestedMmu::mmu_of(u32 vcpu) {
  if (vcpu >= mmus_.size()) throw KvmError("vCPU " + std::to_string(vcpu) + " does not exist");
  return mmus_[vcpu];
}

// kvm_init_shadow_ept_mmu: the root role from the EPTP (walk length, A/D).
MmuPageRole NestedMmu::root_role(u64 eptp) const {
  u64 memtype = eptp & 7, walk = (eptp >> 3) & 7;
  if ((memtype != 0 && memtype != 6) || (walk != 3 && walk != 4) || (eptp & 0xf00) || (eptp & ~((u64{1} << 52) - 1)))
    throw KvmError("EPTP " + hex(eptp) + " is invalid (memory type UC or WB, walk length 4 or 5, reserved bits 0)");
  MmuPageRole role;
  role.level = u32(walk + 1);
  role.direct = 0;
  role.access = ACC_ALL;
  role.guest_mode = 1;
  role.ad_disabled = ((eptp >> 6) & 1) == 0;
  return role;
}

bool NestedMmu::cached_root_find_and_keep_current(GuestMmu& mmu, u64 pgd, MmuPageRole role) {
  if (is_root_usable(mmu.root, pgd, role)) return true;
  // Rotating through prev_roots keeps them in LRU order: on a hit at i the
  // old current root is prev_roots[0] and 0..i-1 moved down one.
  for (KvmMmuRootInfo& prev : mmu.prev_roots) {
    std::swap(mmu.root, prev);
    if (is_root_usable(mmu.root, pgd, role)) return true;
  }
  mmu_free_root_page(mmu.root);  // the least recently used root fell out
  return false;
}

bool NestedMmu::cached_root_find_without_current(GuestMmu& mmu, u64 pgd, MmuPageRole role) {
  auto& prev = mmu.prev_roots;
  auto hit = std::find_if(prev.begin(), prev.end(), [&](const auto& r) { return is_root_usable(r, pgd, role); });
  if (hit == prev.end()) return false;
  std::swap(mmu.root, *hit);
  std::rotate(hit, hit + 1, prev.end());  // bubble up the rest; the freed slot ends invalid
  return true;
}

bool NestedMmu::fast_pgd_switch(GuestMmu& mmu, u64 pgd, MmuPageRole role) {
  if (mmu.root.hpa) return cached_root_find_and_keep_current(mmu, pgd, role);
  return cached_root_find_without_current(mmu, pgd, role);
}

void NestedMmu::kvm_mmu_load(GuestMmu& mmu, u64 pgd, MmuPageRole role) {
  ++stats_->root_loads;
  RootKey key{gpa_to_gfn(pgd & kEptpPaMask), role.word()};
  auto it = hash_.find(key);
  if (it == hash_.end()) {
    make_mmu_pages_available();
    it = hash_.emplace(key, std::make_unique<ShadowEptRoot>(key.first, role)).first;
    ++stats_->root_builds, ++stats_->roots, ++stats_->pages, ++stats_->pages_built;
    if (!ever_built_.insert(key).second) ++stats_->root_rebuilds;
    spent_ += timing_.page_alloc;
  } else if (it->second->root_count == 0) {
    ++stats_->root_unused_hits;
    std::erase_if(unused_, [&](const auto& u) { return u.second == key; });
  } else {
    ++stats_->root_shared;
  }
  ++it->second->root_count;
  mmu.root = {pgd, it->second.get(), false};
  // kvm_mmu_sync_roots; flush_tlb_current for the new root.
  if (it->second->unsync_pages()) sync_root(mmu.root);
  spent_ += timing_.invalidation;
}

void NestedMmu::mmu_free_root_page(KvmMmuRootInfo& info) {
  ShadowEptRoot* root = std::exchange(info, KvmMmuRootInfo{}).hpa;
  if (!root || --root->root_count > 0) return;
  RootKey key{root->root_gfn(), root->role().word()};
  if (max_shadow_pages_ == 0) return zap_root(key);
  unused_.emplace(++unused_clock_, key);
}

void NestedMmu::zap_root(const RootKey& key) {
  auto it = hash_.find(key);
  ++stats_->roots_freed, --stats_->roots;
  stats_->pages -= it->second->pages();
  spent_ += it->second->present_sptes() * timing_.spte_write;
  hash_.erase(it);
}

void NestedMmu::make_mmu_pages_available() {
  while (max_shadow_pages_ && stats_->pages >= max_shadow_pages_ && !unused_.empty()) {
    RootKey oldest = unused_.begin()->second;
    unused_.erase(unused_.begin());
    zap_root(oldest);
  }
}

void NestedMmu::sync_root(KvmMmuRootInfo& info) {
  info.need_sync = false;
  unsigned pages = info.hpa->sync_unsync_pages();
  ++stats_->syncs;
  stats_->synced_pages += pages;
  spent_ += pages * sync_page_cycles_;
}

Cycles NestedMmu::nested_vmentry(u32 vcpu, u64 eptp) {
  GuestMmu& mmu = mmu_of(vcpu);
  MmuPageRole role = root_role(eptp);
  spent_ = timing_.vmexit + timing_.vmentry;
  ++stats_->vmentries;
  bool current = is_root_usable(mmu.root, eptp, role);
  if (fast_pgd_switch(mmu, eptp, role)) {
    ++(current ? stats_->current_hits : stats_->prev_roots_hits);
    if (mmu.root.need_sync) sync_root(mmu.root);
  } else {
    kvm_mmu_load(mmu, eptp, role);
  }
  stats_->cycles += spent_;
  return spent_;
}

Cycles NestedMmu::l2_fault(ShadowEptRoot& root, Gpa gpa) {
  ++stats_->faults;
  make_mmu_pages_available();
  if (!ever_mapped_[root.root_gfn()].insert(gpa_to_gfn(gpa)).second) ++stats_->refaults;
  // FNAME(page_fault): walk L1's EPT12 (one read per level), link the
  // missing shadow pages, install the leaf.
  unsigned created = root.link_path(gpa);
  root.install_leaf(gpa);
  stats_->pages += created, stats_->pages_built += created;
  return timing_.vmexit + timing_.fault_handler + root.role().level * timing_.walk_ref +
         created * (timing_.page_alloc + timing_.spte_write) + timing_.spte_write + timing_.vmentry;
}

Cycles NestedMmu::l2_access(u32 vcpu, Gpa gpa, u64 count, u64 stride) {
  GuestMmu& mmu = mmu_of(vcpu);
  if (!mmu.root.hpa)
    throw KvmError("vCPU " + std::to_string(vcpu) + " runs no L2 (l2_access before any nested_vmentry, or after "
                   "an INVEPT freed its root without a new entry)");
  Cycles in_kvm = 0;
  for (u64 i = 0; i < count; ++i, gpa += stride) {
    ++stats_->accesses;
    // A stale SPTE still translates: the architecture allows it until INVEPT.
    if (!mmu.root.hpa->leaf_present(gpa, false)) in_kvm += l2_fault(*mmu.root.hpa, gpa);
  }
  stats_->cycles += in_kvm;
  return in_kvm + count * timing_.mem_access;
}

Cycles NestedMmu::l1_ept_write(u32 vcpu, u64 eptp, Gpa gpa) {
  mmu_of(vcpu);
  Cycles c = 0;
  for (auto& [key, root] : hash_) {
    if (gfn_to_gpa(key.first) != (eptp & kEptpPaMask) || !root->guest_entry_written(gpa)) continue;
    // The first write to a write-protected EPT12 table faults and unsyncs
    // its shadow page (mmu_try_to_unsync_pages); later writes do not exit.
    ++stats_->unsync_marks;
    c += timing_.vmexit + timing_.fault_handler + timing_.vmentry;
  }
  stats_->cycles += c;
  return c;
}

Cycles NestedMmu::handle_invept(u32 vcpu, bool global, u64 eptp) {
  GuestMmu& mmu = mmu_of(vcpu);
  if (!global) root_role(eptp);  // VMfailValid for an invalid EPTP is L1's problem, not a model state
  spent_ = timing_.vmexit + timing_.vmentry + timing_.invalidation;
  ++(global ? stats_->invept_global : stats_->invept_single);
  auto hit = [&](const KvmMmuRootInfo& r) { return r.hpa && (global || root_matches(r, eptp)); };
  if (keep_on_invept_) {
    // The RFC: keep the roots, sync each before it is used again.
    for (KvmMmuRootInfo& prev : mmu.prev_roots)
      if (hit(prev)) prev.need_sync = true;
    if (hit(mmu.root)) mmu.root.need_sync = true;
  } else {
    // kvm_mmu_free_roots(KVM_MMU_ROOT_PREVIOUS(i)..., KVM_MMU_ROOT_CURRENT);
    // the next nested entry loads a root again.
    for (KvmMmuRootInfo& prev : mmu.prev_roots)
      if (hit(prev)) mmu_free_root_page(prev);
    if (hit(mmu.root)) mmu_free_root_page(mmu.root);
  }
  stats_->cycles += spent_;
  return spent_;
}

std::vector<std::string> NestedMmu::check_invariants() const {
  std::map<const ShadowEptRoot*, int> refs;
  for (const GuestMmu& m : mmus_) {
    if (m.root.hpa) ++refs[m.root.hpa];
    for (const KvmMmuRootInfo& p : m.prev_roots)
      if (p.hpa) ++refs[p.hpa];
  }
  std::vector<std::string> out;
  for (const auto& [key, root] : hash_)
    if (root->root_count != refs[root.get()])
      out.push_back("rule 5: shadow-EPT root for EPT12 root gfn " + hex(key.first) + " has root_count " +
                    std::to_string(root->root_count) + " but " + std::to_string(refs[root.get()]) +
                    " current/prev_roots references");
  for (const auto& [root, n] : refs)
    if (!hash_.count({root->root_gfn(), root->role().word()}))
      out.push_back("rule 5: a vCPU holds a freed shadow-EPT root (EPT12 root gfn " + hex(root->root_gfn()) + ")");
  return out;
}

}  // namespace septsim::mmu
