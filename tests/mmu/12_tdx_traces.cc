// The TD scenario traces under tests/mmu/traces replay through the septsim
// binary with --check; 9x_* traces are bad input and must exit 2.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <sys/wait.h>

namespace {

int replay(const std::string& trace, const std::string& extra = "") {
  const std::string cmd = std::string(SEPTSIM_BINARY_DIR "/septsim replay ") + trace + " --check --quiet " + extra +
                          " >/dev/null 2>&1";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
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

}  // namespace

TEST_CASE("TD boot and teardown traces replay with no broken invariant", "[tdx]") {
  for (const char* t : {"01_td_boot.jsonl", "02_td_teardown.jsonl", "03_convert_4k.jsonl", "04_split_2m_convert_4k.jsonl",
                        "06_access_then_teardown.jsonl", "08_dpamt_split_2m.jsonl"}) {
    INFO(t);
    CHECK(replay(trace(t)) == 0);
  }
}

TEST_CASE("the 2M split trace demotes once, removes only the converted 4K piece and reclaims the rest", "[tdx]") {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_split_stats.json";
  REQUIRE(replay(trace("04_split_2m_convert_4k.jsonl"), "--stats " + out) == 0);
  const std::string json = slurp(out);
  CHECK(stat(json, "seam.calls.tdh_mem_page_demote") == 1);
  CHECK(stat(json, "seam.calls.tdh_mem_page_remove") == 2);  // 0x601000, then 0x7ff000
  CHECK(stat(json, "kvm.tdx.private_removed") == 2);
  CHECK(stat(json, "seam.status.errors") == 0);
  // At teardown: 1 image page and 510 pieces of the split 2M page; 4 tables
  // (3 SEPT.ADDs + the DEMOTE's); TDR, 4 TDCS pages and 2 x (TDVPR + 3 TDCX).
  CHECK(stat(json, "seam.calls.tdh_phymem_page_reclaim") == 1 + 510 + 4 + 13);
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
  // 4 PAGE.ADDs, 8 + 1 AUGs at 4K and one at 2M; 5 SEPT tables; TDR, 4 TDCS
  // pages and 2 x (TDVPR + 3 TDCX).
  CHECK(stat(json, "seam.calls.tdh_phymem_page_reclaim") == 14 + 5 + 13);
  CHECK(stat(json, "seam.calls.tdh_phymem_pamt_add") == stat(json, "seam.calls.tdh_phymem_pamt_remove"));
  CHECK(stat(json, "seam.calls.tdh_phymem_pamt_add") > 0);
  CHECK(stat(json, "seam.calls.tdh_mr_extend") == 4 * 16);
}

TEST_CASE("TD events a VM cannot take are bad input, named by line", "[tdx]") {
  const std::pair<const char*, const char*> cases[] = {
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
  // 0x300000 to shared and 0x101000 (an image page) to shared.
  CHECK(stat(json, "seam.calls.tdh_mem_page_remove") == 2);
  CHECK(stat(json, "seam.calls.tdh_mem_track") == 2);
  CHECK(stat(json, "kvm.tdx.private_removed") == 2);
  CHECK(stat(json, "kvm.tdx.memory_fault_exits") == 1);  // the private write while shared
  CHECK(stat(json, "seam.status.errors") == 0);
  CHECK(stat(json, "seam.pamt.pair_bytes") == 0);
  CHECK(stat(json, "seam.tds") == 0);
}

TEST_CASE("the 2M race trace: the loser's SEPT.ADDs and AUG get BUSY, are retried, and each page maps once", "[tdx]") {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_race_stats.json";
  REQUIRE(replay(trace("07_race_2m.jsonl"), "--stats " + out) == 0);
  const std::string json = slurp(out);
  // Both vCPUs fault 0x400000 at once: one adds three tables and AUGs; the
  // other's SEPT.ADDs overlap those calls and are refused (4 x BUSY, one
  // table twice), it retries and finds the page.
  CHECK(stat(json, "seam.status.busy") == 4);
  CHECK(stat(json, "kvm.pf_retry") == 4);
  CHECK(stat(json, "kvm.pf_spurious") == 1);
  // Three distinct pages, three AUGs; the three tables added once each.
  CHECK(stat(json, "kvm.pf_fixed") == 3);
  CHECK(stat(json, "seam.calls.tdh_mem_page_aug") == 3);
  CHECK(stat(json, "seam.calls.tdh_mem_sept_add") == 3 + 4);  // three tables, four BUSY answers
  CHECK(stat(json, "seam.status.errors") == 4);                   // the BUSY answers, nothing else
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
  const int rc = replay(trace(trace_name), "--set mmu.tdx_merge_policy=" + policy + " " + extra + " --stats " + out);
  REQUIRE(rc == 0);
  return slurp(out);
}

}  // namespace

TEST_CASE("dirty logging splits each private 2M page once, and with merge policy none they stay split", "[tdx][merge]") {
  const std::string json = merge_run("09_merge_after_dirty_log.jsonl", "none");
  CHECK(stat(json, "kvm.tdx.merge.split_ranges") == 4);
  CHECK(stat(json, "seam.calls.tdh_mem_page_demote") == 4);
  CHECK(stat(json, "seam.calls.tdh_mem_page_promote") == 0);
  // Four splits and the piece that went shared: one TRACK and kick each.
  CHECK(stat(json, "seam.calls.tdh_mem_track") == 5);
  CHECK(stat(json, "seam.status.errors") == 0);
}

TEST_CASE("merge policy A promotes every ready range on one NX-recovery tick under one TRACK", "[tdx][merge]") {
  // Ratio 1: the tick visits all four split ranges.
  const std::string json = merge_run("09_merge_after_dirty_log.jsonl", "A", "--set mmu.nx_huge_pages_recovery_ratio=1");
  CHECK(stat(json, "kvm.tdx.merge.promoted") == 4);
  CHECK(stat(json, "seam.calls.tdh_mem_page_promote") == 4);
  CHECK(stat(json, "seam.calls.tdh_mem_range_block") == 5 + 4);  // the splits' and piece's, then one per merge
  CHECK(stat(json, "seam.calls.tdh_mem_track") == 5 + 1);
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
  CHECK(stat(json, "seam.calls.tdh_mem_track") == 5 + 4);
  CHECK(stat(json, "seam.status.errors") == 0);
}

TEST_CASE("merge policy C blocks the split ranges when logging stops and promotes each on its next violation",
          "[tdx][merge]") {
  const std::string json = merge_run("09_merge_after_dirty_log.jsonl", "C");
  CHECK(stat(json, "kvm.tdx.merge.blocked") == 4);
  CHECK(stat(json, "kvm.tdx.merge.promoted") == 4);
  CHECK(stat(json, "seam.calls.tdh_mem_track") == 5 + 1);  // one TRACK for all four BLOCKs
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
  CHECK(stat(json, "kvm.tdx.private_removed") == 1);
  CHECK(stat(json, "seam.status.errors") == 0);
}

TEST_CASE("ranges blocked for a merge survive logging again, a memslot deletion and teardown", "[tdx][merge]") {
  const std::string json = merge_run("12_merge_blocked_edges.jsonl", "C");
  // Three ranges split; blocked when logging stops (2 + 1), 0x600000 again
  // after its violation under renewed logging UNBLOCKed it.
  CHECK(stat(json, "kvm.tdx.merge.split_ranges") == 3);
  CHECK(stat(json, "kvm.tdx.merge.blocked") == 4);
  CHECK(stat(json, "seam.calls.tdh_mem_range_unblock") == 2);  // that violation, and the deleted slot's range
  CHECK(stat(json, "seam.calls.tdh_mem_page_promote") == 0);
  CHECK(stat(json, "kvm.tdx.private_removed") == 512);  // the deleted slot's 2M page, piece by piece
  CHECK(stat(json, "seam.status.errors") == 0);
  CHECK(stat(json, "seam.tds") == 0);
}

TEST_CASE("the Dynamic PAMT split trace: DEMOTE installs the region's pair, the last 4K piece removes it", "[tdx]") {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_dpamt_split_stats.json";
  REQUIRE(replay(trace("08_dpamt_split_2m.jsonl"), "--stats " + out) == 0);
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
  // Removed while the TD runs: 0x601000, then 16 pieces of 0x610000..0x61ffff.
  CHECK(stat(json, "seam.calls.tdh_mem_page_remove") == 1 + 16);
  CHECK(stat(json, "kvm.tdx.private_removed") == 17);
  CHECK(stat(json, "seam.calls.tdh_mem_page_aug") == 2);  // the 2M page, then 0x601000 again at 4K
  // Top-ups: vCPU 0's fault (the 2M accept), the VM's cache for the split,
  // vCPU 1's re-fault; none ran dry (no rule 21: the replay exits 0).
  CHECK(stat(json, "kvm.tdx.pamt_cache_topups") == 3);
  // At teardown: 512 - 17 + 1 pieces, 3 tables (2 SEPT.ADDs + DEMOTE's),
  // TDR, 4 TDCS pages and 2 x (TDVPR + 3 TDCX).
  CHECK(stat(json, "seam.calls.tdh_phymem_page_reclaim") == 496 + 3 + 13);
  CHECK(stat(json, "seam.status.errors") == 0);
  CHECK(stat(json, "kvm.tdx.pamt_cache_pages") == 0);
  CHECK(stat(json, "seam.pamt.pairs") == 0);
  CHECK(stat(json, "seam.pamt.pair_bytes") == 0);
  CHECK(stat(json, "seam.tds") == 0);
  // One cache for the whole VM: the split tops it up the same way.
  CHECK(replay(trace("08_dpamt_split_2m.jsonl"), "--set mmu.tdx_pamt_cache=vm") == 0);
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

TEST_CASE("a guest access to a PENDING private page is counted as the exit KVM would kill the TD for", "[tdx]") {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_pending_access_stats.json";
  REQUIRE(replay(trace("13_access_before_accept.jsonl"), "--stats " + out) == 0);
  const std::string json = slurp(out);
  // The first write finds the page FREE (its exit AUGs it, no count); each
  // of the two reads then exits on the PENDING page; after ACCEPT none does.
  CHECK(stat(json, "kvm.tdx.pending_access_exits") == 2);
  CHECK(stat(json, "seam.status.errors") == 0);
}
