#include "model/config.h"

#include <algorithm>
#include <fstream>

namespace septsim::model {

namespace {

using T = Config::Type;

// Every key the model knows. Defaults are the skylake-sp preset.
const std::vector<Config::Param> kParams = {
    {"sim.quantum_ns", T::Int, "1000", "tlm_quantumkeeper global quantum in ns; 0 = strict ordering"},
    {"sim.seed", T::Int, "1", "seed for every random choice (random replacement)"},
    {"check.full_sweep_interval", T::Int, "0",
     "--check: between full sweeps each check looks only at what changed (docs/invariants.md); a full sweep of every "
     "rule over the whole state also runs every N-th check (0 = only at the end and after events the change log "
     "cannot describe)"},
    {"cpu.freq_mhz", T::Int, "2400", "core clock used to turn cycles into time (guess: a typical SKX SKU)"},
    {"host.mem_gib", T::Int, "1024", "host-physical memory the frame allocator may hand out"},
    {"host.maxphyaddr", T::Int, "46", "physical-address width; higher EPT address bits are reserved (SKX: 46)"},
    {"host.packages", T::Int, "1",
     "CPU packages (sockets): TDH.MNG.KEY.CONFIG once per package, TDH.PHYMEM.CACHE.WB on each before KEY.FREEID "
     "(tdh_mng_key_config.c, tdh_phymem_cache_wb.c; 1..64; KVM's teardown writes back on one CPU of each, "
     "tdx_mmu_release_hkid)"},
    {"host.lps_per_package", T::Int, "64",
     "logical processors per package: LP n (trace field lp) is on package (n / this) mod host.packages"},
    {"ept.levels", T::Int, "4", "EPT page-walk length: 4 or 5"},
    {"ept.ad", T::Bool, "true", "EPTP bit 6: EPT accessed/dirty flags enabled"},
    {"guest.levels", T::Int, "4", "default guest paging levels for GVA accesses: 4 or 5"},
    // TLBs: Intel Optimization Manual, Skylake table 2-15.
    {"tlb.l1d.4k.entries", T::Int, "64", "L1 DTLB 4K entries (SKX: 64)"},
    {"tlb.l1d.4k.ways", T::Int, "4", "L1 DTLB 4K ways (SKX: 4)"},
    {"tlb.l1d.2m.entries", T::Int, "32", "L1 DTLB 2M entries (SKX: 32)"},
    {"tlb.l1d.2m.ways", T::Int, "4", "L1 DTLB 2M ways (SKX: 4)"},
    {"tlb.l1d.1g.entries", T::Int, "4", "L1 DTLB 1G entries (SKX: 4)"},
    {"tlb.l1d.1g.ways", T::Int, "4", "L1 DTLB 1G ways (SKX: 4)"},
    {"tlb.stlb.entries", T::Int, "1536", "STLB entries shared by 4K and 2M (SKX: 1536)"},
    {"tlb.stlb.ways", T::Int, "12", "STLB ways (SKX: 12)"},
    {"tlb.stlb_1g.entries", T::Int, "16", "STLB 1G entries (SKX: 16)"},
    {"tlb.stlb_1g.ways", T::Int, "4", "STLB 1G ways (SKX: 4)"},
    {"tlb.replacement", T::String, "lru", "TLB replacement: lru, plru (tree-PLRU) or random (seeded by sim.seed)"},
    // Paging-structure caches: Intel does not disclose the sizes; ChampSim-like guesses.
    {"pwc.guest.pml5.entries", T::Int, "2", "guest PML5E cache entries (guess)"},
    {"pwc.guest.pml4.entries", T::Int, "4", "guest PML4E cache entries (guess)"},
    {"pwc.guest.pdpt.entries", T::Int, "8", "guest PDPTE cache entries (guess)"},
    {"pwc.guest.pd.entries", T::Int, "32", "guest PDE cache entries (guess)"},
    {"pwc.ept.pml5.entries", T::Int, "2", "EPT PML5E cache entries for guest-physical translations (guess)"},
    {"pwc.ept.pml4.entries", T::Int, "4", "EPT PML4E cache entries (guess)"},
    {"pwc.ept.pdpt.entries", T::Int, "8", "EPT PDPTE cache entries (guess)"},
    {"pwc.ept.pd.entries", T::Int, "32", "EPT PDE cache entries (guess)"},
    {"pwc.ways", T::Int, "4", "ways of every paging-structure cache (fully associative when >= entries)"},
    {"pwc.replacement", T::String, "lru", "paging-structure cache replacement: lru, plru or random"},
    // Latencies in cycles; each description says where it comes from.
    {"latency.l1_tlb_hit", T::Int, "1", "L1 DTLB hit (guess: folded into the load pipeline)"},
    {"latency.stlb_hit", T::Int, "9", "STLB hit after an L1 miss (ChampSim 8, Haswell ~12: guess in between)"},
    {"latency.pwc_hit", T::Int, "1", "paging-structure cache lookup (guess)"},
    {"latency.walk_ref", T::Int, "20", "one paging-structure memory reference (Haswell cache-resident walk ~20: guess)"},
    {"latency.mem_access", T::Int, "4", "the data access itself after translation (guess: L1 hit)"},
    {"latency.vmexit", T::Int, "600", "VM exit to the host (guess)"},
    {"latency.vmentry", T::Int, "600", "VM entry back to the guest (guess)"},
    {"latency.fault_handler", T::Int, "1500", "KVM EPT-violation handler software path, excluding table walks (guess)"},
    {"latency.spte_write", T::Int, "30", "one SPTE write or cmpxchg by the MMU (guess)"},
    {"latency.page_alloc", T::Int, "200", "allocating a page-table or data page (guess)"},
    {"latency.tlb_flush", T::Int, "2000", "kvm_flush_remote_tlbs: the initiator's own INVEPT and bookkeeping (guess)"},
    {"latency.ipi", T::Int, "3000",
     "one IPI to a running vCPU, sent and acknowledged (the target leaves the guest), paid by the sender (guess: ~1.2 us)"},
    {"latency.invalidation", T::Int, "200", "INVEPT/INVVPID/INVLPG/INVPCID executed by the CPU (guess)"},
    {"latency.vm_ioctl", T::Int, "5000", "a VM ioctl (memslot, dirty log) outside the guest (guess)"},
    // Memory hierarchy behind the walker and the data path (model/cache/, docs/design.md "Memory
    // hierarchy"). Geometry and latencies: Intel 64 and IA-32 Architectures Optimization Reference
    // Manual ("the manual" below), Skylake Server microarchitecture section, cache parameters table.
    {"memory.model", T::String, "hierarchy",
     "hierarchy (both presets): per-vCPU L1I, L1D and L2, a shared LLC and DRAM (model/cache/) decide the cost of "
     "every paging-structure reference, data access and instruction fetch; flat (the model before issue 13): every "
     "reference costs latency.walk_ref and every data access or fetch latency.mem_access"},
    {"memory.replacement", T::String, "lru", "replacement in every cache level: lru or random (seeded by sim.seed); "
     "Intel does not document its policies (guess)"},
    {"memory.l1i.sets", T::Int, "64", "L1I sets: 32 KiB, 8-way, 64-byte lines (the manual, Skylake Server; Golden Cove: the same 32 KiB, 8-way)"},
    {"memory.l1i.ways", T::Int, "8", "L1I ways (the manual, Skylake Server and Golden Cove: 8)"},
    {"memory.l1d.sets", T::Int, "64", "L1D sets: 32 KiB, 8-way, 64-byte lines (the manual, Skylake Server); sapphire-rapids: 48 KiB, 12-way (the manual, Golden Cove)"},
    {"memory.l1d.ways", T::Int, "8", "L1D ways (the manual, Skylake Server: 8; Golden Cove: 12)"},
    {"memory.l2.sets", T::Int, "1024", "L2 sets: 1 MiB, 16-way (the manual, Skylake Server); sapphire-rapids: 2 MiB (Intel Xeon 4th generation product brief), 16-way (guess)"},
    {"memory.l2.ways", T::Int, "16", "L2 ways (the manual, Skylake Server: 16; sapphire-rapids: 16, guess)"},
    {"memory.llc.sets", T::Int, "57344",
     "shared LLC sets: 1.375 MiB per core, 11-way (the manual, Skylake Server) x 28 cores of a Xeon Platinum 8180 "
     "= 38.5 MiB; sapphire-rapids: 1.875 MiB per core x 56 cores of a Xeon Platinum 8480+ = 105 MiB (Intel ARK), "
     "15-way (guess); the whole LLC is the VM's (other tenants are not modelled)"},
    {"memory.llc.ways", T::Int, "11", "LLC ways (the manual, Skylake Server: 11; sapphire-rapids: 15, guess)"},
    {"memory.dram.banks", T::Int, "32", "DRAM banks that keep a row open, over all channels and ranks (guess for both presets; DDR5 devices have 32)"},
    {"memory.dram.row_bytes", T::Int, "8192",
     "bytes of one DRAM row of one bank: DDR4 x8 devices have 1 KiB pages, 8 per rank (JEDEC JESD79-4); "
     "sapphire-rapids (DDR5): the same 8 KiB (guess)"},
    {"latency.l1d", T::Int, "4", "load-to-use latency of an L1D hit: 4-5 cycles (the manual, Skylake Server; 4 for "
     "the simple base+index addresses of a walk); sapphire-rapids: 5 (the manual, Golden Cove)"},
    {"latency.l1i", T::Int, "4", "cycles of an instruction fetch the L1I serves: the manual gives no fetch-to-use latency; "
     "4 is latency.mem_access, what every fetch cost before the L1I (guess); an L1I miss costs what the L2, LLC or DRAM say"},
    {"latency.l2", T::Int, "14", "load-to-use latency of an L2 hit: 14 cycles (the manual, Skylake Server); sapphire-rapids: 16 (guess: "
     "the manual gives 15 for client Golden Cove)"},
    {"latency.llc", T::Int, "60", "load-to-use latency of an LLC hit: the manual gives a slice-dependent range of "
     "about 50-70 cycles for Skylake Server; 60 is its middle (guess within the range); sapphire-rapids: 66 "
     "(guess: public microbenchmark reports near 33 ns, at 2 GHz)"},
    {"latency.dram_row_miss", T::Int, "216",
     "load-to-use latency of DRAM when the bank opens a row: 90 ns at 2.4 GHz (guess: public Intel Memory Latency "
     "Checker reports of idle local latency on Skylake-SP are about 80-90 ns); sapphire-rapids: 220 (guess: about "
     "110 ns at 2 GHz)"},
    {"latency.dram_row_hit", T::Int, "148",
     "load-to-use latency of DRAM from an open row: the row miss minus tRP + tRCD of DDR4-2666 (19 + 19 clocks at "
     "1333 MHz = 28.5 ns = 68 cycles; JEDEC JESD79-4 speed bins): derived; sapphire-rapids: 153 = 220 minus "
     "tRP + tRCD of DDR5-4800 (40 + 40 clocks at 2400 MHz = 33.3 ns = 67 cycles; JESD79-5)"},
    {"tlb.l1i.enabled", T::Bool, "false",
     "instruction fetches use an L1 ITLB of their own (sharing the STLB); false: fetches share the L1 DTLBs "
     "(the model before issue 13)"},
    {"tlb.l1i.4k.entries", T::Int, "128", "L1 ITLB 4K entries (the manual, Skylake: 128, 8-way; Golden Cove: 256)"},
    {"tlb.l1i.4k.ways", T::Int, "8", "L1 ITLB 4K ways (the manual, Skylake: 8)"},
    {"tlb.l1i.2m.entries", T::Int, "8",
     "L1 ITLB 2M entries (the manual, Skylake: 8 per thread, fully associative; Golden Cove: 32); 1G fetch "
     "translations live in the "
     "STLB only"},
    {"guest.native", T::Bool, "false",
     "replay guest-linear accesses natively: the guest page tables are walked 1D at their host frames (no EPT "
     "references, no EPT paging-structure caches), so two runs of one trace give the virtualization tax; EPT "
     "violations still map the backing memory"},
    // The TDX module (seam/). Per-leaf SEAMCALL latencies: published figures
    // for DEMOTE, MR.EXTEND and (inferred) reclaim; end-to-end measurements turned into
    // per-leaf values for the TD transitions, the removal sequence and AUG +
    // ACCEPT, and a floor for the short reads (docs/design.md "SEAMCALL
    // latencies"); the rest are guesses.
    {"seam.dynamic_pamt", T::Bool, "false", "TDH.SYS.CONFIG enables Dynamic PAMT (the Dynamic PAMT series)"},
    {"seam.enhance_demote_interruptibility", T::Bool, "false",
     "TDX_FEATURES0 bit 51, ENHANCE_DEMOTE_INTERRUPTIBILITY (a module newer than the TDX_1.5.01 source this model "
     "follows): TDH.MEM.PAGE.DEMOTE of a basic TD never returns TDX_INTERRUPTED_RESTARTABLE. The TDX huge-page "
     "series RFC v5 (mmu.tdx_huge_pages=v5) maps huge only with it (tdx.c:__tdx_bringup)"},
    {"seam.tdmr_gib", T::Int, "0", "GiB of host memory covered by TDMRs (PAMT is sized for it); 0 = host.mem_gib"},
    {"seam.tdcs_pages", T::Int, "4", "TDCS pages per TD added by TDH.MNG.ADDCX (page 3 is the SEPT root; count is a guess)"},
    {"seam.tdcx_per_vcpu", T::Int, "3", "TDCX pages per vCPU added by TDH.VP.ADDCX (guess)"},
    {"latency.seam.vp_enter", T::Int, "3850",
     "TDH.VP.ENTER to guest entry: derived, an upper bound (docs/design.md, SEAMCALL latencies): a TD CPUID the VMM answers costs 3205 ns more "
     "than one the TDX module answers (TUM-DSE/CVM_eval benchmarks/vmexit/README.md, a TD on SPR); half of it at 2.4 GHz"},
    {"latency.seam.td_exit", T::Int, "3850",
     "TD exit back to the VMM: derived, an upper bound, the other half of the 3205 ns of latency.seam.vp_enter (docs/design.md, SEAMCALL latencies)"},
    {"latency.seam.mng_create", T::Int, "10000", "TDH.MNG.CREATE (guess)"},
    {"latency.seam.mng_key_config", T::Int, "20000", "TDH.MNG.KEY.CONFIG, one package (guess)"},
    {"latency.seam.mng_addcx", T::Int, "5000", "TDH.MNG.ADDCX (guess)"},
    {"latency.seam.mng_init", T::Int, "50000", "TDH.MNG.INIT (guess)"},
    {"latency.seam.vp_create", T::Int, "5000", "TDH.VP.CREATE (guess)"},
    {"latency.seam.vp_addcx", T::Int, "5000", "TDH.VP.ADDCX (guess)"},
    {"latency.seam.vp_init", T::Int, "10000", "TDH.VP.INIT (guess)"},
    {"latency.seam.vp_flush", T::Int, "5000", "TDH.VP.FLUSH (guess)"},
    {"latency.seam.mng_vpflushdone", T::Int, "2000", "TDH.MNG.VPFLUSHDONE (guess)"},
    {"latency.seam.mng_key_freeid", T::Int, "2000", "TDH.MNG.KEY.FREEID (guess)"},
    {"latency.seam.mr_extend", T::Int, "150000",
     "TDH.MR.EXTEND, 256 bytes: derived, approximate (docs/design.md, SEAMCALL latencies): ~1 ms to measure a 4 KiB page, "
     "16 calls (Sean Christopherson, kvm@ 2025-10-30, \"KVM: TDX: ADD pages to the TD image while populating mirror EPT "
     "entries\"), 62.5 us per call at 2.4 GHz"},
    {"latency.seam.mr_finalize", T::Int, "10000", "TDH.MR.FINALIZE (guess)"},
    {"latency.seam.mem_page_add", T::Int, "12000", "TDH.MEM.PAGE.ADD: copy 4 KiB + MRTD update (guess)"},
    {"latency.seam.mem_sept_add", T::Int, "4000", "TDH.MEM.SEPT.ADD: init a 4 KiB SEPT page (guess)"},
    {"latency.seam.mem_page_aug", T::Int, "7700",
     "TDH.MEM.PAGE.AUG: derived, an upper bound (docs/design.md, SEAMCALL latencies): Intel's LKVS tdx_mem_test.sh expects one vCPU to accept "
     "8 GiB lazily in 24 s, 11.4 us per 4 KiB; less the TD exit, VP.ENTER and KVM's fault handler, split 3:4 "
     "with the 4K ACCEPT (the split is a guess)"},
    {"latency.seam.mem_range_block", T::Int, "9150",
     "TDH.MEM.RANGE.BLOCK: derived (docs/design.md, SEAMCALL latencies): 15.3 us per 4 KiB page for BLOCK + TRACK + REMOVE + PAGE.WBINVD "
     "(KVM_TDX_TERMINATE_VM patch, 4 vCPUs, 18 GB: 72 s) split 2:1:3:2 (the split is a guess), at 2.4 GHz"},
    {"latency.seam.mem_range_unblock", T::Int, "2000", "TDH.MEM.RANGE.UNBLOCK (guess)"},
    {"latency.seam.mem_track", T::Int, "4580",
     "TDH.MEM.TRACK: derived, 1 part of the 2:1:3:2 split of latency.seam.mem_range_block's 15.3 us (docs/design.md, SEAMCALL latencies)"},
    {"latency.seam.mem_page_remove", T::Int, "13730",
     "TDH.MEM.PAGE.REMOVE: derived, 3 parts of the 2:1:3:2 split of latency.seam.mem_range_block's 15.3 us (docs/design.md, SEAMCALL latencies)"},
    {"latency.seam.mem_sept_remove", T::Int, "3000", "TDH.MEM.SEPT.REMOVE (guess)"},
    {"latency.seam.mem_page_promote", T::Int, "20000", "TDH.MEM.PAGE.PROMOTE: lock and compare 512 entries (guess)"},
    {"latency.seam.mem_page_demote", T::Int, "24000", "TDH.MEM.PAGE.DEMOTE: ~10 us per call on SPR (Yan Zhao, kvm@ 2025-07-01) at 2.4 GHz"},
    {"latency.seam.mem_page_relocate", T::Int, "8000", "TDH.MEM.PAGE.RELOCATE: copy 4 KiB (guess)"},
    {"latency.seam.mem_sept_rd", T::Int, "1550",
     "TDH.MEM.SEPT.RD: a lower bound, one trip into the TDX module and back: a TD CPUID the module answers, 646 ns "
     "(TUM-DSE/CVM_eval benchmarks/vmexit/README.md) at 2.4 GHz (docs/design.md, SEAMCALL latencies)"},
    {"latency.seam.phymem_page_rdmd", T::Int, "1550",
     "TDH.PHYMEM.PAGE.RDMD: a lower bound, one trip into the TDX module and back (as latency.seam.mem_sept_rd)"},
    {"latency.seam.phymem_page_reclaim", T::Int, "11000", "TDH.PHYMEM.PAGE.RECLAIM: ~4.5-5.1 us per page for reclaim + clear, inferred from the KVM_TDX_TERMINATE_VM numbers"},
    {"latency.seam.phymem_page_wbinvd", T::Int, "9150",
     "TDH.PHYMEM.PAGE.WBINVD, one 4 KiB page: derived, 2 parts of the 2:1:3:2 split of "
     "latency.seam.mem_range_block's 15.3 us (docs/design.md, SEAMCALL latencies)"},
    {"latency.seam.phymem_cache_wb", T::Int, "100000", "TDH.PHYMEM.CACHE.WB, one package (guess)"},
    {"latency.seam.phymem_pamt_add", T::Int, "3000", "TDH.PHYMEM.PAMT.ADD: zero two pages (guess, under a 5.3 us bound: docs/design.md)"},
    {"latency.seam.phymem_pamt_remove", T::Int, "2000", "TDH.PHYMEM.PAMT.REMOVE (guess, under a 5.3 us bound: docs/design.md)"},
    {"latency.seam.mem_page_accept_4k", T::Int, "10300",
     "TDG.MEM.PAGE.ACCEPT 4K: derived, an upper bound, 4 parts of the 3:4 split in latency.seam.mem_page_aug (docs/design.md, SEAMCALL latencies)"},
    {"latency.seam.mem_page_accept_2m", T::Int, "400000", "TDG.MEM.PAGE.ACCEPT 2M: zero 2 MiB (guess)"},
    {"latency.seam.other", T::Int, "2000", "any other leaf (guess)"},
    // MMU policy, named as KVM names the module parameters.
    {"mmu.eager_page_split", T::Bool, "true", "kvm.eager_page_split: split huge pages when dirty logging starts"},
    {"mmu.max_huge_level", T::Int, "3", "largest EPT leaf the MMU creates: 1 = 4K, 2 = 2M, 3 = 1G"},
    {"mmu.pml", T::Bool, "false", "page-modification logging: dirty logging clears D instead of write-protecting"},
    {"mmu.ad", T::Bool, "true", "KVM uses EPT A/D bits (!ad_disabled)"},
    {"mmu.sp_layout", T::String, "external-in-union",
     "struct kvm_mmu_page layout counted by kvm.sp_meta.*: external-in-union (6.14+, 184 B, docs/studies.md 4), "
     "external-separate, shadow-tdp-union or tdp-only (docs/studies.md 4)"},
    {"mmu.prev_roots", T::Int, "3",
     "KVM_MMU_NUM_PREV_ROOTS: cached roots per vCPU besides the current one (upstream: 3; 0..16)"},
    {"mmu.nested.invept", T::String, "free",
     "L1's INVEPT on cached shadow-EPT roots: free (upstream handle_invept) or keep-sync (keep them, sync before "
     "reuse: Lai Jiangshan's 2021 RFC)"},
    {"mmu.nested.max_shadow_pages", T::Int, "0",
     "n_max_mmu_pages for shadow-EPT pages: a root without references stays in mmu_page_hash until the pages in "
     "use exceed this, oldest unused root recycled first; 0 = it goes with its last reference"},
    {"latency.shadow_sync_page", T::Int, "5000",
     "kvm_sync_page: re-check one unsync shadow page's 512 SPTEs against the guest's table (guess)"},
    {"mmu.slot_zap", T::String, "zap-all-fast",
     "memslot DELETE/MOVE: zap-all-fast (KVM_X86_QUIRK_SLOT_ZAP_ALL: mmu_valid_gen toggle, every root role.invalid) "
     "or zap-memslot (only the slot's leaves, kvm_mmu_zap_memslot; a TD always zaps only the slot)"},
    {"mmu.tdx_pamt_cache", T::String, "vcpu",
     "Dynamic PAMT pages for the hooks under mmu_lock: vcpu (a page-pair cache per vCPU, the Dynamic PAMT series' "
     "way), vm (one per VM) or kmem-cache (Kai Huang's review of the May 2025 Dynamic PAMT RFC: S-EPT pages from a "
     "kmem_cache whose constructor installs their PAMT, kept while the pages are free, even with no TD; guest pages "
     "get theirs in guest_memfd's prepare hook)"},
    {"mmu.tdx_dpamt_series", T::String, "v6",
     "which Dynamic PAMT series gives S-EPT pages their PAMT pair: v6 (PATCH v6, Rick Edgecombe, 2026-05-25, as "
     "applied to tip x86/tdx: tdx_sept_map_nonleaf_spte gets the pair from the vCPU's cache just before SEPT.ADD; "
     "the cache holds 2 x PT64_ROOT_MAX_LEVEL pages) or rfc-v5 (RFC v5, 2026-01-28: the pair is installed when the "
     "page is allocated into the S-EPT page cache; the pair cache holds 2 x the TD's EPT levels). Guest and "
     "control pages are the same in both; mmu.tdx_pamt_cache=kmem-cache overrides both for S-EPT pages"},
    {"mmu.tdx_merge_policy", T::String, "none",
     "merge of split private 2M pages (seed 004, docs/studies.md 1): none (upstream), A (NX-recovery scan on "
     "nx_recovery_tick), B (check on a TD EPT violation) or C (BLOCK when dirty logging stops, PROMOTE on the next "
     "violation)"},
    {"mmu.nx_huge_pages_recovery_ratio", T::Int, "60",
     "kvm.nx_huge_pages_recovery_ratio: each nx_recovery_tick visits ceil(n / ratio) of the n split ranges; 0 = none"},
    // TDX behaviour beyond the merged kernel (docs/kvm-behaviour.md). The default of each is what the kernel
    // septsim models does: arch/x86/kvm/vmx/tdx.c as of the kvm-x86 tree at commit 09c6f74e.
    {"mmu.tdx_huge_pages", T::String, "off",
     "huge private pages of a TD: off (the kernel septsim follows, kvm-x86 tree 09c6f74ecb86, docs/kvm-behaviour.md: "
     "tdx_gmem_max_mapping_level maps private memory 4K), rfc-v1 "
     "(TDX huge-page RFC v1, kvm list, April 2025: a 2M ACCEPT that faults maps 2M; partial conversions split by "
     "DEMOTE) or v3 (TDX huge-page series PATCH v3, 2026-01-06: any fault maps 2M unless "
     "KVM_LPAGE_GUEST_INHIBIT_FLAG is set; a 4K ACCEPT's exit sets it and splits a 2M leaf under the write "
     "mmu_lock; removing a 2M page is 512 WBINVDs; a BUSY DEMOTE kicks the vCPUs and retries once) or v5 (RFC v5 of 2026-01-28, huge-page patches 26-45: v3's "
     "SEAMCALLs; the ACCEPT exit takes the write mmu_lock unless the frame is already inhibited, splits, then sets "
     "the flag; maps huge only with seam.enhance_demote_interruptibility, else 4K as off)"},
    {"mmu.tdx_demote_lock", T::String, "none",
     "the host lock a 2M TDH.MEM.PAGE.DEMOTE of a Dynamic PAMT TD holds: none (RFC v5, 30/45, as posted) or "
     "pamt_lock (Yan Zhao's review of 30/45, kvm@ 2026-06-11, agreed for the next posting by Rick Edgecombe on "
     "2026-06-29: DEMOTE inside the global pamt_lock, so it never runs beside another CPU's PAMT.ADD/REMOVE, which "
     "could make one of them TDX_OPERAND_BUSY; docs/tdx-series.md)"},
    {"mmu.tdx_pending_access", T::String, "kill",
     "a TD guest's access (not ACCEPT) that faults on a PENDING private page: kill (merged kernel, "
     "tdx_handle_ept_violation: kvm_vm_dead, 'Guest access before accepting') or count (septsim before this switch: "
     "count kvm.tdx.pending_access_exits and go on; for traces whose guest touches memory it never accepted)"},
    {"mmu.tdx_private_dirty_log", T::String, "refuse",
     "KVM_MEM_LOG_DIRTY_PAGES on a TD's (guest_memfd) memslot: refuse (merged kernel, kvm_main.c "
     "check_memory_region_flags: -EINVAL) or allow (the model's eager split of private 2M pages with BLOCK, TRACK, "
     "DEMOTE; needed by the merge policies)"},
    // Fault injection (mmu/fault_inject.h, docs/invariants.md): not for normal use.
    {"debug.inject", T::String, "none",
     "NOT FOR NORMAL USE: the MMU commits one class of KVM/TDX bug so that --check can be shown to catch it: "
     "none, or CLASS, CLASS@N (the Nth time the MMU reaches the bug's place), CLASS@all or CLASS@random "
     "(probability 1/4 each time, seeded by debug.inject_seed); classes: skip-track, skip-kick, "
     "remove-without-block, free-linked-sept, pamt-put-forgotten, no-remote-flush, huge-over-mixed, "
     "stale-snapshot, promote-without-track, double-map, dirty-log-no-wrprot, slot-delete-no-zap, "
     "convert-no-removal, teardown-leak, pml-no-flush; and migrate-race (no bug: a host page migration between a fault's "
     "fault-in and its map, which KVM retries) (docs/invariants.md)"},
    {"debug.inject_seed", T::Int, "1", "NOT FOR NORMAL USE: seed of debug.inject=CLASS@random"},
};

const std::map<std::string, std::map<std::string, std::string>> kPresets = {
    {"skylake-sp", {}},
    {"sapphire-rapids",
     {
         {"cpu.freq_mhz", "2000"},            // guess: a typical SPR SKU base clock
         {"host.maxphyaddr", "52"},           // 5-level capable platforms
         {"tlb.l1d.4k.entries", "96"},        // Golden Cove DTLB 96 (Intel Optimization Manual)
         {"tlb.l1d.4k.ways", "6"},            // guess
         {"tlb.l1d.2m.entries", "32"},        // guess: recalled, no table
         {"tlb.l1d.1g.entries", "8"},         // guess: recalled, no table
         {"tlb.l1d.1g.ways", "8"},            // guess
         {"tlb.stlb.entries", "2048"},        // guess: recalled, no table
         {"tlb.stlb.ways", "16"},             // guess
         {"tlb.stlb_1g.entries", "1024"},     // guess: recalled, no table
         {"tlb.stlb_1g.ways", "8"},           // guess
         {"latency.stlb_hit", "8"},           // guess
         // Golden Cove / Sapphire Rapids caches (the manual, Golden Cove section; Xeon 4th gen product brief).
         {"memory.l1d.sets", "64"},           // 48 KiB, 12-way
         {"memory.l1d.ways", "12"},
         {"memory.l2.sets", "2048"},          // 2 MiB (product brief), 16-way (guess)
         {"memory.l2.ways", "16"},
         {"memory.llc.sets", "114688"},       // 1.875 MiB per core x 56 cores (Xeon Platinum 8480+: 105 MiB), 15-way (guess)
         {"memory.llc.ways", "15"},
         {"memory.dram.banks", "64"},         // guess: DDR5 has 32 banks per device
         {"memory.dram.row_bytes", "8192"},   // guess
         {"latency.l1d", "5"},                // the manual, Golden Cove: 5 cycles
         {"latency.l2", "16"},                // guess: client Golden Cove 15 (the manual), server parts a cycle more
         {"latency.llc", "66"},               // guess: public measurements put SPR LLC near 33 ns, at 2 GHz
         {"latency.dram_row_miss", "220"},    // guess: about 110 ns idle latency, at 2 GHz
         {"latency.dram_row_hit", "153"},     // row miss - tRP - tRCD of DDR5-4800 (40 + 40 clocks at 2400 MHz)
         {"tlb.l1i.4k.entries", "256"},       // the manual, Golden Cove ITLB: 256 4K entries
         {"tlb.l1i.2m.entries", "32"},        // the manual, Golden Cove ITLB: 32 2M/4M entries
     }},
};

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool parse_int(const std::string& v, u64& out) {
  if (v.empty()) return false;
  try {
    size_t pos = 0;
    out = std::stoull(v, &pos, 0);
    return pos == v.size() && v[0] != '-';
  } catch (...) {
    return false;
  }
}

void flatten(const nlohmann::json& j, const std::string& prefix, std::vector<std::pair<std::string, nlohmann::json>>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object())
      flatten(*it, key, out);
    else
      out.emplace_back(key, *it);
  }
}

}  // namespace

