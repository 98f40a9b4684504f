// The pieces behind the reports: derived metrics from a phase's counters,
// histogram buckets in value order, impossible geometry, the statistics'
// descriptions, and compressed or piped trace inputs.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "compress_util.h"
#include "model/config.h"
#include "model/stats.h"
#include "traces/config_check.h"
#include "traces/derived.h"
#include "traces/reader.h"
#include "traces/stat_catalog.h"
#include "traces/trace_input.h"

using namespace septsim;
namespace fs = std::filesystem;

namespace {

nlohmann::json phase_of(const nlohmann::json& counters, const nlohmann::json& hists = nlohmann::json::object()) {
  return {{"name", "p"}, {"counters", counters}, {"histograms", hists}};
}

fs::path scratch(const std::string& name) {
  auto d = fs::temp_directory_path() / ("septsim-reports-" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d / name;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("derived metrics sum every vCPU's counters and follow their formulas", "[derived]") {
  nlohmann::json c = {{"vcpu0.accesses_gpa", 600}, {"vcpu1.accesses_gva", 400}, {"vcpu0.dtlb.misses", 50},
                      {"vcpu1.dtlb.misses", 30}, {"vcpu0.stlb.misses", 10}, {"vcpu1.stlb.misses", 10},
                      {"vcpu0.tlb_hits", 980}, {"vcpu0.walks", 15}, {"vcpu1.walks", 5},
                      {"vcpu0.walk.refs.guest", 40}, {"vcpu1.walk.refs.guest", 40}, {"vcpu0.walk.refs.ept", 300},
                      {"vcpu0.cycles", 20000}, {"vcpu1.cycles", 30000}, {"vcpu0.ept_violations", 3},
                      {"vcpu0.vmexits", 4}, {"vcpu0.tlb.fills_4k", 12}, {"vcpu1.tlb.fills_4k", 3},
                      {"vcpu0.tlb.fills_2m", 5},
                      // Not per-vCPU counters: must not be summed in.
                      {"vcpux.accesses_gpa", 7}, {"nested.l2_accesses", 9}};
  nlohmann::json h = {{"vcpu0.walk.cycles", {{"count", 15}, {"sum", 4000}}},
                      {"vcpu1.walk.cycles", {{"count", 5}, {"sum", 1000}}}};
  auto d = traces::derive(phase_of(c, h), false);
  CHECK(d["accesses"] == 1000);
  CHECK(d["l1_dtlb_misses_per_1k_accesses"].get<double>() == Approx(80.0));
  CHECK(d["stlb_misses_per_1k_accesses"].get<double>() == Approx(20.0));
  CHECK(d["walks_completed_per_1k_accesses.4k"].get<double>() == Approx(15.0));
  CHECK(d["walks_completed_per_1k_accesses.2m"].get<double>() == Approx(5.0));
  CHECK(d["walks_completed_per_1k_accesses.1g"].get<double>() == Approx(0.0));
  CHECK(d["tlb_hit_rate"].get<double>() == Approx(0.98));
  CHECK(d["walk_cycle_share"].get<double>() == Approx(0.1));
  CHECK(d["refs_per_walk.guest"].get<double>() == Approx(4.0));
  CHECK(d["refs_per_walk.ept"].get<double>() == Approx(15.0));
  CHECK(d["refs_per_walk.total"].get<double>() == Approx(19.0));
  CHECK(d["cycles_per_access"].get<double>() == Approx(50.0));
  CHECK(d["ept_violations_per_1k_accesses"].get<double>() == Approx(3.0));
  CHECK(d["vmexits_per_1k_accesses"].get<double>() == Approx(4.0));
  CHECK_FALSE(d.contains("tdx.seamcalls"));
}

TEST_CASE("a derived ratio over nothing is null, not zero", "[derived]") {
  auto d = traces::derive(phase_of({{"vcpu0.accesses_gpa", 0}}), false);
  CHECK(d["accesses"] == 0);
  CHECK(d["l1_dtlb_misses_per_1k_accesses"].is_null());
  CHECK(d["refs_per_walk.total"].is_null());
}

TEST_CASE("the TDX block counts SEAMCALLs by leaf apart from TDCALLs", "[derived]") {
  nlohmann::json c = {{"seam.calls.tdh_mem_page_aug", 6}, {"seam.calls.tdh_mem_sept_add", 2},
                      {"seam.calls.tdh_mem_page_remove", 0}, {"seam.calls.tdg_mem_page_accept", 6},
                      {"seam.td_exits", 9}, {"seam.cycles", 1400}, {"seam.pamt.bytes", 4096},
                      {"kvm.tdx.merge.split_ranges", 3}, {"kvm.tdx.merge.promoted", 1}, {"seam.tds", 1}};
  REQUIRE(traces::has_td(phase_of(c)));
  auto d = traces::derive(phase_of(c), true);
  CHECK(d["tdx.seamcalls"] == 8);
  CHECK(d["tdx.seamcalls.tdh_mem_page_aug"] == 6);
  CHECK(d["tdx.seamcalls.tdh_mem_sept_add"] == 2);
  CHECK_FALSE(d.contains("tdx.seamcalls.tdh_mem_page_remove"));  // leaves never called are left out
  CHECK(d["tdx.tdcalls"] == 6);
  CHECK(d["tdx.td_exits"] == 9);
  CHECK(d["tdx.seam_cycles"] == 1400);
  CHECK(d["tdx.seam_cycles_per_seamcall"].get<double>() == Approx(100.0));
  CHECK(d["tdx.pamt_bytes"] == 4096);
  CHECK(d["tdx.splits"] == 3);
  CHECK(d["tdx.merges"] == 1);
  CHECK_FALSE(traces::has_td(phase_of({{"seam.calls.tdh_mem_page_aug", 0}, {"seam.tds", 0}})));
}

TEST_CASE("every derived metric the code writes is documented, and only those", "[derived]") {
  nlohmann::json c = {{"vcpu0.accesses_gpa", 1}, {"seam.calls.tdh_mem_page_aug", 1}};
  auto d = traces::derive(phase_of(c), true);
  std::set<std::string> documented;
  for (const auto& m : traces::derived_metrics()) documented.insert(m.name);
  for (const auto& [k, v] : d.items()) {
    std::string key = k.starts_with("tdx.seamcalls.")     ? "tdx.seamcalls.<leaf>"
                      : k.starts_with("tdx.seam_cycles.") ? "tdx.seam_cycles.<leaf>"
                                                          : k;
    INFO(k);
    CHECK(documented.count(key) == 1);
  }
  CHECK(d.size() == documented.size());  // one leaf called: one key per documented name
}

TEST_CASE("histogram buckets come out in value order with their bounds", "[stats]") {
  model::StatsRegistry reg;
  auto& h = reg.histogram("x.wait", "test");
  for (u64 v : {2000ull, 100ull, 5ull, 0ull, 1ull, 1ull << 45}) h.add(v);
  auto b = reg.to_json()["total"]["histograms"]["x.wait"]["buckets"];
  REQUIRE(b.size() == 6);
  CHECK(b[0] == nlohmann::json({{"from", 0}, {"below", 1}, {"count", 1}}));
  CHECK(b[1] == nlohmann::json({{"from", 1}, {"below", 2}, {"count", 1}}));
  CHECK(b[2] == nlohmann::json({{"from", 4}, {"below", 8}, {"count", 1}}));
  CHECK(b[3] == nlohmann::json({{"from", 64}, {"below", 128}, {"count", 1}}));
  CHECK(b[4] == nlohmann::json({{"from", 1024}, {"below", 2048}, {"count", 1}}));
  // The last bucket is open-ended: it also holds values beyond its start.
  CHECK(b[5]["from"] == (1ull << 38));
  CHECK_FALSE(b[5].contains("below"));
}

TEST_CASE("the registry lists every statistic with its kind and description", "[stats]") {
  model::StatsRegistry reg;
  reg.counter("b.count", "a counter");
  reg.gauge("a.level", "a gauge");
  reg.histogram("c.cycles", "a histogram");
  auto l = reg.list();
  REQUIRE(l.size() == 3);
  CHECK(l[0].name == "a.level");
  CHECK(l[0].kind == model::StatsRegistry::Kind::Gauge);
  CHECK(l[1].kind == model::StatsRegistry::Kind::Counter);
  CHECK(l[2].kind == model::StatsRegistry::Kind::Histogram);
  CHECK(l[2].description == "a histogram");
}

TEST_CASE("stat units and modules follow from the names", "[stats]") {
  using K = model::StatsRegistry::Kind;
  CHECK(traces::stat_unit("vcpu3.walk.cycles", K::Histogram) == "cycles");
  CHECK(traces::stat_unit("kvm.mmu_lock.wait", K::Histogram) == "cycles");
  CHECK(traces::stat_unit("seam.pamt.bytes", K::Gauge) == "bytes");
  CHECK(traces::stat_unit("kvm.sp_meta.mapped_mib", K::Gauge) == "MiB");
  CHECK(traces::stat_unit("vcpu0.dtlb.misses", K::Counter) == "count");
  CHECK(traces::stat_module("vcpu12.stlb.hits") == "model/tlb (tlb_hierarchy)");
  CHECK(traces::stat_module("vcpu0.walk.refs.ept").starts_with("model/walk"));
  CHECK(traces::stat_module("kvm.tdx.merge.promoted").starts_with("mmu"));
  CHECK(traces::stat_module("seam.td_exits").starts_with("seam"));
  CHECK(traces::stat_module("unknown.key").empty());
}

TEST_CASE("impossible TLB and cache geometry is refused naming the keys", "[config]") {
  model::Config ok;
  CHECK(traces::config_problems(ok).empty());
  model::Config spr;
  spr.apply_preset("sapphire-rapids");
  CHECK(traces::config_problems(spr).empty());

  auto first = [](std::initializer_list<std::pair<const char*, const char*>> sets) {
    model::Config c;
    for (const auto& [k, v] : sets) c.set(k, v);
    auto p = traces::config_problems(c);
    return p.empty() ? std::string() : p.front();
  };
  CHECK(first({{"tlb.stlb.entries", "1000"}}) ==
        "tlb.stlb.entries = 1000 is not a multiple of tlb.stlb.ways = 12 (83 sets of 12 ways hold only 996 entries)");
  CHECK(first({{"tlb.l1d.4k.ways", "128"}}).starts_with("tlb.l1d.4k.ways = 128 exceeds tlb.l1d.4k.entries = 64"));
  CHECK(first({{"tlb.stlb_1g.entries", "0"}}).find("zero sets") != std::string::npos);
  CHECK(first({{"tlb.l1d.2m.ways", "0"}}).find("zero ways") != std::string::npos);
  // A disabled paging-structure cache, or pwc.ways above its entries (fully associative), is fine.
  CHECK(first({{"pwc.ept.pd.entries", "0"}, {"pwc.ways", "64"}}).empty());
  CHECK(first({{"pwc.guest.pd.entries", "30"}}) ==
        "pwc.guest.pd.entries = 30 is not a multiple of pwc.ways = 4 (7 sets of 4 ways hold only 28 entries)");
  REQUIRE_THROWS_AS(traces::check_config([] {
    model::Config c;
    c.set("tlb.stlb.ways", "7");
    return c;
  }(), "config"), model::ConfigError);
}

TEST_CASE("gzip, xz and zstd inputs are recognised by their bytes and decompressed", "[input]") {
  std::string text = "{\"format\":\"septsim-trace\",\"version\":1}\n";
  for (int i = 0; i < 2000; ++i) text += "{\"type\":\"phase\",\"name\":\"p" + std::to_string(i) + "\"}\n";
  struct Case {
    std::string bytes;
    traces::Compression kind;
  };
  for (const auto& c : {Case{test::gzip_bytes(text), traces::Compression::Gzip},
                        Case{test::xz_bytes(text), traces::Compression::Xz},
                        Case{test::zstd_bytes(text), traces::Compression::Zstd}}) {
    auto p = scratch("in.trace");  // no telling extension
    std::ofstream(p, std::ios::binary) << c.bytes;
    CHECK(traces::detect_compression(p.string()) == c.kind);
    std::string copy;
    {
      traces::TraceInput in(p.string());
      CHECK(in.is_copy());
      CHECK(in.display() == p.string());
      CHECK(slurp(in.path()) == text);
      copy = in.path();
    }
    CHECK_FALSE(fs::exists(copy));  // the temporary copy goes with the TraceInput
  }
  auto plain = scratch("plain.jsonl");
  std::ofstream(plain) << text;
  traces::TraceInput in(plain.string());
  CHECK_FALSE(in.is_copy());
  CHECK(in.path() == plain.string());
}

TEST_CASE("truncated compressed data is an error naming the file", "[input]") {
  std::string text(100000, 'x');
  for (const std::string& bytes : {test::gzip_bytes(text), test::xz_bytes(text), test::zstd_bytes(text)}) {
    auto p = scratch("cut.bin");
    std::ofstream(p, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    try {
      traces::TraceInput in(p.string());
      FAIL("no error for " << p);
    } catch (const traces::TraceError& e) {
      CHECK(std::string(e.what()).starts_with(p.string() + ": corrupt compressed data"));
    }
  }
}
