// KVM's VM and vCPU statistics (struct kvm_vm_stat and kvm_vcpu_stat, arch/x86/include/asm/kvm_host.h) as registry counters. vCPU
// stats are summed over vCPUs.
#pragma once
#include "mmu/sp_metadata.h"
#include "model/stats.h"

namespace septsim::mmu {

struct MmuStats {
  explicit MmuStats(model::StatsRegistry& r)
      : pages{nullptr, &r.gauge("kvm.pages_4k", "present 4K leaf SPTEs over all roots"),
              &r.gauge("kvm.pages_2m", "present 2M leaf SPTEs over all roots"),
              &r.gauge("kvm.pages_1g", "present 1G leaf SPTEs over all roots")},
        mmu_pages(r.gauge("kvm.mmu_pages", "TDP MMU page-table pages in use, roots included")),
        pf_taken(r.counter("kvm.pf_taken", "EPT violations handled")),
        pf_fixed(r.counter("kvm.pf_fixed", "faults that installed or fixed an SPTE")),
        pf_spurious(r.counter("kvm.pf_spurious", "faults whose SPTE already allowed the access")),
        pf_emulate(r.counter("kvm.pf_emulate", "faults sent to emulation (MMIO, read-only slot writes)")),
        pf_fast(r.counter("kvm.pf_fast", "faults resolved by fast_page_fault without mmu_lock")),
        remote_tlb_flush(r.counter("kvm.remote_tlb_flush", "kvm_flush_remote_tlbs calls")),
        remote_tlb_flush_ipis(r.counter("kvm.remote_tlb_flush_ipis", "flush IPIs sent to other running vCPUs")),
        pf_retry(r.counter("kvm.pf_retry", "faults that ended in RET_PF_RETRY (lost a cmpxchg, stale root, TDX BUSY)")),
        mmu_zap_all_fast(r.counter("kvm.mmu_zap_all_fast", "kvm_mmu_zap_all_fast calls")),
        split_huge_page(r.counter("kvm.split_huge_page", "huge leaves split in place")),
        recover_huge_page(r.counter("kvm.recover_huge_page", "tables replaced in place by a huge leaf")),
        roots_allocated(r.counter("kvm.roots_allocated", "TDP MMU roots allocated")),
        dirty_pages_reported(r.counter("kvm.dirty_pages_reported", "pages returned by KVM_GET_DIRTY_LOG")),
        cycles(r.counter("kvm.cycles", "host cycles spent in KVM (faults, ioctls, requests)")),
        tdx_seamcalls(r.counter("kvm.tdx.seamcalls", "SEAMCALLs and TDCALLs made for the VM's TD")),
        tdx_busy_retries(r.counter("kvm.tdx.busy_retries", "SEAMCALLs retried after TDX_OPERAND_BUSY")),
        tdx_frozen_retries(r.counter("kvm.tdx.frozen_retries",
                                     "private faults retried because a racing vCPU's hook held the mirror entry "
                                     "FROZEN_SPTE (no SEAMCALL made)")),
        tdx_memory_faults(r.counter("kvm.tdx.memory_fault_exits",
                                    "KVM_EXIT_MEMORY_FAULT: fault private-ness and attribute disagree, or no backing")),
        tdx_kicks(r.counter("kvm.tdx.kicks", "every-vCPU kicks after TDH.MEM.TRACK")),
        tdx_pending_access(r.counter("kvm.tdx.pending_access_exits",
                                     "EPT violations of a guest access (not ACCEPT) to a PENDING private page: KVM "
                                     "kills such a TD ('Guest access before accepting', kvm_vm_dead)")),
        tdx_removed(r.counter("kvm.tdx.private_removed", "private pages removed (BLOCK, TRACK, REMOVE, WBINVD)")),
        tdx_pamt_add(r.counter("kvm.tdx.pamt_add", "TDH.PHYMEM.PAMT.ADD by the Dynamic PAMT refcount (0 -> 1)")),
        tdx_pamt_remove(r.counter("kvm.tdx.pamt_remove", "TDH.PHYMEM.PAMT.REMOVE by the Dynamic PAMT refcount (1 -> 0)")),
        tdx_pamt_cache_topups(r.counter("kvm.tdx.pamt_cache_topups", "PAMT page-pair cache top-ups before mmu_lock")),
        tdx_pamt_cache_pages(r.gauge("kvm.tdx.pamt_cache_pages", "pages held in the PAMT page-pair caches")),
        tdx_kmem_cache_pages(r.gauge("kvm.tdx.kmem_cache_pages",
                                     "free S-EPT pages in the kmem_cache, each keeping its Dynamic PAMT pair "
                                     "(mmu.tdx_pamt_cache=kmem-cache)")),
        tdx_accept_interrupted(r.counter("kvm.tdx.accept_interrupted",
                                         "guest ACCEPTs stopped by a pending host interrupt and repeated after "
                                         "re-entry (trace field interrupt on accept)")),
        tdx_accept_splits(r.counter("kvm.tdx.accept_splits",
                                    "private 2M leaves split because a 4K ACCEPT exited on them "
                                    "(mmu.tdx_huge_pages=v3 or v5)")),
        tdx_busy_kicks(r.counter("kvm.tdx.busy_kicks",
                                 "zap-side SEAMCALLs (BLOCK, TRACK, REMOVE) that found an operand BUSY: KVM kicked "
                                 "every vCPU out, blocked re-entry and retried once (tdh_do_no_vcpus)")),
        sp_meta(r) {}

  void update_page_stats(int level, long delta) {
    *pages[level] += u64(delta);
    sp_meta.set_mapped_bytes((*pages[1] << 12) + (*pages[2] << 21) + (*pages[3] << 30));
  }
  void update_mmu_pages(long delta) {
    mmu_pages += u64(delta);
    sp_meta.set_sps(mmu_pages);
  }

  u64* pages[4];  // indexed by PG_LEVEL_4K .. PG_LEVEL_1G
  u64& mmu_pages;
  u64& pf_taken;
  u64& pf_fixed;
  u64& pf_spurious;
  u64& pf_emulate;
  u64& pf_fast;
  u64& remote_tlb_flush;
  u64& remote_tlb_flush_ipis;
  u64& pf_retry;
  u64& mmu_zap_all_fast;
  u64& split_huge_page;
  u64& recover_huge_page;
  u64& roots_allocated;
  u64& dirty_pages_reported;
  u64& cycles;
  u64& tdx_seamcalls;
  u64& tdx_busy_retries;
  u64& tdx_frozen_retries;
  u64& tdx_memory_faults;
  u64& tdx_kicks;
  u64& tdx_pending_access;
  u64& tdx_removed;
  u64& tdx_pamt_add;
  u64& tdx_pamt_remove;
  u64& tdx_pamt_cache_topups;
  u64& tdx_pamt_cache_pages;
  u64& tdx_kmem_cache_pages;
  u64& tdx_accept_interrupted;
  u64& tdx_accept_splits;
  u64& tdx_busy_kicks;
  SpMetadataStats sp_meta;
};

}  // namespace septsim::mmu