Config::Config() {
  for (const auto& p : kParams) values_[p.key] = p.default_value;
}

const std::vector<Config::Param>& Config::params() { return kParams; }

std::vector<std::string> Config::preset_names() {
  std::vector<std::string> names;
  for (const auto& [n, _] : kPresets) names.push_back(n);
  return names;
}

void Config::apply_preset(const std::string& name) {
  auto it = kPresets.find(name);
  if (it == kPresets.end()) {
    std::string known;
    for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw ConfigError("unknown preset '" + name + "' (known: " + known + ")");
  }
  for (const auto& p : kParams) values_[p.key] = p.default_value;
  for (const auto& [k, v] : it->second) values_[k] = v;
}

std::vector<std::string> Config::close_matches(const std::string& key) {
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& p : kParams) {
    size_t d = edit_distance(key, p.key);
    // A key that contains the text, or ends with the same last component, is close too.
    auto dot = p.key.rfind('.');
    bool suffix = dot != std::string::npos && key.size() > 2 && key.ends_with(p.key.substr(dot + 1));
    if (d <= std::max<size_t>(3, key.size() / 3) || p.key.find(key) != std::string::npos || suffix)
      scored.emplace_back(d, p.key);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && i < 3; ++i) out.push_back(scored[i].second);
  return out;
}

