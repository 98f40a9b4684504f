// Each shipped study runs at a reduced size: its sweep file is valid, every
// point succeeds with no broken invariant, and the figures are drawn.
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "../traces/cli_util.h"

using namespace septsim::test;
namespace fs = std::filesystem;

namespace {

// Runs scripts/studies/run NAME --small; checks every point and figure.
fs::path run_study(const std::string& name, size_t points, std::initializer_list<const char*> figures) {
  auto d = temp_dir();
  std::string cmd = "SEPTSIM=" + std::string(SEPTSIM_BINARY_DIR) + "/septsim " + SEPTSIM_SOURCE_DIR +
                    "/scripts/studies/run " + name + " --small -j 2 -o " + d.string() + " >" + (d / "log").string() +
                    " 2>&1";
  int rc = std::system(cmd.c_str());
  INFO(slurp(d / "log"));
  REQUIRE(rc == 0);
  auto m = nlohmann::json::parse(slurp(d / "results" / "manifest.json"));
  REQUIRE(m["points"].size() == points);
  for (const auto& p : m["points"]) CHECK(p["status"] == "ok");
  for (const char* fig : figures) {
    CHECK(fs::file_size(d / (std::string(fig) + ".png")) > 1000);
    CHECK(fs::file_size(d / (std::string(fig) + ".svg")) > 1000);
  }
  return d;
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> cells;
  std::istringstream in(line);
  for (std::string c; std::getline(in, c, ',');) cells.push_back(c);
  return cells;
}

// The value in `column` of the first results.csv row that starts with `row`
// (the point number left out: "TRACE,AXIS1,AXIS2").
unsigned long long cell(const fs::path& dir, const std::string& row, const std::string& column) {
  std::istringstream in(slurp(dir / "results" / "results.csv"));
  std::string line;
  std::getline(in, line);
  auto header = split(line);
  auto col = size_t(std::find(header.begin(), header.end(), column) - header.begin());
  REQUIRE(col < header.size());
  while (std::getline(in, line))
    if (line.find("," + row + ",") != std::string::npos) return std::stoull(split(line).at(col));
  FAIL("no row " << row);
  return 0;
}

// A CSV without quoted fields, as rows of column -> value.
std::vector<std::map<std::string, std::string>> read_csv(const std::string& text) {
  auto split = [](const std::string& line) {
    std::vector<std::string> f;
    std::stringstream s(line);
    for (std::string x; std::getline(s, x, ',');) f.push_back(x);
    return f;
  };
  std::stringstream in(text);
  std::string line;
  std::getline(in, line);
  const auto header = split(line);
  std::vector<std::map<std::string, std::string>> rows;
  while (std::getline(in, line)) {
    const auto f = split(line);
    REQUIRE(f.size() == header.size());
    auto& r = rows.emplace_back();
    for (size_t i = 0; i < f.size(); ++i) r[header[i]] = f[i];
  }
  return rows;
}

}  // namespace

TEST_CASE("study tlb-walk-caches runs at reduced size", "[study]") {
  run_study("tlb-walk-caches", 4 * 5 * 2 * 2, {"stlb-miss-rate", "ept-refs-per-walk", "cycles-per-access"});
}

TEST_CASE("study mmu-metadata runs at reduced size", "[study]") {
  auto d = run_study("mmu-metadata", 3 * 4 * 2, {"sp-meta-per-gib", "slot-zap-refaults", "slot-zap-cycles"});
  // A fast zap throws away the other slots' mappings too, a slot zap only
  // the churned slot's: the 16 pages both vCPUs read there, in 3 rounds.
  CHECK(cell(d, "traces/churn-hostthp.jsonl,external-in-union,zap-memslot", "kvm.slot_zap.refaults") == 16 * 3);
  CHECK(cell(d, "traces/churn-hostthp.jsonl,external-in-union,zap-all-fast", "kvm.slot_zap.refaults") > 16 * 3);
  CHECK(cell(d, "traces/churn-hostthp.jsonl,external-in-union,zap-memslot", "kvm.slot_zap.rebuilt_pages") == 0);
  CHECK(cell(d, "traces/churn-hostthp.jsonl,external-separate,zap-memslot", "kvm.sp_meta.bytes_per_sp") == 192);
}

