// septsim sweep: expansion, CSV stability, a failing point, and the GNU
// Parallel and Slurm job lists run for real.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../traces/cli_util.h"

using namespace septsim::test;
namespace fs = std::filesystem;

namespace {

std::string tiny_trace(const fs::path& dir, const std::string& name, int pages) {
  auto p = dir / name;
  std::ofstream(p) << "{\"format\":\"septsim-trace\",\"version\":1}\n"
                   << "{\"type\":\"vm_create\",\"vcpus\":1}\n"
                   << "{\"type\":\"memslot_add\",\"slot\":0,\"gpa\":\"0x0\",\"size\":\"64M\",\"backing\":\"4k\"}\n"
                   << "{\"type\":\"access\",\"vcpu\":0,\"gpa\":\"0x0\",\"op\":\"w\",\"count\":" << pages
                   << ",\"stride\":\"4K\"}\n";
  return p.string();
}

fs::path sweep_file(const fs::path& dir, const std::string& axes) {
  tiny_trace(dir, "a.jsonl", 64);
  tiny_trace(dir, "b.jsonl", 256);
  auto p = dir / "s.json";
  std::ofstream(p) << "{\"name\":\"t\",\"base\":{\"preset\":\"skylake-sp\"},\"traces\":[\"a.jsonl\",\"b.jsonl\"],"
                   << "\"axes\":" << axes << "}";
  return p;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

TEST_CASE("a sweep expands traces x axes into one CSV row per point, last axis fastest", "[sweep]") {
  auto d = temp_dir();
  auto s = sweep_file(d, "{\"tlb.stlb.entries\":[768,1536],\"pwc.ept.pd.entries\":[0,8,32]}");
  auto r = run_septsim("sweep " + s.string() + " -j 2 -o " + (d / "out").string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = lines(slurp(d / "out" / "results.csv"));
  REQUIRE(rows.size() == 1 + 2 * 2 * 3);
  CHECK(rows[0].rfind("point,trace,tlb.stlb.entries,pwc.ept.pd.entries,status,", 0) == 0);
  CHECK(rows[1].rfind("0,a.jsonl,768,0,ok,", 0) == 0);
  CHECK(rows[2].rfind("1,a.jsonl,768,8,ok,", 0) == 0);
  CHECK(rows[4].rfind("3,a.jsonl,1536,0,ok,", 0) == 0);
  CHECK(rows[12].rfind("11,b.jsonl,1536,32,ok,", 0) == 0);
  auto m = nlohmann::json::parse(slurp(d / "out" / "manifest.json"));
  CHECK(m["points"].size() == 12);
  CHECK(m["traces"].size() == 2);
  CHECK(m["traces"][0]["fnv1a64"].get<std::string>().size() == 16);
  CHECK(m["base_config"]["tlb.stlb.entries"] == 1536);
}

TEST_CASE("the same sweep gives an identical CSV", "[sweep]") {
  auto d = temp_dir();
  auto s = sweep_file(d, "{\"tlb.replacement\":[\"lru\",\"random\"]}");
  REQUIRE(run_septsim("sweep " + s.string() + " -j 2 -o " + (d / "x").string()).exit_code == 0);
  REQUIRE(run_septsim("sweep " + s.string() + " -j 1 -o " + (d / "y").string()).exit_code == 0);
  CHECK(slurp(d / "x" / "results.csv") == slurp(d / "y" / "results.csv"));
  CHECK(slurp(d / "x" / "results.csv").find("kvm.pf_fixed") != std::string::npos);
}

TEST_CASE("a failing point is reported with its command line and the others keep their results", "[sweep]") {
  auto d = temp_dir();
  // 4 KiB of host memory cannot hold the first EPT table: that point fails at run time.
  auto s = sweep_file(d, "{\"host.mem_gib\":[0,64]}");
  auto r = run_septsim("sweep " + s.string() + " -j 2 -o " + (d / "out").string());
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("point 0 failed (exit 2)") != std::string::npos);
  CHECK(r.err.find("--set 'host.mem_gib=0'") != std::string::npos);
  auto rows = lines(slurp(d / "out" / "results.csv"));
  REQUIRE(rows.size() == 5);
  CHECK(rows[1].find(",failed,") != std::string::npos);
  CHECK(rows[2].find(",ok,") != std::string::npos);
  auto m = nlohmann::json::parse(slurp(d / "out" / "manifest.json"));
  CHECK(m["points"][0]["status"] == "failed");
  CHECK(m["points"][0]["stderr"].get<std::string>().find("host memory") != std::string::npos);
}

TEST_CASE("a sweep file with an unknown config key is rejected naming the field", "[sweep]") {
  auto d = temp_dir();
  auto s = sweep_file(d, "{\"tlb.stlb.entires\":[1]}");
  auto r = run_septsim("sweep " + s.string() + " -o " + (d / "out").string());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("field 'axes.tlb.stlb.entires'") != std::string::npos);
  CHECK(r.err.find("'tlb.stlb.entries'") != std::string::npos);
  CHECK_FALSE(fs::exists(d / "out" / "results.csv"));
}

TEST_CASE("GNU Parallel runs the emitted job list and sweep-merge gives the local run's CSV", "[sweep]") {
  auto d = temp_dir();
  auto s = sweep_file(d, "{\"tlb.stlb.entries\":[768,1536]}");
  REQUIRE(run_septsim("sweep " + s.string() + " -o " + (d / "local").string()).exit_code == 0);
  auto e = run_septsim("sweep " + s.string() + " --emit parallel -o " + (d / "par").string());
  REQUIRE(e.exit_code == 0);
  CHECK(e.out.find("parallel") != std::string::npos);
  std::string cmd = "parallel --will-cite --jobs 2 < " + (d / "par" / "jobs.txt").string() + " >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto m = run_septsim("sweep-merge " + (d / "par").string());
  INFO(m.err);
  REQUIRE(m.exit_code == 0);
  CHECK(slurp(d / "par" / "results.csv") == slurp(d / "local" / "results.csv"));
}

TEST_CASE("the emitted Slurm array script runs one point per task id", "[sweep]") {
  auto d = temp_dir();
  auto s = sweep_file(d, "{\"tlb.stlb.entries\":[768]}");
  REQUIRE(run_septsim("sweep " + s.string() + " --emit slurm -o " + (d / "sl").string()).exit_code == 0);
  std::string sb = slurp(d / "sl" / "sweep.sbatch");
  CHECK(sb.find("#SBATCH --array=0-1") != std::string::npos);
  std::string cmd = "SLURM_ARRAY_TASK_ID=1 bash " + (d / "sl" / "sweep.sbatch").string();
  REQUIRE(std::system(cmd.c_str()) == 0);
  CHECK(fs::exists(d / "sl" / "points" / "00001.json"));
  CHECK_FALSE(fs::exists(d / "sl" / "points" / "00000.json"));
  // One point missing: merge says so and still writes what it has.
  auto m = run_septsim("sweep-merge " + (d / "sl").string());
  CHECK(m.exit_code == 1);
  auto rows = lines(slurp(d / "sl" / "results.csv"));
  REQUIRE(rows.size() == 3);
  CHECK(rows[1].find(",not run,") != std::string::npos);
  CHECK(rows[2].find(",ok,") != std::string::npos);
}

TEST_CASE("a sweep of a trace with several VMs has each VM's counters and derived metrics as columns", "[sweep]") {
  auto d = temp_dir();
  fs::copy_file(sample_trace(), d / "default.jsonl");
  std::ofstream(d / "s.json") << "{\"name\":\"t\",\"traces\":[\"default.jsonl\"],\"axes\":{\"tlb.stlb.entries\":[768,1536]}}";
  auto r = run_septsim("sweep " + (d / "s.json").string() + " -j 2 -o " + (d / "out").string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = lines(slurp(d / "out" / "results.csv"));
  REQUIRE(rows.size() == 3);
  std::vector<std::string> header;
  std::istringstream h(rows[0]);
  for (std::string f; std::getline(h, f, ',');) header.push_back(f);
  auto column = [&](const std::string& name) {
    auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? -1 : int(it - header.begin());
  };
  // VM 0's derived metrics as before, VM 1's (the TD's) under vm1.derived.
  CHECK(column("derived.stlb_misses_per_1k_accesses") >= 0);
  CHECK(column("vm1.derived.stlb_misses_per_1k_accesses") >= 0);
  CHECK(column("vm1.derived.tdx.seamcalls.tdh_mem_page_aug") >= 0);
  CHECK(column("vm1.kvm.pf_taken") >= 0);
  CHECK(column("derived.tdx.seamcalls") < 0);  // VM 0 is not a TD
  std::vector<std::string> cells;
  std::istringstream row(rows[1]);
  for (std::string f; std::getline(row, f, ',');) cells.push_back(f);
  REQUIRE(cells.size() == header.size());
  CHECK(cells[size_t(column("vm1.derived.tdx.seamcalls.tdh_mem_page_aug"))] == "520");
}