const Config::Param& Config::param(const std::string& key, const std::string& origin) const {
  for (const auto& p : kParams)
    if (p.key == key) return p;
  std::string msg = origin + ": unknown config key '" + key + "'";
  auto close = close_matches(key);
  if (!close.empty()) {
    msg += "; did you mean ";
    for (size_t i = 0; i < close.size(); ++i) msg += (i ? ", '" : "'") + close[i] + "'";
    msg += "?";
  }
  throw ConfigError(msg);
}

void Config::set(const std::string& key, const std::string& value, const std::string& origin) {
  const Param& p = param(key, origin);
  std::string v = value;
  if (p.type == Type::Int) {
    u64 n;
    if (!parse_int(v, n)) throw ConfigError(origin + ": key '" + key + "' wants a non-negative integer, got '" + value + "'");
  } else if (p.type == Type::Bool) {
    if (v == "1" || v == "on" || v == "yes") v = "true";
    if (v == "0" || v == "off" || v == "no") v = "false";
    if (v != "true" && v != "false") throw ConfigError(origin + ": key '" + key + "' wants true or false, got '" + value + "'");
  }
  values_[key] = v;
}

void Config::load_json(const nlohmann::json& j, const std::string& origin) {
  if (!j.is_object()) throw ConfigError(origin + ": a config file must hold a JSON object");
  if (j.contains("preset")) {
    if (!j["preset"].is_string()) throw ConfigError(origin + ": field 'preset' must be a string");
    apply_preset(j["preset"].get<std::string>());
  }
  std::vector<std::pair<std::string, nlohmann::json>> flat;
  flatten(j, "", flat);
  for (const auto& [k, v] : flat) {
    if (k == "preset") continue;
    std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    if (v.is_array() || v.is_null()) throw ConfigError(origin + ": key '" + k + "' has a value of the wrong kind");
    set(k, text, origin);
  }
}

void Config::load_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open config file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw ConfigError(path + ": malformed JSON: " + e.what());
  }
  load_json(j, path);
}

u64 Config::u(const std::string& key) const {
  const Param& p = param(key, "config");
  u64 n = 0;
  if (p.type != Type::Int || !parse_int(values_.at(key), n)) throw ConfigError("config key '" + key + "' is not an integer");
  return n;
}

bool Config::b(const std::string& key) const {
  const Param& p = param(key, "config");
  if (p.type != Type::Bool) throw ConfigError("config key '" + key + "' is not a boolean");
  return values_.at(key) == "true";
}

const std::string& Config::s(const std::string& key) const {
  param(key, "config");
  return values_.at(key);
}

nlohmann::json Config::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& p : kParams) {
    const std::string& v = values_.at(p.key);
    if (p.type == Type::Int)
      out[p.key] = u(p.key);
    else if (p.type == Type::Bool)
      out[p.key] = v == "true";
    else
      out[p.key] = v;
  }
  return out;
}

}  // namespace septsim::model
