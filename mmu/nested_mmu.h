// Nested EPT seen from L0 (arch/x86/kvm/mmu/mmu.c: kvm_init_shadow_ept_mmu, kvm_mmu_new_pgd): an L1 hypervisor runs L2
// guests with EPT, and KVM shadows each L1 EPT (EPT12) with shadow-EPT roots
// in the vCPU's guest_mmu. Per vCPU: the current root plus prev_roots
// (KVM_MMU_NUM_PREV_ROOTS, config mmu.prev_roots), each holding a root_count
// reference. A nested VM entry switches to the entry's EPTP through
// kvm_mmu_new_pgd / fast_pgd_switch (a cached root is reused, LRU) or
// kvm_mmu_load (a root is found in mmu_page_hash or built). A root whose
// last reference goes stays in the hash, as KVM's valid shadow pages do,
// until the shadow-page budget (mmu.nested.max_shadow_pages, KVM's
// n_max_mmu_pages) recycles it; with a budget of 0 it goes at once. L1's INVEPT
// single-context frees the cached roots of that EPTP (upstream) or keeps
// them, to be synced before reuse (mmu.nested.invept = keep-sync, Lai
// Jiangshan's 2021 RFC).
#pragma once
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mmu/shadow_ept.h"
#include "model/config.h"
#include "model/stats.h"
#include "model/timing.h"

namespace septsim::mmu {

constexpr u64 INVALID_PAGE = ~u64{0};

// struct kvm_mmu_root_info, plus the RFC's need_sync.
struct KvmMmuRootInfo {
  u64 pgd = INVALID_PAGE;          // the EPTP (VMCS12 EPT pointer) the root shadows
  ShadowEptRoot* hpa = nullptr;    // nullptr: INVALID_PAGE
  bool need_sync = false;          // keep-sync: INVEPT'd while cached, sync before reuse
};

// The parts of a vCPU's guest_mmu that root caching uses.
struct GuestMmu {
  KvmMmuRootInfo root;
  std::vector<KvmMmuRootInfo> prev_roots;  // mmu.prev_roots entries, most recent first
};

class NestedMmu {
 public:
  NestedMmu(const model::Config& cfg, const model::Timing& timing, model::StatsRegistry& stats, u32 vcpus);
  ~NestedMmu();

  // L1 enters L2 (VMLAUNCH/VMRESUME of a VMCS12 whose EPT pointer is eptp).
  Cycles nested_vmentry(u32 vcpu, u64 eptp);
  // L2 accesses `count` guest-physical addresses gpa, gpa + stride, ...
  Cycles l2_access(u32 vcpu, Gpa gpa, u64 count, u64 stride);
  // L1 changes the EPT12 leaf entry for L2 gpa in the EPT rooted at eptp.
  Cycles l1_ept_write(u32 vcpu, u64 eptp, Gpa gpa);
  // L1 executes INVEPT (handle_invept): single-context for eptp, or global.
  Cycles handle_invept(u32 vcpu, bool global, u64 eptp);

  const GuestMmu& guest_mmu(u32 vcpu) const { return mmus_.at(vcpu); }
  size_t live_roots() const { return hash_.size(); }
  // Rule 5 of docs/invariants.md for guest_mmu roots: each root's root_count is
  // the number of current/prev_roots entries that hold it.
  std::vector<std::string> check_invariants() const;

 private:
  using RootKey = std::pair<Gfn, u32>;  // (EPT12 root gfn, role.word)
  struct Stats;

  GuestMmu& mmu_of(u32 vcpu);
  MmuPageRole root_role(u64 eptp) const;
  bool fast_pgd_switch(GuestMmu& mmu, u64 pgd, MmuPageRole role);
  bool cached_root_find_and_keep_current(GuestMmu& mmu, u64 pgd, MmuPageRole role);
  bool cached_root_find_without_current(GuestMmu& mmu, u64 pgd, MmuPageRole role);
  void kvm_mmu_load(GuestMmu& mmu, u64 pgd, MmuPageRole role);
  void mmu_free_root_page(KvmMmuRootInfo& info);
  void zap_root(const RootKey& key);
  // make_mmu_pages_available, before allocating: recycle unused roots,
  // oldest first, while the shadow pages in use reach
  // mmu.nested.max_shadow_pages (the model's kvm_mmu_zap_oldest_mmu_pages
  // takes whole unused trees).
  void make_mmu_pages_available();
  void sync_root(KvmMmuRootInfo& info);
  Cycles l2_fault(ShadowEptRoot& root, Gpa gpa);

  const model::Timing timing_;
  const Cycles sync_page_cycles_;  // latency.shadow_sync_page
  const bool keep_on_invept_;      // mmu.nested.invept == keep-sync
  const u64 max_shadow_pages_;     // mmu.nested.max_shadow_pages; 0: a root goes with its last reference
  std::vector<GuestMmu> mmus_;
  std::map<RootKey, std::unique_ptr<ShadowEptRoot>> hash_;  // mmu_page_hash, roots only
  std::map<u64, RootKey> unused_;  // roots kept without a reference, by when they lost the last one
  u64 unused_clock_ = 0;
  std::set<RootKey> ever_built_;                            // for root_rebuilds
  std::map<Gfn, std::set<Gfn>> ever_mapped_;                // EPT12 root gfn -> L2 gfns mapped once (refaults)
  std::unique_ptr<Stats> stats_;
  Cycles spent_ = 0;
};

}  // namespace septsim::mmu
