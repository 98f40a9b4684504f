// scripts/plot on a real sweep: grouped bars for an axis of words, a base-2
// logarithmic x axis, and units checked against the statistics' descriptions.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "../traces/cli_util.h"

using namespace septsim::test;
namespace fs = std::filesystem;

namespace {

fs::path sweep_dir(const std::string& axes) {
  auto d = temp_dir();
  for (const char* name : {"a.jsonl", "b.jsonl"})
    std::ofstream(d / name) << "{\"format\":\"septsim-trace\",\"version\":1}\n"
                            << "{\"type\":\"vm_create\",\"vcpus\":1}\n"
                            << "{\"type\":\"memslot_add\",\"slot\":0,\"gpa\":\"0x0\",\"size\":\"64M\",\"backing\":\"4k\"}\n"
                            << "{\"type\":\"access\",\"vcpu\":0,\"gpa\":\"0x0\",\"op\":\"w\",\"count\":512,\"stride\":\"4K\"}\n";
  std::ofstream(d / "s.json") << "{\"traces\": [\"a.jsonl\", \"b.jsonl\"], \"axes\": " << axes << "}";
  auto r = run_septsim("sweep " + (d / "s.json").string() + " -j 2 -o " + (d / "out").string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return d / "out";
}

CliResult plot(const fs::path& dir, const std::string& args) {
  auto logs = temp_dir();
  std::string cmd = "SEPTSIM=" + std::string(SEPTSIM_BINARY_DIR) + "/septsim /usr/bin/python3 " + SEPTSIM_SOURCE_DIR +
                    "/scripts/plot " + (dir / "results.csv").string() + " " + args + " -o " + (dir / "fig").string() +
                    " >" + (logs / "out").string() + " 2>" + (logs / "err").string();
  int st = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = slurp(logs / "out");
  r.err = slurp(logs / "err");
  return r;
}

}  // namespace

TEST_CASE("an axis of words is plotted as grouped bars with its categories as ticks", "[plot]") {
  auto dir = sweep_dir("{\"tlb.replacement\": [\"lru\", \"plru\", \"random\"]}");
  auto r = plot(dir, "--x tlb.replacement --y derived.cycles_per_access");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::string svg = slurp(dir / "fig.svg");
  for (const char* tick : {"<!-- lru -->", "<!-- plru -->", "<!-- random -->"}) CHECK(svg.find(tick) != std::string::npos);
  // Matplotlib draws each bar as a patch: 2 traces x 3 categories, plus the axes' own background patches.
  size_t patches = 0;
  for (size_t p = 0; (p = svg.find("id=\"patch_", p)) != std::string::npos; ++p) ++patches;
  CHECK(patches >= 6 + 2);
  // The y label gives the unit of the derived metric from stats --list.
  CHECK(svg.find("<!-- derived.cycles_per_access (cycles per access) -->") != std::string::npos);
}

TEST_CASE("plot --logx draws a power-of-two axis in base 2 and refuses an axis of words", "[plot]") {
  auto dir = sweep_dir("{\"tlb.stlb.entries\": [384, 768, 1536, 3072]}");
  auto r = plot(dir, "--x tlb.stlb.entries --y vcpu0.stlb.misses --logx");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(slurp(dir / "fig.svg").find("2^{") != std::string::npos);
  auto words = sweep_dir("{\"tlb.replacement\": [\"lru\", \"plru\"]}");
  auto w = plot(words, "--x tlb.replacement --y vcpu0.stlb.misses --logx");
  CHECK(w.exit_code != 0);
  CHECK(w.err.find("--logx needs positive numbers in tlb.replacement") != std::string::npos);
}

TEST_CASE("y columns of different kinds of unit are refused, naming their units", "[plot]") {
  auto dir = sweep_dir("{\"tlb.stlb.ways\": [4, 12]}");
  auto r = plot(dir, "--x tlb.stlb.ways --y vcpu0.cycles --y kvm.sp_meta.bytes");
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("vcpu0.cycles (cycles), kvm.sp_meta.bytes (bytes)") != std::string::npos);
  // Counts of different things share an axis.
  CHECK(plot(dir, "--x tlb.stlb.ways --y vcpu0.stlb.misses --y kvm.mmu_pages").exit_code == 0);
}
