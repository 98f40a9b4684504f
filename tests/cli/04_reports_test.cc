// What a replay reports: the derived metrics per phase (in the summary and
// the stats file, recomputed here from the counters), the TDX block, the
// --check line, histogram order, and traces read from standard input or
// compressed.
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "../traces/cli_util.h"
#include "../traces/compress_util.h"

using namespace septsim::test;
namespace fs = std::filesystem;

namespace {

nlohmann::json replay_stats(const std::string& trace, const std::string& extra = "") {
  auto stats = temp_dir() / "s.json";
  auto r = run_septsim("replay " + trace + " -q --stats " + stats.string() + " " + extra);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(slurp(stats));
}

double sum_vcpu(const nlohmann::json& counters, const std::string& suffix) {
  std::regex re("^vcpu[0-9]+\\." + std::regex_replace(suffix, std::regex("\\."), "\\.") + "$");
  double s = 0;
  for (const auto& [k, v] : counters.items())
    if (std::regex_match(k, re)) s += v.get<double>();
  return s;
}

// Runs `cmd` through the shell (for redirections) and captures its output.
CliResult run_shell(const std::string& cmd) {
  auto d = temp_dir();
  int st = std::system((cmd + " >" + (d / "out").string() + " 2>" + (d / "err").string()).c_str());
  CliResult r;
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = slurp(d / "out");
  r.err = slurp(d / "err");
  return r;
}

std::string septsim_bin() { return std::string(SEPTSIM_BINARY_DIR) + "/septsim"; }

}  // namespace

TEST_CASE("the summary prints the derived metrics with a column per phase and the total", "[report]") {
  auto r = run_septsim("replay " + sample_vm0_trace());
  REQUIRE(r.exit_code == 0);
  std::regex header(" per phase \\(docs/stats.md\\) +warmup +measured +total\n");
  CHECK(std::regex_search(r.out, header));
  for (const char* row : {"L1 DTLB misses / 1000 accesses", "STLB misses / 1000 accesses",
                          "share of vCPU cycles in walks", "guest refs / walk", "EPT refs / walk", "cycles / access",
                          "EPT violations / 1000 accesses"})
    CHECK(r.out.find(row) != std::string::npos);
  CHECK(r.out.find("TDX module") == std::string::npos);  // not a TD
}

TEST_CASE("each phase's derived metrics are its counters put through the documented formulas", "[report]") {
  auto j = replay_stats(sample_vm0_trace());
  auto scopes = j["stats"]["phases"];
  scopes.push_back(j["stats"]["total"]);
  for (const auto& ph : scopes) {
    INFO(ph["name"]);
    const auto& c = ph["counters"];
    const auto& d = ph["derived"];
    double acc = sum_vcpu(c, "accesses_gpa") + sum_vcpu(c, "accesses_gva");
    double walks = sum_vcpu(c, "walks");
    REQUIRE(acc > 0);
    REQUIRE(walks > 0);
    CHECK(d["accesses"].get<double>() == acc);
    CHECK(d["l1_dtlb_misses_per_1k_accesses"].get<double>() == Approx(1000 * sum_vcpu(c, "dtlb.misses") / acc).epsilon(1e-3));
    CHECK(d["stlb_misses_per_1k_accesses"].get<double>() == Approx(1000 * sum_vcpu(c, "stlb.misses") / acc).epsilon(1e-3));
    CHECK(d["refs_per_walk.ept"].get<double>() == Approx(sum_vcpu(c, "walk.refs.ept") / walks).epsilon(1e-3));
    CHECK(d["cycles_per_access"].get<double>() == Approx(sum_vcpu(c, "cycles") / acc).epsilon(1e-3));
    CHECK(d["ept_violations_per_1k_accesses"].get<double>() ==
          Approx(1000 * sum_vcpu(c, "ept_violations") / acc).epsilon(1e-3).margin(1e-4));
    double walk_cycles = 0;
    for (const auto& [k, h] : ph["histograms"].items())
      if (std::regex_match(k, std::regex("^vcpu[0-9]+\\.walk\\.cycles$"))) walk_cycles += h["sum"].get<double>();
    CHECK(d["walk_cycle_share"].get<double>() == Approx(walk_cycles / sum_vcpu(c, "cycles")).epsilon(1e-3).margin(1e-4));
    CHECK(d["walk_cycle_share"].get<double>() > 0);
    CHECK(d["walk_cycle_share"].get<double>() < 1);
  }
}

TEST_CASE("a TD's report has the TDX block: SEAMCALLs by leaf, TD exits, SEAMCALL cycles, PAMT bytes", "[report][tdx]") {
  auto d = temp_dir();
  auto td = (d / "td.jsonl").string();
  REQUIRE(run_septsim("gen td-boot -o " + td).exit_code == 0);
  auto j = replay_stats(td);
  const auto& total = j["stats"]["total"];
  const auto& der = total["derived"];
  uint64_t seamcalls = 0;
  for (const auto& [k, v] : total["counters"].items())
    if (k.starts_with("seam.calls.tdh_")) {
      seamcalls += v.get<uint64_t>();
      if (v.get<uint64_t>()) CHECK(der["tdx.seamcalls." + k.substr(11)] == v);
    }
  REQUIRE(seamcalls > 0);
  CHECK(der["tdx.seamcalls"] == seamcalls);
  CHECK(der["tdx.td_exits"] == total["counters"]["seam.td_exits"]);
  CHECK(der["tdx.seam_cycles"] == total["counters"]["seam.cycles"]);
  CHECK(der["tdx.pamt_bytes"] == total["counters"]["seam.pamt.bytes"]);
  CHECK(der["tdx.pamt_bytes"].get<uint64_t>() > 0);
  auto r = run_septsim("replay " + td);
  CHECK(r.out.find(" TDX module\n") != std::string::npos);
  CHECK(r.out.find("TDH.MNG.CREATE") != std::string::npos);
  CHECK(r.out.find("PAMT bytes (phase end)") != std::string::npos);
}

