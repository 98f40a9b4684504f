// Each shipped study runs at a reduced size: its sweep file is valid, every
// point succeeds with no broken invariant, and the figures are drawn.
#include <catch2/catch.hpp>
#include <filesystem>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "../traces/cli_util.h"

using namespace septsim::test;
namespace fs = std::filesystem;

namespace {

// scripts/studies/run NAME --small into a fresh directory; returns it.
fs::path run_small_study(const std::string& name) {
  auto d = temp_dir();
  std::string cmd = "SEPTSIM=" + std::string(SEPTSIM_BINARY_DIR) + "/septsim " + SEPTSIM_SOURCE_DIR +
                    "/scripts/studies/run " + name + " --small -j 2 -o " + d.string() + " >" + (d / "log").string() +
                    " 2>&1";
  int rc = std::system(cmd.c_str());
  INFO(slurp(d / "log"));
  REQUIRE(rc == 0);
  return d;
}

void check_figures(const fs::path& d, std::initializer_list<const char*> figures) {
  for (const char* fig : figures) {
    CHECK(fs::file_size(d / (std::string(fig) + ".png")) > 1000);
    CHECK(fs::file_size(d / (std::string(fig) + ".svg")) > 1000);
  }
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
  auto d = run_small_study("tlb-walk-caches");
  auto m = nlohmann::json::parse(slurp(d / "results" / "manifest.json"));
  REQUIRE(m["points"].size() == 4 * 5 * 2 * 2);
  for (const auto& p : m["points"]) CHECK(p["status"] == "ok");
  check_figures(d, {"stlb-miss-rate", "ept-refs-per-walk", "cycles-per-access"});
}

TEST_CASE("study dynamic-pamt: static PAMT per GiB as the reference computes, Dynamic PAMT freed at teardown",
          "[study]") {
  auto d = run_small_study("dynamic-pamt");
  const auto rows = read_csv(slurp(d / "results" / "dpamt.csv"));
  REQUIRE(rows.size() == 12 * 2 * 2);  // traces x static/dynamic x vcpu/vm cache
  // tdx-seam.md 6.2 / 6.3: 16-byte entries; static PAMT_4K+2M+1G per GiB of
  // TDMR; Dynamic PAMT replaces PAMT_4K by a 1-bit-per-page bitmap and adds
  // two 4 KiB pages per 2 MiB region holding TD pages.
  const uint64_t static_per_gib = 262144 * 16 + 512 * 16 + 16, dynamic_per_gib = 262144 / 8 + 512 * 16 + 16;
  const uint64_t pair_bytes = 2 * 4096;
  std::map<std::string, uint64_t> cache_pages;  // "trace cache" -> pages held, Dynamic PAMT
  for (const auto& r : rows) {
    INFO(r.at("trace") << " dynamic_pamt=" << r.at("seam.dynamic_pamt") << " cache=" << r.at("mmu.tdx_pamt_cache"));
    CHECK(r.at("status") == "ok");
    CHECK(r.at("invariant_violations") == "0");
    CHECK(r.at("pamt_pair_bytes_end") == "0");
    const uint64_t add = std::stoull(r.at("pamt_add"));
    if (r.at("seam.dynamic_pamt") == "false") {
      CHECK(std::stoull(r.at("pamt_static_bytes_per_tdmr_gib")) == static_per_gib);
      CHECK(add == 0);
      continue;
    }
    CHECK(std::stoull(r.at("pamt_static_bytes_per_tdmr_gib")) == dynamic_per_gib);
    // Every touched region gets a pair; the TD's control and Secure-EPT pages add at least one more.
    CHECK(add > std::stoull(r.at("regions_touched")));
    CHECK(std::stoull(r.at("pamt_pair_bytes_populated")) == add * pair_bytes);
    CHECK(r.at("pamt_remove") == r.at("pamt_add"));
    // With every vCPU faulting, per-vCPU caches hold a reserve each; one per-VM cache holds one.
    if (std::stoull(r.at("regions_touched")) >= std::stoull(r.at("vcpus")))
      cache_pages[r.at("trace") + " " + r.at("mmu.tdx_pamt_cache")] = std::stoull(r.at("pamt_cache_pages"));
  }
  REQUIRE(cache_pages.size() == 3 * 2 * 2);  // 16 MiB at 100 %, 64 MiB at 25 and 100 %; 1 and 64 pages
  for (const auto& [key, pages] : cache_pages)
    if (key.ends_with(" vm")) CHECK(pages < cache_pages.at(key.substr(0, key.size() - 3) + " vcpu"));
  check_figures(d, {"pamt-bytes-per-td-gib", "pamt-add-remove", "pamt-cache"});
}
