// Kvm's state, shared by kvm.cc (ioctls, roots, requests), page_fault.cc,
// dirty_log.cc and invariants.cc.
#pragma once
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "mmu/fault_inject.h"
#include "mmu/check_log.h"
#include "mmu/kvm.h"
#include "mmu/mem_attributes.h"
#include "mmu/memslot.h"
#include "mmu/mmu_lock.h"
#include "mmu/mmu_stats.h"
#include "model/hex.h"
#include "mmu/page_fault.h"
#include "mmu/tdp_mmu.h"
#include "mmu/split_private_ranges.h"
#include "mmu/tdx_merge_policy.h"
#include "mmu/tdx_huge_pages.h"
#include "mmu/tdx_merge_stats.h"
#include "mmu/tdx_vm.h"
#include "mmu/zap_history.h"

namespace septsim::mmu {

// memslot_flush.cc: mmu.slot_zap -> whether a memslot flush zaps every root.
bool parse_slot_zap(const std::string& value);

// invariants.cc: the entries [first, last) of a table at `level` mapping
// from `base` that overlap the gfns [lo, hi).
std::pair<unsigned, unsigned> entries_over(Gfn base, int level, Gfn lo, Gfn hi);

struct Kvm::Impl {
  Impl(const model::Config& cfg, const model::Timing& timing, model::PhysMem& mem, model::StatsRegistry& stats);
  // The TD goes first: the TDP MMU's own teardown must not call its hooks.
  ~Impl() { tdp.set_external_spt(nullptr); }

  struct Vcpu {
    model::VcpuControl* ctl;
    MmuPage* root = nullptr;  // holds one tdp_mmu_root_count reference
  };

  // A leaf a fault installed under the read lock, visible to other vCPUs
  // from `visible_at` on: a fault whose walk started earlier read the entry
  // before it, and its cmpxchg against that snapshot fails.
  struct RecentInstall {
    Gfn gfn;            // first gfn the leaf maps
    u64 pages;          // 4K pages it maps
    unsigned vcpu;      // the installer (its own later faults see it at once)
    Cycles visible_at;  // simulated time of the SPTE write
  };

  const model::Timing timing;
  model::PhysMem& mem;
  MmuStats stats;
  const int root_level;        // ept.levels
  const bool ad_enabled;       // kvm_ad_enabled: mmu.ad and EPTP A/D
  const int max_huge_level;    // max_huge_page_level, capped by mmu.max_huge_level
  const bool eager_page_split;
  const bool pml;              // dirty logging by D bits (cpu_dirty_log_size)
  const Gfn max_gfn;           // exclusive
  const unsigned maxphyaddr;
  const bool slot_zap_all;     // mmu.slot_zap: KVM_X86_QUIRK_SLOT_ZAP_ALL
  // How far apart two vCPUs' local times may be: a quantum plus the longest
  // operation we expect to straddle it (100k cycles, a guess).
  const Cycles vcpu_clock_skew;
  const PamtCache pamt_cache;  // mmu.tdx_pamt_cache
  const bool sept_pamt_at_link;  // mmu.tdx_dpamt_series=v6
  const bool demote_pamt_lock;   // mmu.tdx_demote_lock=pamt_lock
  const std::unique_ptr<TdxMergePolicy> merge_policy;  // mmu.tdx_merge_policy
  // mmu.tdx_huge_pages; `off` once a TD finds its series needs a module
  // feature the module lacks (create_td, as tdx.c:__tdx_bringup).
  std::unique_ptr<TdxHugePages> huge_pages;
  const bool private_dirty_log;       // mmu.tdx_private_dirty_log = allow
  const bool pending_access_kills;    // mmu.tdx_pending_access = kill
  const u64 nx_recovery_ratio;        // mmu.nx_huge_pages_recovery_ratio
  TdxMergeStats merge_stats;
  FaultInjector inject;               // debug.inject (not for normal use)
  SplitPrivateRanges split_ranges;    // private 2M ranges split to 4K, oldest first
  u8 mmu_valid_gen = 0;        // toggled by fast zap; only shadow pages compare it
  u64 next_hva = 1ull << 40;   // where slots without userspace_addr are placed
  KvmOp op;                    // the operation in progress (mmu/kvm_op.h)
  Cycles latest = 0;           // the latest time an operation ended
  std::optional<Cycles> host_time;  // set_host_time: when the next ioctl starts
  Memslots slots;
  ZapHistory zap_history;
  TdpMmu tdp;
  MmuLock mmu_lock;
  std::vector<RecentInstall> recent_installs;
  static constexpr size_t kMaxRecentInstalls = 256;
  std::vector<Vcpu> vcpus;
  std::unique_ptr<TdxVm> td;  // KVM_X86_TDX_VM only
  MmuPage* mirror_root = nullptr;  // the TD's mirror root (mirror_root_hpa); one tdp_mmu_root_count reference
  MemAttributes attrs;        // private gfns (TD VMs)
  CheckLog* check_log = nullptr;  // --check: what changed since the checker looked (mmu/check_log.h)
  // kvm_gfn_direct_bits: the shared bit as a gfn bit (0 for a normal VM).
  Gfn gfn_direct_bits() const { return td ? gpa_to_gfn(Gpa{1} << td->shared_bit()) : Gfn{}; }