TEST_CASE("replay --check says how many checks ran when nothing broke", "[report][check]") {
  auto r = run_septsim("replay " + sample_trace() + " --check");
  REQUIRE(r.exit_code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(r.out, m, std::regex("invariants: 0 broken, ([0-9]+) checks")));
  CHECK(std::stoul(m[1]) > 1);  // after each VM-wide event and at the end
  // -q stays silent; the stats file keeps the count.
  auto stats = temp_dir() / "s.json";
  auto q = run_septsim("replay " + sample_trace() + " --check -q --stats " + stats.string());
  CHECK(q.out.empty());
  CHECK(q.err.empty());
  CHECK(nlohmann::json::parse(slurp(stats))["invariant_checks"] == std::stoul(m[1]));
  // Without --check nothing claims invariants were checked.
  CHECK(run_septsim("replay " + sample_trace()).out.find("invariants:") == std::string::npos);
}

TEST_CASE("histogram buckets in the stats file are in value order", "[report]") {
  auto j = replay_stats(sample_trace());
  size_t seen = 0;
  for (const auto& [name, h] : j["stats"]["total"]["histograms"].items()) {
    uint64_t last = 0, count = 0;
    bool first = true;
    for (const auto& b : h["buckets"]) {
      INFO(name);
      if (!first) CHECK(b["from"].get<uint64_t>() > last);
      if (b.contains("below")) CHECK(b["below"].get<uint64_t>() > b["from"].get<uint64_t>());
      last = b["from"], first = false, count += b["count"].get<uint64_t>();
    }
    CHECK(count == h["count"].get<uint64_t>());
    seen += h["buckets"].size();
  }
  CHECK(seen > 4);  // the walk-cycle histograms span several buckets
}

TEST_CASE("replay - reads the trace from standard input", "[input]") {
  auto d = temp_dir();
  auto r = run_shell(septsim_bin() + " replay - -q --stats " + (d / "stdin.json").string() + " < " + sample_trace());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto piped = nlohmann::json::parse(slurp(d / "stdin.json"));
  auto direct = replay_stats(sample_trace());
  CHECK(piped["trace"]["path"] == "-");
  CHECK(piped["trace"]["fnv1a64"] == direct["trace"]["fnv1a64"]);
  CHECK(piped["stats"] == direct["stats"]);
}

TEST_CASE("gzip, xz and zstd compressed traces replay like the plain one", "[input]") {
  auto d = temp_dir();
  auto plain = replay_stats(sample_trace());
  std::string text = slurp(sample_trace());
  for (const auto& [ext, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"gz", gzip_bytes(text)}, {"xz", xz_bytes(text)}, {"zst", zstd_bytes(text)}}) {
    INFO(ext);
    auto p = d / ("default.jsonl." + ext);
    std::ofstream(p, std::ios::binary) << bytes;
    auto j = replay_stats(p.string());
    CHECK(j["stats"] == plain["stats"]);
    CHECK(j["trace"]["fnv1a64"] == plain["trace"]["fnv1a64"]);  // the checksum of the trace, not of its packing
    CHECK(j["trace"]["path"] == "default.jsonl." + ext);
    CHECK(j["trace"]["compression"] == (ext == "zst" ? "zstd" : ext == "gz" ? "gzip" : "xz"));
  }
  // A compressed trace piped in is recognised too.
  auto r = run_shell(septsim_bin() + " replay - -q --stats " + (d / "p.json").string() + " < " + (d / "default.jsonl.zst").string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(slurp(d / "p.json"))["stats"] == plain["stats"]);
}

TEST_CASE("an error in a compressed trace names the compressed file and the line", "[input][badinput]") {
  auto d = temp_dir();
  auto p = d / "bad.jsonl.gz";
  std::ofstream(p, std::ios::binary) << gzip_bytes("{\"format\":\"septsim-trace\",\"version\":1}\n"
                                                   "{\"type\":\"vm_create\",\"vcpus\":1}\n{\"type\":\"teleport\"}\n");
  auto stats = d / "s.json";
  auto r = run_septsim("replay " + p.string() + " --stats " + stats.string());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(p.string() + ":3:") != std::string::npos);
  CHECK(r.err.find("septsim-trace-") == std::string::npos);  // not the temporary copy
  CHECK_FALSE(fs::exists(stats));
  auto cut = d / "cut.jsonl.xz";
  std::string xz = xz_bytes(slurp(sample_trace()));
  std::ofstream(cut, std::ios::binary) << xz.substr(0, xz.size() / 2);
  auto c = run_septsim("replay " + cut.string());
  CHECK(c.exit_code == 2);
  CHECK(c.err.find(cut.string() + ": corrupt compressed data") != std::string::npos);
}
