// Sweeps that never lose work: RFC 4180 CSV with traces named relative to
// the sweep file, axis values checked before any point runs, and a real
// SIGINT that keeps the finished points for --resume.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "../traces/cli_util.h"

using namespace septsim::test;
namespace fs = std::filesystem;

namespace {

// Rows of a CSV quoted as RFC 4180 says (quoted fields may hold commas,
// quotes and line breaks); a line break outside quotes ends a record.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false, in_quotes = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') field += '"', ++i;
      else if (c == '"') in_quotes = false;
      else field += c;
    } else if (c == '"' && field.empty() && !quoted) {
      in_quotes = quoted = true;
    } else if (c == ',') {
      rows.back().push_back(field), field.clear(), quoted = false;
    } else if (c == '\n') {
      rows.back().push_back(field), field.clear(), quoted = false;
      rows.emplace_back();
    } else {
      field += c;
    }
  }
  if (!field.empty() || !rows.back().empty()) rows.back().push_back(field);
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

// Writes `pages` 4 KiB pages of a 1 GiB memslot: 262144 take a few tenths
// of a second, long enough to signal a sweep between points.
void tiny_trace(const fs::path& p, int pages) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << "{\"format\":\"septsim-trace\",\"version\":1}\n"
                   << "{\"type\":\"vm_create\",\"vcpus\":1}\n"
                   << "{\"type\":\"memslot_add\",\"slot\":0,\"gpa\":\"0x0\",\"size\":\"1G\",\"backing\":\"4k\"}\n"
                   << "{\"type\":\"access\",\"vcpu\":0,\"gpa\":\"0x0\",\"op\":\"w\",\"count\":" << pages
                   << ",\"stride\":\"4K\"}\n";
}

std::string column(const std::vector<std::vector<std::string>>& rows, size_t row, const std::string& name) {
  for (size_t i = 0; i < rows[0].size(); ++i)
    if (rows[0][i] == name) return rows[row].at(i);
  return "<no column " + name + ">";
}

bool wait_for(const std::function<bool()>& ready, int seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Starts `septsim sweep ARGS...` in the background; stdout and stderr go to
// `logs`/sweep.out and sweep.err.
pid_t start_sweep(const std::vector<std::string>& args, const fs::path& logs) {
  std::fflush(nullptr);  // nothing of ours buffered twice
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen((logs / "sweep.out").c_str(), "w", stdout) || !freopen((logs / "sweep.err").c_str(), "w", stderr))
      _exit(126);
    std::vector<char*> argv;
    std::string bin = std::string(SEPTSIM_BINARY_DIR) + "/septsim";
    argv.push_back(bin.data());
    static std::string sweep = "sweep";
    argv.push_back(sweep.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

int exit_status(pid_t pid) {
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

}  // namespace

TEST_CASE("the sweep CSV names traces relative to the sweep file and quotes fields as RFC 4180 says", "[sweep][csv]") {
  auto d = temp_dir();
  tiny_trace(d / "runs" / "small, \"early\".jsonl", 16);
  tiny_trace(d / "b.jsonl", 32);
  std::ofstream(d / "s.json") << R"({"traces": ["runs/small, \"early\".jsonl", "b.jsonl"],
                                    "axes": {"tlb.replacement": ["lru", "plru"]}})";
  auto r = run_septsim("sweep " + (d / "s.json").string() + " -j 2 -o " + (d / "out").string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::string text = slurp(d / "out" / "results.csv");
  // A field with a comma or a quote is quoted, its quotes doubled.
  CHECK(text.find("\"runs/small, \"\"early\"\".jsonl\"") != std::string::npos);
  auto rows = parse_csv(text);
  REQUIRE(rows.size() == 5);
  for (const auto& row : rows) CHECK(row.size() == rows[0].size());
  CHECK(column(rows, 1, "trace") == "runs/small, \"early\".jsonl");
  CHECK(column(rows, 3, "trace") == "b.jsonl");
  CHECK(column(rows, 2, "tlb.replacement") == "plru");
  CHECK(column(rows, 1, "status") == "ok");
  // The derived metrics are columns too.
  CHECK(column(rows, 1, "derived.accesses") == "16");
}