  // kvm_tdx.cc: tdx_handle_ept_violation, a TD vCPU's EPT-violation exit.
  void tdx_handle_ept_violation(Vcpu& v, KvmPageFault& fault);
  // A private fault (an access's or an ACCEPT's) through kvm_mmu_do_page_fault,
  // retried locally while it returns RET_PF_RETRY; the merge policies' hooks
  // around it. Returns the last try's RET_PF_*.
  int tdx_private_page_fault(Vcpu& v, KvmPageFault& fault);
  static constexpr int kPrivateFaultRetries = 16;
  // Runs `try_once(found_frozen)` (one whole map attempt, returning
  // RET_PF_*; it sets found_frozen when its cmpxchg found a FROZEN mirror
  // entry) again while it answers RET_PF_RETRY because of that or because a
  // hook's SEAMCALL was BUSY, up to kPrivateFaultRetries tries and never
  // once the VM is bugged; a BUSY retry counts in kvm.tdx.busy_retries (a
  // frozen one counted in kvm.tdx.frozen_retries when found). The kernel
  // loops in tdx_handle_ept_violation and kvm_tdp_mmu_map_private_pfn.
  template <class F>
  int retry_while_busy(F&& try_once) {
    for (int attempt = 1;; ++attempt) {
      bool found_frozen = false;
      const int r = try_once(found_frozen);
      if (r != RET_PF_RETRY || attempt == kPrivateFaultRetries || td->bugged()) return r;
      if (found_frozen) continue;
      if (!td->last_busy()) return r;
      ++td->busy_retries;
    }
  }
  // mmu.tdx_huge_pages=v3: a 4K ACCEPT's exit inhibits huge mappings of
  // the gfn's frames and splits a private huge leaf over it (write mmu_lock).
  void tdx_inhibit_and_split(Gpa gpa);
  // mmu.tdx_huge_pages=v5: tdx_handle_mismatched_accept (RFC v5 41/45)
  // for an ACCEPT at KVM level `accept_level`.
  void tdx_handle_mismatched_accept(Gpa gpa, int accept_level);
  // KVM_TDX_INIT_MEM_REGION of one page: the mirror maps it, the hook PAGE.ADDs.
  void tdx_premap_page(Gpa gpa, u64 tag, bool measure);
  // kvm_tdx_attributes.cc: the gfn of the private huge leaf holding `edge`
  // when the conversion of [start, end) covers it only in part.
  std::optional<Gfn> partly_converted_huge_leaf(Gfn edge, Gfn start, Gfn end);
  // Splits that leaf (DEMOTE), from the VM's caches topped up before mmu_lock.
  void split_private_huge_page(Gfn edge, Gfn start, Gfn end);
  u32 vcpu_index(const Vcpu& v) const { return u32(&v - vcpus.data()); }