TEST_CASE("study cached-roots runs at reduced size", "[study]") {
  auto d = run_study("cached-roots", 2 * 8 * 2 * 2, {"nested-roots-built", "nested-refaults", "nested-cycles-per-entry"});
  // Axes: prev_roots, INVEPT policy, shadow-page budget (0: a root goes with its last reference).
  auto one = [&](const char* axes, const char* column) {
    return cell(d, std::string("traces/nested-ept-1vcpu.jsonl,") + axes, column);
  };
  // Six L2s round-robin on a vCPU fit in the current root plus 5 cached
  // ones: more prev_roots than that changes nothing, fewer misses more.
  CHECK(one("5,free,0", "nested.root_builds") == one("8,free,0", "nested.root_builds"));
  CHECK(one("1,free,0", "nested.root_builds") > one("3,free,0", "nested.root_builds"));
  // Upstream, an INVEPT for the EPTP just run frees the vCPU's only
  // reference to that root: without a budget it is rebuilt at the next
  // entry to that L2 (all but possibly the last). Kept roots are never
  // rebuilt, only synced.
  unsigned long long invepts = one("8,free,0", "nested.invept_single");
  CHECK(invepts > 0);
  CHECK(one("8,free,0", "nested.root_rebuilds") <= invepts);
  CHECK(one("8,free,0", "nested.root_rebuilds") + 1 >= invepts);
  CHECK(one("8,keep-sync,0", "nested.root_rebuilds") == 0);
  CHECK(one("8,keep-sync,0", "nested.syncs") <= invepts);
  CHECK(one("8,keep-sync,0", "nested.syncs") + 1 >= invepts);
  CHECK(one("8,keep-sync,0", "nested.refaults") < one("8,free,0", "nested.refaults"));
  // With room in mmu_page_hash the freed root is found again, synced, not rebuilt.
  CHECK(one("8,free,4096", "nested.root_rebuilds") == 0);
  CHECK(one("8,free,4096", "nested.refaults") == one("8,keep-sync,0", "nested.refaults"));
}

TEST_CASE("study dynamic-pamt: static PAMT per GiB as the reference computes, Dynamic PAMT freed at teardown",
          "[study]") {
  auto d = run_study("dynamic-pamt", 12 * 2 * 3,
                     {"pamt-bytes-per-td-gib", "pamt-add-remove", "pamt-cache", "pamt-kept"});
  const auto rows = read_csv(slurp(d / "results" / "dpamt.csv"));
  REQUIRE(rows.size() == 12 * 2 * 3);  // traces x static/dynamic x vcpu/vm/kmem-cache
  // pamt_manager.c: 16-byte entries; static PAMT_4K+2M+1G per GiB of
  // TDMR; Dynamic PAMT replaces PAMT_4K by a 1-bit-per-page bitmap and adds
  // two 4 KiB pages per 2 MiB region holding TD pages.
  const uint64_t static_per_gib = 262144 * 16 + 512 * 16 + 16, dynamic_per_gib = 262144 / 8 + 512 * 16 + 16;
  const uint64_t pair_bytes = 2 * 4096;
  std::map<std::string, uint64_t> cache_pages;  // "trace cache" -> pages held, Dynamic PAMT
  for (const auto& r : rows) {
    INFO(r.at("trace") << " dynamic_pamt=" << r.at("seam.dynamic_pamt") << " cache=" << r.at("mmu.tdx_pamt_cache"));
    CHECK(r.at("status") == "ok");
    CHECK(r.at("invariant_violations") == "0");
    const uint64_t add = std::stoull(r.at("pamt_add"));
    const bool kmem = r.at("mmu.tdx_pamt_cache") == "kmem-cache";
    if (kmem && r.at("seam.dynamic_pamt") == "true") {
      // The kmem_cache's free S-EPT pages keep their regions' pairs: at
      // least one pair, at most one per page; the rest were removed.
      const uint64_t kept = std::stoull(r.at("pamt_pair_bytes_end")), pages = std::stoull(r.at("kmem_cache_pages_end"));
      CHECK(pages > 0);
      CHECK(kept >= pair_bytes);
      CHECK(kept <= pages * pair_bytes);
      CHECK(std::stoull(r.at("pamt_remove")) + kept / pair_bytes == add);
    } else {
      CHECK(r.at("pamt_pair_bytes_end") == "0");
      CHECK(r.at("kmem_cache_pages_end") == "0");
    }
    if (r.at("seam.dynamic_pamt") == "false") {
      CHECK(std::stoull(r.at("pamt_static_bytes_per_tdmr_gib")) == static_per_gib);
      CHECK(add == 0);
      continue;
    }
    CHECK(std::stoull(r.at("pamt_static_bytes_per_tdmr_gib")) == dynamic_per_gib);
    // Every touched region gets a pair; the TD's control and Secure-EPT pages add at least one more.
    CHECK(add > std::stoull(r.at("regions_touched")));
    CHECK(std::stoull(r.at("pamt_pair_bytes_populated")) == add * pair_bytes);
    if (!kmem) CHECK(r.at("pamt_remove") == r.at("pamt_add"));
    // With every vCPU faulting, per-vCPU caches hold a reserve each; one per-VM cache holds one.
    if (std::stoull(r.at("regions_touched")) >= std::stoull(r.at("vcpus")))
      cache_pages[r.at("trace") + " " + r.at("mmu.tdx_pamt_cache")] = std::stoull(r.at("pamt_cache_pages"));
  }
  REQUIRE(cache_pages.size() == 3 * 2 * 3);  // 16 MiB at 100 %, 64 MiB at 25 and 100 %; 1 and 64 pages
  for (const auto& [key, pages] : cache_pages)
    if (key.ends_with(" vm")) CHECK(pages < cache_pages.at(key.substr(0, key.size() - 3) + " vcpu"));
}