TEST_CASE("a sweep whose axes give an impossible geometry is refused before any point runs", "[sweep][badinput]") {
  auto d = temp_dir();
  tiny_trace(d / "a.jsonl", 8);
  std::ofstream(d / "s.json") << R"({"traces": ["a.jsonl"],
                                    "axes": {"tlb.stlb.entries": [1536, 1000], "tlb.stlb.ways": [12, 8]}})";
  auto r = run_septsim("sweep " + (d / "s.json").string() + " -o " + (d / "out").string());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("field 'axes' (the point tlb.stlb.entries=1000, tlb.stlb.ways=12)") != std::string::npos);
  CHECK(r.err.find("is not a multiple of tlb.stlb.ways = 12") != std::string::npos);
  CHECK_FALSE(fs::exists(d / "out"));
}

TEST_CASE("SIGINT stops a sweep, keeps the finished points and --resume runs only the rest", "[sweep][signal]") {
  auto d = temp_dir();
  tiny_trace(d / "a.jsonl", 262144);
  std::ofstream(d / "s.json") << R"({"traces": ["a.jsonl"],
                                    "axes": {"sim.seed": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}})";
  auto out = d / "out";
  pid_t pid = start_sweep({(d / "s.json").string(), "-j", "1", "-o", out.string()}, d);
  REQUIRE(pid > 0);
  REQUIRE(wait_for([&] { return !slurp(out / "points" / "00001.exit").empty(); }, 120));
  kill(pid, SIGINT);
  CHECK(exit_status(pid) == 128 + SIGINT);
  std::string err = slurp(d / "sweep.err");
  INFO(err);
  CHECK(err.find("stopped by SIGINT") != std::string::npos);
  CHECK(err.find("--resume") != std::string::npos);

  auto rows = parse_csv(slurp(out / "results.csv"));
  REQUIRE(rows.size() == 13);
  size_t ok = 0, not_run = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    std::string st = column(rows, i, "status");
    ok += st == "ok", not_run += st == "not run";
  }
  CHECK(ok >= 2);
  CHECK(not_run >= 1);
  CHECK(ok + not_run == 12);  // nothing half-done counts as a result

  auto r = run_septsim("sweep " + (d / "s.json").string() + " -j 2 -o " + out.string() + " --resume");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("(" + std::to_string(ok) + " points kept from the earlier run)") != std::string::npos);
  auto fresh = run_septsim("sweep " + (d / "s.json").string() + " -j 2 -o " + (d / "fresh").string());
  REQUIRE(fresh.exit_code == 0);
  CHECK(slurp(out / "results.csv") == slurp(d / "fresh" / "results.csv"));
}

TEST_CASE("a rerun interrupted by SIGTERM keeps the earlier run's results aside", "[sweep][signal]") {
  auto d = temp_dir();
  tiny_trace(d / "a.jsonl", 262144);
  std::ofstream(d / "s.json") << R"({"traces": ["a.jsonl"], "axes": {"sim.seed": [1, 2, 3, 4, 5, 6, 7, 8]}})";
  auto out = d / "out";
  REQUIRE(run_septsim("sweep " + (d / "s.json").string() + " -j 2 -o " + out.string()).exit_code == 0);
  std::string first = slurp(out / "results.csv");
  pid_t pid = start_sweep({(d / "s.json").string(), "-j", "1", "-o", out.string()}, d);
  // The new run has set the old results aside and finished its first point.
  REQUIRE(wait_for([&] { return fs::exists(out / "points.previous") && !slurp(out / "points" / "00000.exit").empty(); },
                   120));
  kill(pid, SIGTERM);
  CHECK(exit_status(pid) == 128 + SIGTERM);
  CHECK(slurp(out / "results.csv.previous") == first);
  CHECK(fs::exists(out / "points.previous" / "00007.json"));
  // Resuming completes the new run; only then does the earlier one go.
  REQUIRE(run_septsim("sweep " + (d / "s.json").string() + " -o " + out.string() + " --resume").exit_code == 0);
  CHECK(slurp(out / "results.csv") == first);
  CHECK_FALSE(fs::exists(out / "results.csv.previous"));
  CHECK_FALSE(fs::exists(out / "points.previous"));
}