  // kvm_vm_bugged / kvm_vm_dead: the VM runs no more. Every vCPU gets
  // KVM_REQ_VM_DEAD (its KVM_RUN fails) and the reason is kept for the
  // replay's report. Only the first reason counts.
  void kvm_vm_dead(const std::string& why);
  std::string dead_reason;

  // kvm_tdx_merge.cc: what every merge policy (mmu/impl/tdx_merge_*.cc) is
  // built from. All but merge_ready expect the write mmu_lock held, except
  // promote_range on policy C's fault path (read lock, range already TRACKed).
  void note_private_split(Gfn base);
  // Dirty logging starts on a TD slot: its private 2M leaves are split
  // (eager split with BLOCK, TRACK, DEMOTE), each a merge candidate.
  void split_private_slot(const Memslot& slot);
  // A conversion of [start, end) first UNBLOCKs the C-blocked ranges there.
  void unblock_split_ranges(Gfn start, Gfn end);
  // The slot of [start, end) is gone: its split ranges are no candidates.
  void forget_split_ranges(Gfn start, Gfn end);
  // What KVM checks before a PROMOTE: the huge leaf, or 0 when not ready.
  u64 merge_ready(Gfn base);
  // A range merge_ready accepted, with the huge leaf it returned.
  struct ReadyRange {
    Gfn base;
    u64 huge;
  };
  // BLOCK each range (all ready), one TRACK and kick, PROMOTE each, the
  // vCPUs re-enter. Returns the ranges merged.
  unsigned merge_ranges(const std::vector<ReadyRange>& ready);
  // PROMOTE of a BLOCKed and TRACKed ready range, the mirror then installs
  // `huge`; false when it stays split.
  bool promote_range(Gfn base, u64 huge);

  Cycles now() const { return op.now(); }
  // Start an operation on behalf of a vCPU (its local time) or of the VMM
  // (set_host_time's value, else after the last mmu_lock holder).
  void begin_vcpu_op(const model::VcpuControl& ctl);
  void begin_ioctl();
  MmuLockGuard lock(MmuLockMode mode) { return MmuLockGuard(mmu_lock, mode, op); }
  // lockdep_assert_held_write(&kvm->mmu_lock): a model bug, not bad input,
  // when the operation in progress does not hold the write side.
  void assert_mmu_lock_held_write(const char* fn) const {
    if (op.lock != MmuLockMode::Write)
      throw std::logic_error(std::string(fn) + " needs mmu_lock held for write (lockdep_assert_held_write)");
  }

  Cycles finish() {
    latest = std::max(latest, now());
    stats.cycles += op.spent;
    // A TDX_BUG_ON in a hook bugs the VM (kvm_vm_bugged).
    if (td && td->bugged() && dead_reason.empty()) kvm_vm_dead(td->bug_reason());
    return op.spent;
  }
  Vcpu& vcpu_of(const model::VcpuControl& ctl);
  Memslot& slot_by_id(u32 id) const;
  MmuPageRole root_role() const;
  ept::Eptp eptp_of(const MmuPage& root) const;
  bool use_pml() const { return pml && ad_enabled; }

  // kvm.cc
  void kvm_mmu_load(Vcpu& v);
  void kvm_mmu_free_obsolete_roots(Vcpu& v);
  void kvm_flush_remote_tlbs();
  void kvm_mmu_zap_all_fast();
  void check_slot_range(Gpa gpa, u64 size, const Memslot* except) const;
  // Throws KvmError unless mmu.tdx_private_dirty_log allows logging slot `id` of a TD.
  void check_private_dirty_log(u32 id) const;

  // memslot_flush.cc: before a slot is deleted or moved.
  void kvm_arch_flush_shadow_memslot(const Memslot& slot);
  void kvm_mmu_zap_memslot(const Memslot& slot);

