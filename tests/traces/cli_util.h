// Runs the septsim binary as a user would and captures what it prints.
#pragma once
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace septsim::test {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::filesystem::path temp_dir() {
  static int n = 0;
  auto d = std::filesystem::temp_directory_path() /
           ("septsim-cli-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
  // A reused pid must not meet an earlier run's files (a stale results.csv).
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// `args` is appended to the binary path as is (quote paths yourself).
inline CliResult run_septsim(const std::string& args) {
  auto d = temp_dir();
  std::string cmd = std::string(SEPTSIM_BINARY_DIR) + "/septsim " + args + " >" + (d / "out").string() + " 2>" +
                    (d / "err").string() + " </dev/null";
  int st = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = slurp(d / "out");
  r.err = slurp(d / "err");
  std::filesystem::remove_all(d);
  return r;
}

inline std::string write_trace(const std::string& body) {
  auto p = temp_dir() / "t.jsonl";
  std::ofstream(p) << "{\"format\":\"septsim-trace\",\"version\":1}\n" << body;
  return p.string();
}

inline std::string sample_trace() { return std::string(SEPTSIM_SOURCE_DIR) + "/traces/samples/default.jsonl"; }

// The default trace's normal VM alone: its lines that do not name VM 1, up
// to the TD's section (which starts its own phases).
inline std::string sample_vm0_trace() {
  std::ifstream in(sample_trace());
  auto p = temp_dir() / "vm0.jsonl";
  std::ofstream out(p);
  for (std::string line; std::getline(in, line) && !line.starts_with("# === VM 1");)
    if (line.find("\"vm\":1") == std::string::npos) out << line << "\n";
  return p.string();
}

}  // namespace septsim::test