TEST_CASE("sweep --resume refuses a directory holding a different sweep", "[sweep][badinput]") {
  auto d = temp_dir();
  tiny_trace(d / "a.jsonl", 8);
  std::ofstream(d / "s.json") << R"({"traces": ["a.jsonl"], "axes": {"sim.seed": [1, 2]}})";
  REQUIRE(run_septsim("sweep " + (d / "s.json").string() + " -o " + (d / "out").string()).exit_code == 0);
  std::ofstream(d / "t.json") << R"({"traces": ["a.jsonl"], "axes": {"sim.seed": [1, 3]}})";
  auto r = run_septsim("sweep " + (d / "t.json").string() + " -o " + (d / "out").string() + " --resume");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("holds a different sweep") != std::string::npos);
}

TEST_CASE("sweep axis values their key cannot take are refused before any point runs", "[sweep][badinput]") {
  auto d = temp_dir();
  tiny_trace(d / "a.jsonl", 8);
  auto refused = [&](const std::string& axes, const std::string& message) {
    std::ofstream(d / "s.json") << R"({"traces": ["a.jsonl"], "axes": )" << axes << "}";
    auto r = run_septsim("sweep " + (d / "s.json").string() + " -o " + (d / "out").string());
    INFO(axes << "\n" << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(message) != std::string::npos);
    CHECK_FALSE(fs::exists(d / "out"));
  };
  refused(R"({"tlb.stlb.entries": [1536, "many"]})",
          "field 'axes.tlb.stlb.entries': key 'tlb.stlb.entries' wants a non-negative integer, got 'many'");
  // Words and ranges the model would refuse only when it is built, after the first point ran.
  refused(R"({"tlb.replacement": ["lru", "fifo"]})",
          "field 'axes' (the point tlb.replacement=fifo): tlb.replacement = 'fifo' is not one of its values (lru, "
          "plru, random, tree-plru)");
  refused(R"({"memory.model": ["flat", "caches"]})", "memory.model = 'caches' is not one of its values");
  refused(R"({"ept.levels": [4, 6]})", "(the point ept.levels=6): ept.levels = 6 is outside 4..5");
  refused(R"({"mmu.prev_roots": [3, 17]})", "mmu.prev_roots = 17 is outside 0..16");
  refused(R"({"mmu.tdx_merge_policy": ["none", "B"]})",
          "mmu.tdx_merge_policy = 'B' merges split private 2M pages, which need mmu.tdx_huge_pages = rfc-v1 or v3");
}

TEST_CASE("every word the configuration check allows a key is one the model takes", "[config]") {
  auto d = temp_dir();
  tiny_trace(d / "a.jsonl", 8);
  for (const char* key : {"tlb.replacement", "pwc.replacement", "memory.model", "memory.replacement", "mmu.sp_layout",
                          "mmu.nested.invept", "mmu.slot_zap", "mmu.tdx_pamt_cache", "mmu.tdx_merge_policy",
                          "mmu.tdx_huge_pages", "mmu.tdx_pending_access", "mmu.tdx_private_dirty_log"}) {
    INFO(key);
    // The refusal lists the words: "KEY = 'nonsense' is not one of its values (w1, w2, ...)".
    auto bad = run_septsim(std::string("config --set ") + key + "=nonsense");
    CHECK(bad.exit_code == 2);
    auto open = bad.err.find("is not one of its values (");
    REQUIRE(open != std::string::npos);
    std::string list = bad.err.substr(open + 26, bad.err.find(')', open) - open - 26);
    std::vector<std::string> words;
    for (size_t at = 0; at <= list.size();) {
      size_t comma = std::min(list.find(", ", at), list.size());
      words.push_back(list.substr(at, comma - at));
      at = comma + 2;
    }
    CHECK(words.size() >= 2);
    for (const auto& w : words) {
      INFO(w);
      std::string extra = std::string(key) == "mmu.tdx_merge_policy" ? " --set mmu.tdx_huge_pages=v3" : "";
      auto r = run_septsim("replay " + (d / "a.jsonl").string() + " --quiet --set " + key + "=" + w + extra);
      INFO(r.err);
      CHECK(r.exit_code == 0);
    }
  }
}
