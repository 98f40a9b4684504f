// The TD scenario traces under tests/mmu/traces replay through the septsim
// binary with --check; 9x_* traces are bad input and must exit 2.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

namespace {

int replay(const std::string& trace, const std::string& extra = "") {
  const std::string cmd = std::string(SEPTSIM_BINARY_DIR "/septsim replay ") + trace + " --check --quiet " + extra +
                          " >/dev/null 2>&1";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
// The switches that bring back the first huge-page RFC's behaviour (docs/kvm-behaviour.md).
const std::string kRfc = "--set mmu.tdx_huge_pages=rfc-v1 --set mmu.tdx_private_dirty_log=allow";

std::string trace(const char* name) { return std::string(SEPTSIM_SOURCE_DIR "/tests/mmu/traces/") + name; }

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The value of "key": N in the stats JSON's totals (the last occurrence).
long long stat(const std::string& json, const std::string& key) {
  const std::string k = "\"" + key + "\":";
  const size_t at = json.rfind(k);
  if (at == std::string::npos) return -1;
  return std::atoll(json.c_str() + at + k.size());
}

// The value of `key` in phase `phase` of the stats JSON.
long long phase_stat(const std::string& json, const std::string& phase, const std::string& key) {
  const auto j = nlohmann::json::parse(json);
  for (const auto& p : j["stats"]["phases"])
    if (p["name"] == phase) return p["counters"].value(key, -1ll);
  return -1;
}

}  // namespace

TEST_CASE("TD boot and teardown traces replay with no broken invariant", "[tdx]") {
  for (const char* t : {"01_td_boot.jsonl", "02_td_teardown.jsonl", "03_convert_4k.jsonl", "04_split_2m_convert_4k.jsonl",
                        "06_access_then_teardown.jsonl", "08_dpamt_split_2m.jsonl"}) {
    INFO(t);
    CHECK(replay(trace(t)) == 0);
    CHECK(replay(trace(t), kRfc) == 0);
  }
}

TEST_CASE("rfc-v1: the 2M split trace demotes once, removes only the converted 4K piece and removes the rest at teardown",
          "[tdx]") {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_split_stats.json";
  REQUIRE(replay(trace("04_split_2m_convert_4k.jsonl"), kRfc + " --stats " + out) == 0);
  const std::string json = slurp(out);
  CHECK(stat(json, "seam.calls.tdh_mem_page_demote") == 1);
  // Removed while the TD runs: 0x601000, then 0x7ff000. At teardown
  // guest_memfd's release removes the other 1 + 510 private pages with the
  // HKID still assigned (kvm_gmem_release -> tdx.c:tdx_sept_remove_leaf_spte).
  CHECK(stat(json, "seam.calls.tdh_mem_page_remove") == 2 + 511);
  CHECK(stat(json, "kvm.tdx.private_removed") == 2 + 511);
  // Each removal BLOCKs and TRACKs; the split BLOCKed and TRACKed the 2M leaf.
  CHECK(stat(json, "seam.calls.tdh_mem_range_block") == 1 + 513);
  CHECK(stat(json, "seam.calls.tdh_mem_track") == 1 + 513);
  // WBINVD: each removed page under the HKID, then the TDR (global key).
  CHECK(stat(json, "seam.calls.tdh_phymem_page_wbinvd") == 513 + 1);
  CHECK(stat(json, "seam.status.errors") == 0);
  // RECLAIM after the HKID is released: 4 tables (3 SEPT.ADDs + the
  // DEMOTE's, tdx_sept_free_private_spt); TDR, 4 TDCS pages and
  // 2 x (TDVPR + 3 TDCX) (tdx_vcpu_free, tdx_reclaim_td_control_pages).
  CHECK(stat(json, "seam.calls.tdh_phymem_page_reclaim") == 4 + 13);
  CHECK(stat(json, "seam.tds") == 0);
}

TEST_CASE("the teardown trace reclaims every page and leaves no PAMT memory", "[tdx]") {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_teardown_stats.json";
  REQUIRE(replay(trace("02_td_teardown.jsonl"), "--stats " + out) == 0);
  const std::string json = slurp(out);
  CHECK(stat(json, "seam.pamt.pair_bytes") == 0);
  CHECK(stat(json, "seam.pamt.pairs") == 0);
  CHECK(stat(json, "seam.tds") == 0);
  CHECK(stat(json, "seam.sept.pages") == 0);
  // Private pages: 4 PAGE.ADDs; AUGs: 8 (vCPU 0's writes), 512 (vCPU 1's 2M
  // ACCEPT: the merged kernel maps 4K, tdx_gmem_max_mapping_level, so the
  // guest accepts the 512 pieces one by one, tdx-shared.c:try_accept_one)
  // and 1 (vCPU 1's write).
  CHECK(stat(json, "seam.calls.tdh_mem_page_add") == 4);
  CHECK(stat(json, "seam.calls.tdh_mem_page_aug") == 8 + 512 + 1);
  CHECK(stat(json, "replay.accept_2m_fallbacks") == 1);
  // Teardown: guest_memfd's release removes all 525 with the HKID assigned
  // (BLOCK, TRACK, REMOVE, WBINVD each: tdx_sept_remove_leaf_spte), then
  // tdx_mmu_release_hkid, then RECLAIM of the 6 SEPT tables (PDPT, PD and
  // four PTs: tdx_sept_free_private_spt), 2 x (3 TDCX + TDVPR), 4 TDCS and
  // the TDR, which alone gets a WBINVD (tdx_reclaim_td_control_pages).
  CHECK(stat(json, "seam.calls.tdh_mem_range_block") == 525);
  CHECK(stat(json, "seam.calls.tdh_mem_track") == 525);
  CHECK(stat(json, "seam.calls.tdh_mem_page_remove") == 525);
  CHECK(stat(json, "seam.calls.tdh_phymem_page_wbinvd") == 525 + 1);
  CHECK(stat(json, "seam.calls.tdh_mng_key_freeid") == 1);
  CHECK(stat(json, "seam.calls.tdh_phymem_page_reclaim") == 6 + 13);
  CHECK(stat(json, "seam.calls.tdh_phymem_pamt_add") == stat(json, "seam.calls.tdh_phymem_pamt_remove"));
  CHECK(stat(json, "seam.calls.tdh_phymem_pamt_add") > 0);
  CHECK(stat(json, "seam.calls.tdh_mr_extend") == 4 * 16);
}

// The teardown a kernel does when the VMM closes a TD: kvm_gmem_release
// unmaps the private pages while the HKID is assigned (each through
// arch/x86/kvm/vmx/tdx.c:tdx_sept_remove_leaf_spte: BLOCK, tdx_track's
// TRACK and kick, REMOVE, WBINVD under the HKID), then kvm_destroy_vm calls
// tdx_mmu_release_hkid (VP.FLUSH per vCPU, VPFLUSHDONE, CACHE.WB,
// KEY.FREEID), the mirror's tables go through tdx_sept_free_private_spt
// (RECLAIM), tdx_vcpu_free RECLAIMs each vCPU's TDCX and TDVPR, and
// tdx_reclaim_td_control_pages the TDCS pages and the TDR, which alone gets
// a WBINVD (tdh_phymem_page_wbinvd_tdr). tdx_reclaim_page is RECLAIM and a
// clear by the kernel: no WBINVD. Trace: 2 image pages + 3 accepted pages,
// 5 Secure-EPT tables (PDPT, PD, 3 PTs); control pages: TDR, 4 TDCS and
// TDVPR + 3 TDCX per vCPU.
TEST_CASE("teardown removes private pages with the HKID assigned, then releases it and reclaims tables and control pages",
          "[tdx][teardown]") {
  struct Case {
    const char* trace;
    long long vcpus, control_pages;
  };
  for (const Case& c : {Case{"14_teardown_paths.jsonl", 2, 1 + 4 + 2 * 4}, Case{"15_teardown_paths_1vcpu.jsonl", 1, 1 + 4 + 4}}) {
    INFO(c.trace);
    const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_teardown_" + std::to_string(c.vcpus) + ".json";
    REQUIRE(replay(trace(c.trace), "--stats " + out) == 0);
    const std::string json = slurp(out);
    for (const char* leaf : {"tdh_mem_range_block", "tdh_mem_track", "tdh_mem_page_remove"})
      CHECK(phase_stat(json, "teardown", std::string("seam.calls.") + leaf) == 5);
    CHECK(phase_stat(json, "teardown", "kvm.tdx.kicks") == 5);
    CHECK(phase_stat(json, "teardown", "seam.calls.tdh_phymem_page_wbinvd") == 5 + 1);
    CHECK(phase_stat(json, "teardown", "seam.calls.tdh_vp_flush") == c.vcpus);
    for (const char* leaf : {"tdh_mng_vpflushdone", "tdh_phymem_cache_wb", "tdh_mng_key_freeid"})
      CHECK(phase_stat(json, "teardown", std::string("seam.calls.") + leaf) == 1);
    CHECK(phase_stat(json, "teardown", "seam.calls.tdh_phymem_page_reclaim") == 5 + c.control_pages);
    // tdp_mmu_zap_leafs asks for one remote flush; no vCPU runs to take an IPI.
    CHECK(phase_stat(json, "teardown", "kvm.remote_tlb_flush") == 1);
    CHECK(phase_stat(json, "teardown", "kvm.remote_tlb_flush_ipis") == 0);
    CHECK(stat(json, "seam.status.errors") == 0);
    CHECK(stat(json, "seam.tds") == 0);
  }
}

// td_teardown "terminate": KVM_TDX_TERMINATE_VM released the HKID before
// guest_memfd let go of the pages, so the private pages are RECLAIMed like
// the tables (no BLOCK/TRACK/REMOVE, no per-page WBINVD).
TEST_CASE("td_teardown terminate releases the HKID first and RECLAIMs every private page", "[tdx][teardown]") {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_terminate.json";
  REQUIRE(replay(trace("16_teardown_terminate.jsonl"), "--stats " + out) == 0);
  const std::string json = slurp(out);
  for (const char* leaf : {"tdh_mem_range_block", "tdh_mem_track", "tdh_mem_page_remove"})
    CHECK(stat(json, std::string("seam.calls.") + leaf) == 0);
  CHECK(stat(json, "seam.calls.tdh_phymem_page_wbinvd") == 1);  // the TDR's
  CHECK(stat(json, "seam.calls.tdh_phymem_page_reclaim") == 5 + 5 + 13);
  CHECK(stat(json, "seam.calls.tdh_vp_flush") == 2);
  CHECK(stat(json, "seam.status.errors") == 0);
  CHECK(stat(json, "seam.tds") == 0);
}

// arch/x86/kvm/mmu/mmu.c:kvm_arch_flush_shadow_memslot: the fast zap only
// when kvm_memslot_flush_zap_all (KVM_X86_DEFAULT_VM and the quirk); a TD
// zaps the slot's shared and private leaves (kvm_mmu_zap_memslot) and flushes.
// Private zaps flush too: tdp_mmu_zap_leafs -> kvm_flush_remote_tlbs.
TEST_CASE("a TD's memslot deletion zaps only that slot, shared and private, then flushes once", "[tdx]") {
  for (const auto& [name, vcpus] : {std::pair{"17_memslot_delete_td.jsonl", 2}, std::pair{"19_memslot_delete_td_1vcpu.jsonl", 1}}) {
    INFO(name);
    const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_slot_delete_" + std::to_string(vcpus) + ".json";
    // mmu.slot_zap's default is zap-all-fast: it does not apply to a TD.
    REQUIRE(replay(trace(name), "--stats " + out) == 0);
    const std::string json = slurp(out);
    // Converting the accepted page 0x300000: one removal and one flush.
    CHECK(phase_stat(json, "convert", "seam.calls.tdh_mem_page_remove") == 1);
    CHECK(phase_stat(json, "convert", "kvm.remote_tlb_flush") == 1);
    CHECK(stat(json, "kvm.mmu_zap_all_fast") == 0);
    // Slot 1's two private pages go; its shared page is zapped; one flush,
    // an ioctl's: an IPI to each vCPU in the guest.
    CHECK(phase_stat(json, "delete", "seam.calls.tdh_mem_page_remove") == 2);
    CHECK(phase_stat(json, "delete", "kvm.remote_tlb_flush") == 1);
    CHECK(phase_stat(json, "delete", "kvm.remote_tlb_flush_ipis") == vcpus);
    // Slot 0's shared and private mappings survive: no EPT violation after.
    CHECK(phase_stat(json, "delete", "vcpu0.ept_violations") == 0);
    CHECK(phase_stat(json, "teardown", "seam.calls.tdh_mem_page_remove") == 1);
    CHECK(stat(json, "seam.status.errors") == 0);
  }
}

// tdx_track: "If TD isn't finalized, it's before any vcpu running" - no TRACK.
TEST_CASE("a removal before the TD is RUNNABLE BLOCKs and REMOVEs without TRACK or kick", "[tdx]") {
  // Control pages: TDR, 4 TDCS and TDVPR + 3 TDCX per vCPU.
  for (const auto& [name, control_pages] :
       {std::pair{"18_remove_before_finalize.jsonl", 1 + 4 + 4}, std::pair{"20_remove_before_finalize_2vcpu.jsonl", 1 + 4 + 8}}) {
    INFO(name);
    const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_remove_before_finalize_" +
                            std::to_string(control_pages) + ".json";
    REQUIRE(replay(trace(name), "--stats " + out) == 0);
    const std::string json = slurp(out);
    // Before finalize: BLOCK, REMOVE, WBINVD of 0x101000, no TRACK; the
    // teardown after finalize removes 0x100000 with BLOCK, TRACK + kick,
    // REMOVE, WBINVD. One TRACK in all: the teardown's.
    CHECK(stat(json, "seam.calls.tdh_mem_range_block") == 1 + 1);
    CHECK(stat(json, "seam.calls.tdh_mem_page_remove") == 1 + 1);
    CHECK(stat(json, "seam.calls.tdh_phymem_page_wbinvd") == 1 + 1 + 1);  // + the TDR's
    CHECK(stat(json, "seam.calls.tdh_mem_track") == 1);
    CHECK(stat(json, "kvm.tdx.kicks") == 1);
    // The 3 Secure-EPT tables (PDPT, PD, PT) and the control pages.
    CHECK(stat(json, "seam.calls.tdh_phymem_page_reclaim") == 3 + control_pages);
    CHECK(stat(json, "seam.status.errors") == 0);
  }
}

TEST_CASE("TD events a VM cannot take are bad input, named by line", "[tdx]") {
  const std::pair<const char*, const char*> cases[] = {
      // kvm_main.c:check_memory_region_flags: no dirty logging on a guest_memfd slot.
      {"93_dirty_log_td.jsonl", ":5: memslot 0: KVM refuses dirty logging on a TD's memslot"},
      {"90_accept_without_td.jsonl", ":4: field 'type': needs a TD VM"},
      {"91_init_after_finalize.jsonl", ":5: td_init_mem_region after td_finalize"},
      {"92_access_before_finalize.jsonl", ":4: field 'vcpu': a TD vCPU runs only between td_finalize and td_teardown"},
  };
  const std::string err = std::string(SEPTSIM_BINARY_DIR) + "/tdx_bad_input.txt";
  for (const auto& [t, msg] : cases) {
    INFO(t);
    const std::string cmd = std::string(SEPTSIM_BINARY_DIR "/septsim replay ") + trace(t) + " --quiet >/dev/null 2>" + err;
    const int rc = std::system(cmd.c_str());
    CHECK((WIFEXITED(rc) ? WEXITSTATUS(rc) : -1) == 2);
    CHECK(slurp(err).find(msg) != std::string::npos);
  }
}

TEST_CASE("the 4K conversion trace removes once, re-adds once and ends with no PAMT memory", "[tdx]") {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_convert_stats.json";
  REQUIRE(replay(trace("03_convert_4k.jsonl"), "--stats " + out) == 0);
  const std::string json = slurp(out);
  // 0x300000 to shared and 0x101000 (an image page) to shared; at teardown
  // the other three private pages (0x100000, 0x300000 again, 0x301000).
  CHECK(stat(json, "seam.calls.tdh_mem_page_remove") == 2 + 3);
  CHECK(stat(json, "seam.calls.tdh_mem_track") == 2 + 3);
  CHECK(stat(json, "kvm.tdx.private_removed") == 2 + 3);
  CHECK(stat(json, "kvm.tdx.memory_fault_exits") == 1);  // the private read while shared
  // EPT violations that reach kvm_mmu_do_page_fault (which counts each):
  // the two ACCEPT exits, that private read (kvm_mmu_faultin_pfn finds the
  // attribute mismatch only after the count, mmu.c), the shared write and
  // the private write after the conversion back.
  CHECK(stat(json, "kvm.pf_taken") == 2 + 1 + 1 + 1);
  CHECK(stat(json, "seam.status.errors") == 0);
  CHECK(stat(json, "seam.pamt.pair_bytes") == 0);
  CHECK(stat(json, "seam.tds") == 0);
}

TEST_CASE("the 2M race trace: the loser finds the winner's mirror entries FROZEN, retries without a SEAMCALL, and each page maps once", "[tdx]") {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_race_stats.json";
  // The trace's guests write pages they never accepted, for which the kernel
  // kills the TD (see 13): count those exits instead, to see the race.
  REQUIRE(replay(trace("07_race_2m.jsonl"), "--set mmu.tdx_pending_access=count --stats " + out) == 0);
  const std::string json = slurp(out);
  // Both vCPUs fault 0x400000 at once: one adds three tables and AUGs,
  // holding each mirror entry FROZEN_SPTE while its hook runs
  // (tdp_mmu.c:__tdp_mmu_set_spte_atomic). The other's cmpxchg on each of
  // those four entries fails with no hook called: four retries
  // (tdx_handle_ept_violation's local loop), no SEAMCALL, no BUSY; then it
  // finds the page.
  CHECK(stat(json, "kvm.tdx.frozen_retries") == 4);
  CHECK(stat(json, "kvm.pf_retry") == 4);
  CHECK(stat(json, "seam.status.busy") == 0);
  CHECK(stat(json, "kvm.tdx.busy_retries") == 0);
  CHECK(stat(json, "kvm.pf_spurious") == 1);
  // Three distinct pages, three AUGs; the three tables added once each.
  CHECK(stat(json, "kvm.pf_fixed") == 3);
  CHECK(stat(json, "seam.calls.tdh_mem_page_aug") == 3);
  CHECK(stat(json, "seam.calls.tdh_mem_sept_add") == 3);
  CHECK(stat(json, "seam.status.errors") == 0);
  CHECK(stat(json, "seam.tds") == 0);
}

// Two TDs on one host (tests/mmu/traces/24_two_td_dpamt.jsonl): the Dynamic
// PAMT refcount is the host's (arch/x86/virt/vmx/tdx/tdx.c, PATCH v6 04/11
// "Allocate ref counts for Dynamic PAMT memory": one array for all of
// memory; tdx_pamt_get's atomic_inc_not_zero fast path for a region that
// already has a pair). The host allocator puts both TDs' control, S-EPT and
// private pages in one 2 MiB region: TD 0's first page adds its pair, TD 1's
// pages only take references, and the last put (TD 1's teardown) removes it.
// With a refcount per TD, TD 1's creation failed: its PAMT.ADD of the same
// region was TDX_HPA_RANGE_NOT_FREE.
TEST_CASE("two TDs share a 2M region's Dynamic PAMT pair: one PAMT.ADD, one PAMT.REMOVE", "[tdx][dpamt]") {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_two_td_stats.json";
  REQUIRE(replay(trace("24_two_td_dpamt.jsonl"), "--stats " + out) == 0);
  const std::string json = slurp(out);
  CHECK(stat(json, "seam.calls.tdh_phymem_pamt_add") == 1);
  CHECK(stat(json, "seam.calls.tdh_phymem_pamt_remove") == 1);
  CHECK(stat(json, "kvm.tdx.pamt_add") == 1);
  CHECK(stat(json, "vm1.kvm.tdx.pamt_add") == 0);
  CHECK(stat(json, "kvm.tdx.pamt_remove") == 0);
  CHECK(stat(json, "vm1.kvm.tdx.pamt_remove") == 1);
  CHECK(stat(json, "seam.pamt.pair_bytes") == 0);
  CHECK(stat(json, "seam.tds") == 0);
}

TEST_CASE("the Dynamic PAMT trace grows by a pair per new 2M region and shrinks to zero at teardown", "[tdx]") {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_dpamt_stats.json";
  REQUIRE(replay(trace("05_dpamt_grow_shrink.jsonl"), "--stats " + out) == 0);
  const std::string json = slurp(out);
  // One pair for the control pages' region and one per guest 2M region (4);
  // two regions converted whole give theirs back, teardown the other three.
  CHECK(stat(json, "kvm.tdx.pamt_add") == 1 + 4);
  CHECK(stat(json, "kvm.tdx.pamt_remove") == 2 + 3);
  CHECK(stat(json, "seam.calls.tdh_phymem_pamt_add") == 5);
  CHECK(stat(json, "kvm.tdx.pamt_cache_topups") == 4);  // each vCPU's first two faults refill
  CHECK(stat(json, "kvm.tdx.pamt_cache_pages") == 0);
  CHECK(stat(json, "seam.pamt.pair_bytes") == 0);
  CHECK(stat(json, "seam.tds") == 0);
}

namespace {

// A merge trace replayed under one mmu.tdx_merge_policy; the stats JSON.
std::string merge_run(const char* trace_name, const std::string& policy, const std::string& extra = "") {
  // One file per trace, policy and options: ctest runs the cases in parallel.
  std::string tag = std::string(trace_name).substr(0, 2) + "_" + policy + "_" + std::to_string(extra.size());
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_merge_" + tag + ".json";
  // Merging needs the RFC's huge private pages and the model's private dirty logging.
  const int rc = replay(trace(trace_name), "--set mmu.tdx_merge_policy=" + policy + " " + kRfc + " " + extra +
                                               " --stats " + out);
  REQUIRE(rc == 0);
  return slurp(out);
}

}  // namespace

TEST_CASE("dirty logging splits each private 2M page once, and with merge policy none they stay split", "[tdx][merge]") {
  const std::string json = merge_run("09_merge_after_dirty_log.jsonl", "none");
  CHECK(stat(json, "kvm.tdx.merge.split_ranges") == 4);
  CHECK(stat(json, "seam.calls.tdh_mem_page_demote") == 4);
  CHECK(stat(json, "seam.calls.tdh_mem_page_promote") == 0);
  // Four splits and the piece that went shared: one TRACK and kick each;
  // at teardown one per private page left: the image page, 4 x 512 pieces,
  // 4 accepted pages and 15 the last reads touched without accepting.
  CHECK(stat(json, "seam.calls.tdh_mem_track") == 5 + 1 + 2048 + 4 + 15);
  CHECK(stat(json, "seam.status.errors") == 0);
}

TEST_CASE("merge policy A promotes every ready range on one NX-recovery tick under one TRACK", "[tdx][merge]") {
  // Ratio 1: the tick visits all four split ranges.
  const std::string json = merge_run("09_merge_after_dirty_log.jsonl", "A", "--set mmu.nx_huge_pages_recovery_ratio=1");
  CHECK(stat(json, "kvm.tdx.merge.promoted") == 4);
  CHECK(stat(json, "seam.calls.tdh_mem_page_promote") == 4);
  // The splits' and piece's, then one per merge; at teardown 24 private
  // pages (the image, four 2M, 4 + 15 at 4K) each BLOCKed and TRACKed.
  CHECK(stat(json, "seam.calls.tdh_mem_range_block") == 5 + 4 + 24);
  CHECK(stat(json, "seam.calls.tdh_mem_track") == 5 + 1 + 24);
  CHECK(stat(json, "kvm.tdx.merge.refused") == 0);
  CHECK(stat(json, "seam.status.errors") == 0);
}

TEST_CASE("merge policy A at the default ratio visits ceil(n / 60) ranges per tick", "[tdx][merge]") {
  const std::string json = merge_run("09_merge_after_dirty_log.jsonl", "A");
  CHECK(stat(json, "kvm.tdx.merge.scanned") == 1);
  CHECK(stat(json, "kvm.tdx.merge.promoted") == 1);
}

TEST_CASE("merge policy B merges one range per private EPT violation, each with its own TRACK", "[tdx][merge]") {
  const std::string json = merge_run("09_merge_after_dirty_log.jsonl", "B");
  // The four ACCEPT exits after logging stops each merge the oldest range.
  CHECK(stat(json, "kvm.tdx.merge.promoted") == 4);
  CHECK(stat(json, "seam.calls.tdh_mem_track") == 5 + 4 + 24);  // + teardown, as for A
  CHECK(stat(json, "seam.status.errors") == 0);
}

TEST_CASE("merge policy C blocks the split ranges when logging stops and promotes each on its next violation",
          "[tdx][merge]") {
  const std::string json = merge_run("09_merge_after_dirty_log.jsonl", "C");
  CHECK(stat(json, "kvm.tdx.merge.blocked") == 4);
  CHECK(stat(json, "kvm.tdx.merge.promoted") == 4);
  CHECK(stat(json, "seam.calls.tdh_mem_track") == 5 + 1 + 24);  // one TRACK for all four BLOCKs; teardown
  CHECK(stat(json, "seam.status.errors") == 0);
}

TEST_CASE("PROMOTE of a range with one PENDING child is refused, the range UNBLOCKed and merged later", "[tdx][merge]") {
  const std::string json = merge_run("10_merge_refused_pending.jsonl", "B");
  CHECK(stat(json, "kvm.tdx.merge.promote_attempts") == 2);
  CHECK(stat(json, "kvm.tdx.merge.refused") == 1);
  CHECK(stat(json, "kvm.tdx.merge.promoted") == 1);
  CHECK(stat(json, "seam.calls.tdh_mem_range_unblock") == 1);
  // The refusal is the only error status: TDX_EPT_INVALID_PROMOTE_CONDITIONS.
  CHECK(stat(json, "seam.status.errors") == 1);
}

TEST_CASE("a conversion inside a range blocked for a merge UNBLOCKs it first and never merges it", "[tdx][merge]") {
  const std::string json = merge_run("11_merge_blocked_then_converted.jsonl", "C");
  CHECK(stat(json, "kvm.tdx.merge.blocked") == 2);
  CHECK(stat(json, "seam.calls.tdh_mem_range_unblock") == 1);
  CHECK(stat(json, "kvm.tdx.merge.promoted") == 1);
  // The piece, then at teardown the image page, the promoted 2M page and
  // the other range's 511 pieces.
  CHECK(stat(json, "kvm.tdx.private_removed") == 1 + 1 + 1 + 511);
  CHECK(stat(json, "seam.status.errors") == 0);
}

TEST_CASE("ranges blocked for a merge survive logging again, a memslot deletion and teardown", "[tdx][merge]") {
  const std::string json = merge_run("12_merge_blocked_edges.jsonl", "C");
  // Three ranges split; blocked when logging stops (2 + 1), 0x600000 again
  // after its violation under renewed logging UNBLOCKed it.
  CHECK(stat(json, "kvm.tdx.merge.split_ranges") == 3);
  CHECK(stat(json, "kvm.tdx.merge.blocked") == 4);
  // That violation, the deleted slot's range, and at teardown the two
  // ranges still blocked (UNBLOCKed before guest_memfd's release removes).
  CHECK(stat(json, "seam.calls.tdh_mem_range_unblock") == 2 + 2);
  CHECK(stat(json, "seam.calls.tdh_mem_page_promote") == 0);
  // The deleted slot's 2M page, piece by piece; at teardown the image page
  // and the two split ranges' pieces.
  CHECK(stat(json, "kvm.tdx.private_removed") == 512 + 1 + 2 * 512);
  CHECK(stat(json, "seam.status.errors") == 0);
  CHECK(stat(json, "seam.tds") == 0);
}

TEST_CASE("rfc-v1: the Dynamic PAMT split trace: DEMOTE installs the region's pair, the last 4K piece removes it",
          "[tdx]") {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_dpamt_split_stats.json";
  REQUIRE(replay(trace("08_dpamt_split_2m.jsonl"), kRfc + " --stats " + out) == 0);
  const std::string json = slurp(out);
  // PAMT.ADD: only the control pages' region (the SEPT tables and DEMOTE's
  // table land there too); the 2M AUG needs no PAMT_4K pair, DEMOTE installs
  // one from R12/R13 and the re-faulted piece finds its region held.
  CHECK(stat(json, "kvm.tdx.pamt_add") == 1);
  CHECK(stat(json, "seam.calls.tdh_phymem_pamt_add") == 1);
  CHECK(stat(json, "seam.calls.tdh_mem_page_demote") == 1);
  // PAMT.REMOVE: the split region's pair after its last piece (at teardown)
  // and the control pages' region: ADD + DEMOTE = REMOVE.
  CHECK(stat(json, "kvm.tdx.pamt_remove") == 1 + 1);
  CHECK(stat(json, "seam.calls.tdh_phymem_pamt_remove") == 2);
  // Removed while the TD runs: 0x601000, then 16 pieces of 0x610000..0x61ffff;
  // at teardown, with the HKID assigned, the 512 - 17 + 1 pieces left.
  CHECK(stat(json, "seam.calls.tdh_mem_page_remove") == 1 + 16 + 496);
  CHECK(stat(json, "kvm.tdx.private_removed") == 17 + 496);
  CHECK(stat(json, "seam.calls.tdh_mem_page_aug") == 2);  // the 2M page, then 0x601000 again at 4K
  // Top-ups: vCPU 0's fault (the 2M accept), the VM's cache for the split,
  // vCPU 1's re-fault; none ran dry (no rule 21: the replay exits 0).
  CHECK(stat(json, "kvm.tdx.pamt_cache_topups") == 3);
  // RECLAIM after the HKID is released: 3 tables (2 SEPT.ADDs + DEMOTE's),
  // TDR, 4 TDCS pages and 2 x (TDVPR + 3 TDCX).
  CHECK(stat(json, "seam.calls.tdh_phymem_page_reclaim") == 3 + 13);
  CHECK(stat(json, "seam.status.errors") == 0);
  CHECK(stat(json, "kvm.tdx.pamt_cache_pages") == 0);
  CHECK(stat(json, "seam.pamt.pairs") == 0);
  CHECK(stat(json, "seam.pamt.pair_bytes") == 0);
  CHECK(stat(json, "seam.tds") == 0);
  // One cache for the whole VM: the split tops it up the same way.
  CHECK(replay(trace("08_dpamt_split_2m.jsonl"), kRfc + " --set mmu.tdx_pamt_cache=vm") == 0);
}

TEST_CASE("under Dynamic PAMT a merge hands the DEMOTE's page pair back and PAMT ends at zero", "[tdx][merge]") {
  const std::string json = merge_run("09_merge_after_dirty_log.jsonl", "A",
                                     "--set seam.dynamic_pamt=true --set mmu.nx_huge_pages_recovery_ratio=1");
  CHECK(stat(json, "seam.calls.tdh_mem_page_demote") == 4);
  CHECK(stat(json, "kvm.tdx.merge.promoted") == 4);
  // DEMOTE installs and PROMOTE removes the 2M pages' pairs without
  // PAMT.ADD/REMOVE: the refcount's own calls still pair up.
  CHECK(stat(json, "kvm.tdx.pamt_add") == stat(json, "kvm.tdx.pamt_remove"));
  CHECK(stat(json, "seam.calls.tdh_phymem_pamt_add") == stat(json, "seam.calls.tdh_phymem_pamt_remove"));
  CHECK(stat(json, "seam.pamt.pairs") == 0);
  CHECK(stat(json, "seam.status.errors") == 0);
}

TEST_CASE("a guest access to a PENDING private page kills the TD, and the replay says where and why", "[tdx]") {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_pending_access_stats.json";
  const std::string err = std::string(SEPTSIM_BINARY_DIR) + "/tdx_pending_access_err.txt";
  // tdx.c:tdx_handle_ept_violation: tdx_is_sept_violation_unexpected_pending
  // -> kvm_vm_dead. The first write finds the page FREE (its exit AUGs it);
  // the first read exits on the PENDING page and the TD is dead.
  const std::string cmd = std::string(SEPTSIM_BINARY_DIR "/septsim replay ") + trace("13_access_before_accept.jsonl") +
                          " --check --quiet --stats " + out + " >/dev/null 2>" + err;
  const int rc = std::system(cmd.c_str());
  CHECK((WIFEXITED(rc) ? WEXITSTATUS(rc) : -1) == 1);
  CHECK(slurp(err).find("vm-dead: ") != std::string::npos);
  CHECK(slurp(err).find("Guest access before accepting 0x605000 on vCPU 0") != std::string::npos);
  const std::string json = slurp(out);
  CHECK(json.find("\"vm_dead\"") != std::string::npos);
  CHECK(stat(json, "kvm.tdx.pending_access_exits") == 1);
  // Nothing after the death runs: the 0x606000 read already queued to the
  // vCPU is dropped (KVM_REQ_VM_DEAD); the ACCEPT, the last read and the
  // teardown are never replayed.
  CHECK(stat(json, "vcpu0.ops_after_vm_dead") == 1);
  CHECK(stat(json, "replay.events_after_vm_dead") == 3);
  CHECK(slurp(err).find("in the vCPU events before line 12") != std::string::npos);
  CHECK(stat(json, "seam.calls.tdh_mng_key_freeid") == 0);
}

TEST_CASE("mmu.tdx_pending_access=count keeps the model's old answer: count the exits and go on", "[tdx]") {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_pending_count_stats.json";
  REQUIRE(replay(trace("13_access_before_accept.jsonl"), kRfc + " --set mmu.tdx_pending_access=count --stats " + out) == 0);
  const std::string json = slurp(out);
  // Each of the two reads exits on the PENDING page; after ACCEPT none does.
  CHECK(stat(json, "kvm.tdx.pending_access_exits") == 2);
  CHECK(stat(json, "seam.status.errors") == 0);
}

TEST_CASE("the vcpu_migrate trace: a TD vCPU moved to another LP is flushed there once and runs on the new one",
          "[tdx][lp]") {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_migrate_stats.json";
  REQUIRE(replay(trace("23_vcpu_migrate.jsonl"), "--stats " + out) == 0);
  const std::string json = slurp(out);
  // tdx_vcpu_load: the move to LP 1, where vCPU 1 already runs, does
  // nothing; the move to LP 5 flushes it on LP 1 and enters on LP 5. The
  // teardown flushes both vCPUs (tdx_mmu_release_hkid), vCPU 1 on LP 5.
  CHECK(stat(json, "seam.calls.tdh_vp_flush") == 1 + 2);
  // finalize enters both; the move re-enters vCPU 1; the ACCEPT's EPT
  // violation exits and re-enters it once.
  CHECK(stat(json, "seam.calls.tdh_vp_enter") == 2 + 1 + 1);
  CHECK(stat(json, "seam.status.errors") == 0);
  // An LP the platform does not have (1 package of 64 LPs by default) is bad input.
  const std::string bad = std::string(SEPTSIM_BINARY_DIR) + "/tdx_migrate_bad.jsonl";
  {
    std::ifstream in(trace("23_vcpu_migrate.jsonl"));
    std::ofstream o(bad);
    std::string line;
    while (std::getline(in, line)) o << (line.find("\"lp\":5") != std::string::npos ? "{\"type\":\"vcpu_migrate\",\"vcpu\":1,\"lp\":64}" : line) << "\n";
  }
  CHECK(replay(bad) != 0);
}
