// The scenario traces under tests/seam/traces replay through the septsim
// binary; their "expect" fields check every status. 9x_* traces must fail.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <sys/wait.h>

namespace {
int replay(const std::string& trace) {
  const std::string cmd = std::string(SEPTSIM_BINARY_DIR "/septsim replay ") + trace + " --quiet 2>/dev/null";
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