TEST_CASE("study merge-policies: none never merges, A/B/C merge, C shares one TRACK, merged ranges miss the TLB less",
          "[study]") {
  auto d = run_study("merge-policies", 4 * 4 * 3,
                     {"merge-seamcalls", "merge-cycles", "merge-stlb-misses", "merge-walk-cycles", "merge-promoted",
                      "merge-wait", "merge-ratio"});
  // Columns are the measured phase's; rows are TRACE,POLICY,RATIO. The
  // workload (--small): 8 or 32 split ranges; 2 of them hold a 4K piece the
  // guest writes (AUG: PENDING) right after logging stops and ACCEPTs only
  // after the first NX-recovery tick.
  const unsigned long long late_accepts = 2;
  auto at = [&](const std::string& trace, const std::string& axes, const char* column) {
    return cell(d, "traces/" + trace + ".jsonl," + axes, column);
  };
  auto stlb_misses = [&](const std::string& trace, const std::string& axes) {
    unsigned long long sum = 0;
    for (int v = 0; v < 4; ++v) sum += at(trace, axes, ("vcpu" + std::to_string(v) + ".stlb.misses").c_str());
    return sum;
  };
  for (const char* trace : {"wssmall-f1000", "wssmall-f8000", "wslarge-f1000", "wslarge-f8000"}) {
    INFO(trace);
    const unsigned long long ranges = std::string(trace).starts_with("wssmall") ? 8 : 32;
    for (const char* ratio : {"1", "10", "60"}) {
      INFO("ratio " << ratio);
      CHECK(at(trace, std::string("none,") + ratio, "kvm.tdx.merge.promoted") == 0);
      CHECK(at(trace, std::string("none,") + ratio, "seam.calls.tdh_mem_page_promote") == 0);
      CHECK(at(trace, std::string("none,") + ratio, "kvm.tdx.merge.candidates") == ranges);
      for (const char* policy : {"none", "A", "B", "C"})
        CHECK(at(trace, std::string(policy) + "," + ratio, "invariant_violations") == 0);
    }
    for (const char* axes : {"A,1", "A,60", "B,60", "C,60"}) {
      INFO(axes);
      CHECK(at(trace, axes, "kvm.tdx.merge.promoted") > 0);
      // Every attempt is one PROMOTE of a BLOCKed range; a refused one is UNBLOCKed.
      CHECK(at(trace, axes, "seam.calls.tdh_mem_page_promote") == at(trace, axes, "kvm.tdx.merge.promote_attempts"));
      CHECK(at(trace, axes, "seam.calls.tdh_mem_range_block") >= at(trace, axes, "kvm.tdx.merge.promote_attempts"));
      CHECK(at(trace, axes, "seam.calls.tdh_mem_range_unblock") == at(trace, axes, "kvm.tdx.merge.refused"));
    }
    // Ratio 1: the first tick tries every range under one TRACK; the two
    // with a PENDING piece are refused, the second tick merges them.
    CHECK(at(trace, "A,1", "kvm.tdx.merge.promoted") == ranges);
    CHECK(at(trace, "A,1", "kvm.tdx.merge.refused") == late_accepts);
    CHECK(at(trace, "A,1", "kvm.tdx.merge.promote_attempts") == ranges + late_accepts);
    CHECK(at(trace, "A,1", "seam.calls.tdh_mem_track") == 2);
    // A smaller ratio visits more ranges per tick.
    CHECK(at(trace, "A,1", "kvm.tdx.merge.promoted") >= at(trace, "A,10", "kvm.tdx.merge.promoted"));
    CHECK(at(trace, "A,10", "kvm.tdx.merge.promoted") >= at(trace, "A,60", "kvm.tdx.merge.promoted"));
    // B takes a TRACK per attempt; C one TRACK when logging stops for all the
    // ranges ready then, which leaves out the two with a piece not yet AUGed.
    CHECK(at(trace, "B,60", "seam.calls.tdh_mem_track") == at(trace, "B,60", "kvm.tdx.merge.promote_attempts"));
    // The guest's write of a late piece AUGs it: B tries that range on the
    // violation, and the module refuses (a PENDING child).
    CHECK(at(trace, "B,60", "kvm.tdx.merge.refused") == late_accepts);
    CHECK(at(trace, "C,60", "seam.calls.tdh_mem_track") == 1);
    CHECK(at(trace, "C,60", "kvm.tdx.merge.candidates") == late_accepts);
    CHECK(at(trace, "C,60", "seam.calls.tdh_mem_track") * at(trace, "B,60", "kvm.tdx.merge.promoted") <
          at(trace, "B,60", "seam.calls.tdh_mem_track") * at(trace, "C,60", "kvm.tdx.merge.promoted"));
    // Merged early, the 2M mappings cut STLB misses below upstream's.
    CHECK(stlb_misses(trace, "A,1") < stlb_misses(trace, "none,60"));
    CHECK(stlb_misses(trace, "C,60") < stlb_misses(trace, "none,60"));
  }
  // B merges one range per fault: with a fault every 1 000 accesses all 8
  // small-set ranges are 2M early enough to beat none too.
  CHECK(stlb_misses("wssmall-f1000", "B,60") < stlb_misses("wssmall-f1000", "none,60"));
}
