// The scenario traces under tests/seam/traces replay through the septsim
// binary; their "expect" fields check every status, "expect_out" output
// registers. 9x_* traces must fail.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>

namespace {
// FILE.set beside a trace holds the config keys it needs ("key=value" lines),
// given to the replay as --set.
std::string set_args(const std::string& trace) {
  std::ifstream in(std::filesystem::path(trace).replace_extension(".set"));
  std::string args;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#' && line.find('=') != std::string::npos) args += " --set " + line;
  return args;
}
int replay(const std::string& trace) {
  const std::string cmd =
      std::string(SEPTSIM_BINARY_DIR "/septsim replay ") + trace + set_args(trace) + " --quiet 2>/dev/null";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
std::string trace(const char* name) { return std::string(SEPTSIM_SOURCE_DIR "/tests/seam/traces/") + name; }
}  // namespace

TEST_CASE("every scenario trace but the 9x ones passes septsim replay with exit 0", "[seam]") {
  unsigned n = 0;
  for (const auto& f : std::filesystem::directory_iterator(trace(""))) {
    const std::string name = f.path().filename().string();
    if (f.path().extension() != ".jsonl" || name[0] == '9') continue;
    INFO(name);
    CHECK(replay(f.path().string()) == 0);
    ++n;
  }
  CHECK(n >= 11);
}

TEST_CASE("a trace whose expect is not met makes the replay exit 1", "[seam]") {
  CHECK(replay(trace("90_expect_mismatch.jsonl")) == 1);
}

TEST_CASE("a trace whose expect_out is not met makes the replay exit 1", "[seam]") {
  CHECK(replay(trace("91_expect_out_mismatch.jsonl")) == 1);
}

TEST_CASE("an expect_out naming RAX, an unknown register or a non-number is bad input (exit 2)", "[seam]") {
  const std::string head =
      "{\"format\":\"septsim-trace\",\"version\":1}\n{\"type\":\"vm_create\",\"vcpus\":1}\n"
      "{\"type\":\"td_create\",\"td\":0,\"vcpus\":1}\n"
      "{\"type\":\"seamcall\",\"leaf\":\"TDH.MEM.SEPT.RD\",\"td\":0,\"gpa\":\"0x0\",\"level\":3,";
  const std::string path = SEPTSIM_BINARY_DIR "/seam_bad_expect_out.jsonl";
  for (const char* out : {R"("expect_out":{"rax":"0x0"})", R"("expect_out":{"rbx":"0x0"})",
                          R"("expect_out":{"rcx":true})", R"("expect_out":"0x0")", R"("expect_out":{})"}) {
    INFO(out);
    std::ofstream(path) << head << out << "}\n";
    CHECK(replay(path) == 2);
  }
  std::ofstream(path) << head << R"("expect_out":{"rcx":"0x8000000000000000","rdx":3}})" << "\n";
  CHECK(replay(path) == 0);  // a FREE PML4E: the suppress-#VE bit, level 3, state 0
}

TEST_CASE("expect_out survives the binary trace format", "[seam]") {
  const std::string sstb = SEPTSIM_BINARY_DIR "/seam_expect_out.sstb";
  const std::string cmd = std::string(SEPTSIM_BINARY_DIR "/septsim convert ") + trace("91_expect_out_mismatch.jsonl") +
                          " " + sstb + " 2>/dev/null";
  REQUIRE(std::system(cmd.c_str()) == 0);
  CHECK(replay(sstb) == 1);
}

// 20_accept_interrupt_and_lps.jsonl expects TD_EXIT_INTERRUPT from tdcalls
// with "interrupt" and TDX_VCPU_ASSOCIATED / _NOT_ASSOCIATED from the LPs it
// names: a field lost on the way makes the replay exit 1.
TEST_CASE("a tdcall's interrupt and a td_vcpu enter's lp survive the binary format and the JSONL writer", "[seam]") {
  const std::string sstb = SEPTSIM_BINARY_DIR "/seam_interrupt_lp.sstb";
  const std::string back = SEPTSIM_BINARY_DIR "/seam_interrupt_lp.jsonl";
  const std::string convert = std::string(SEPTSIM_BINARY_DIR "/septsim convert ");
  REQUIRE(std::system((convert + trace("20_accept_interrupt_and_lps.jsonl") + " " + sstb + " 2>/dev/null").c_str()) == 0);
  CHECK(replay(sstb) == 0);
  REQUIRE(std::system((convert + sstb + " " + back + " 2>/dev/null").c_str()) == 0);
  CHECK(replay(back) == 0);
}

TEST_CASE("a td_create's create_only survives the binary format and the JSONL writer", "[seam]") {
  // Both copies replay on two packages (21_key_config_packages.set, copied
  // beside them); without create_only the second KEY.CONFIG would not be
  // TDX_KEY_CONFIGURED and the replay would exit 1.
  const std::string base = SEPTSIM_BINARY_DIR "/seam_create_only";
  std::ofstream(base + ".set") << "host.packages=2\nhost.lps_per_package=4\n";
  const std::string convert = std::string(SEPTSIM_BINARY_DIR "/septsim convert ");
  REQUIRE(std::system((convert + trace("21_key_config_packages.jsonl") + " " + base + ".sstb 2>/dev/null").c_str()) ==
          0);
  CHECK(replay(base + ".sstb") == 0);
  REQUIRE(std::system((convert + base + ".sstb " + base + ".jsonl 2>/dev/null").c_str()) == 0);
  CHECK(replay(base + ".jsonl") == 0);
  std::ifstream in(base + ".jsonl");
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str().find("\"create_only\":true") != std::string::npos);
}

TEST_CASE("a td_vcpu enter's concurrent survives the binary format and the JSONL writer", "[seam]") {
  // 22_phymem_and_accept_operands.jsonl's VP.ENTER inside a TRACK is BUSY
  // only if it still starts with the TRACK: a lost "concurrent" exits 1.
  const std::string base = SEPTSIM_BINARY_DIR "/seam_enter_concurrent";
  std::ofstream(base + ".set") << "seam.tdmr_gib=64\n";
  const std::string convert = std::string(SEPTSIM_BINARY_DIR "/septsim convert ");
  REQUIRE(std::system((convert + trace("22_phymem_and_accept_operands.jsonl") + " " + base + ".sstb 2>/dev/null").c_str()) == 0);
  CHECK(replay(base + ".sstb") == 0);
  REQUIRE(std::system((convert + base + ".sstb " + base + ".jsonl 2>/dev/null").c_str()) == 0);
  CHECK(replay(base + ".jsonl") == 0);
}

// The replay's exit code for a TD vCPU exit carrying `field` ("\"lp\":1").
int replay_exit_with(const std::string& name, const std::string& field) {
  const std::string path = SEPTSIM_BINARY_DIR "/seam_bad_exit_" + name + ".jsonl";
  std::ofstream(path) << "{\"format\":\"septsim-trace\",\"version\":1}\n{\"type\":\"vm_create\",\"vcpus\":1}\n"
                         "{\"type\":\"td_create\",\"td\":0,\"vcpus\":1}\n"
                         "{\"type\":\"td_vcpu\",\"td\":0,\"vcpu\":0,\"op\":\"exit\"," + field + "}\n";
  return replay(path);
}

TEST_CASE("a concurrent on a td_vcpu exit is bad input (exit 2)", "[seam]") {
  CHECK(replay_exit_with("concurrent", "\"concurrent\":true") == 2);
}

TEST_CASE("an lp on a td_vcpu exit is bad input (exit 2)", "[seam]") { CHECK(replay_exit_with("lp", "\"lp\":1") == 2); }