  // page_fault.cc: one path for every fault; a private one maps the mirror root.
  int kvm_mmu_do_page_fault(Vcpu& v, KvmPageFault& fault);
  int fast_page_fault(Vcpu& v, KvmPageFault& fault);
  // Fills the caches the fault's hooks take from under mmu_lock.
  void mmu_topup_memory_caches(const Vcpu& v, KvmPageFault& fault);
  // kvm_tdp_mmu_page_fault: under the read mmu_lock, on the fault's root.
  int kvm_tdp_mmu_page_fault(Vcpu& v, KvmPageFault& fault);
  // Under the read lock: another vCPU's install of this gfn was not yet
  // visible when this fault's walk read the entry (the cmpxchg fails; a
  // private fault's finds the mirror entry FROZEN_SPTE: fault.found_frozen).
  bool lost_cmpxchg(KvmPageFault& fault);
  // kvm_tdp_mmu_map on `root`, remembering the install for racing faults, then the flush.
  int map_and_record(Vcpu& v, MmuPage& root, KvmPageFault& fault);
  int kvm_mmu_faultin_pfn(KvmPageFault& fault);
  void kvm_mmu_hugepage_adjust(KvmPageFault& fault);

  // mmu_notifier.cc: the primary MMU's invalidations as KVM sees them
  // (virt/kvm/kvm_main.c: kvm_mmu_invalidate_begin, kvm_mmu_invalidate_range_add,
  // kvm_mmu_invalidate_end). A fault snapshots mmu_invalidate_seq before it
  // faults its pfn in and retries under mmu_lock if an invalidation of its
  // gfn ran or is running since (mmu_invalidate_retry_gfn).
  static constexpr Gfn kInvalidGfn = ~Gfn{0};
  u64 mmu_invalidate_seq = 0;
  u64 mmu_invalidate_in_progress = 0;
  Gfn mmu_invalidate_range_start = kInvalidGfn, mmu_invalidate_range_end = kInvalidGfn;
  void kvm_mmu_invalidate_begin(Gfn start, Gfn end);  // begin + range_add
  void kvm_mmu_invalidate_end();
  bool mmu_invalidate_retry_gfn(u64 mmu_seq, Gfn gfn) const;
  // debug.inject=stale-snapshot / migrate-race: the host migrates the
  // fault's page between its fault-in and its map (the only way the model
  // interleaves an invalidation there: faults run whole).
  void host_migrate_during_fault(const KvmPageFault& fault);
  // Rule mmu-notifier, checked at each install (invariant_rules.h); the
  // lines wait here for the next check_invariants.
  void check_install(const KvmPageFault& fault);
  std::vector<std::string> install_violations;

  // dirty_log.cc
  void kvm_mmu_slot_apply_flags(Memslot& slot, u32 old_flags);
  void enable_log_dirty_pt_masked(Memslot& slot, u64 gfn_offset, u64 mask);

  // invariants.cc
  std::vector<std::string> check_invariants() const;
  std::vector<std::string> check_invariants_incremental(const CheckLog& log) const;
  void check_vcpu_roots(std::vector<std::string>& out) const;
  // Rule internal: tdp.internal_errors(), all or those not reported yet.
  void check_internal(std::vector<std::string>& out, bool all) const;
  // The log's ranges in both gfn spaces of a TD, sorted and merged: [lo, hi).
  std::vector<std::pair<Gfn, Gfn>> checked_ranges(const CheckLog& log) const;
  // invariants_tdx.cc: rules 3, 9, 15-19, 22 and the TD content and PAMT rules.
  void check_tdx_invariants(std::vector<std::string>& out) const;
  void check_tdx_invariants_incremental(std::vector<std::string>& out, const std::vector<std::pair<Gfn, Gfn>>& ranges,
                                        const std::vector<u64>& pamt_regions) const;
  // The first lines of tdp.mirror_bugs(), td->hook_violations() and
  // td->bug_reports() an incremental check has not reported yet.
  mutable size_t checked_mirror_bugs = 0, checked_hook_violations = 0, checked_bug_reports = 0,
      checked_internal_errors = 0;
};

}  // namespace septsim::mmu
