// The repository stands alone: its code, scripts and docs cite sources by
// name (kernel file:function, SDM section, paper) or the repository's own
// files, never a file outside it. A relative path that climbs out of the
// repository, or an absolute path into a home or work directory, is such a
// reference.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const std::set<std::string> kTextExtensions = {".cc", ".h", ".md", ".py", ".sh", ".cmake", ".txt", ".json", ".c", ""};

bool path_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '/';
}

// "FILE:LINE: TEXT" for each reference out of `root` in `text` (the file `file`).
std::vector<std::string> outside_references(const fs::path& root, const fs::path& file, const std::string& text) {
  std::vector<std::string> out;
  const std::string up = std::string("..") + "/";
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    auto where = [&] { return fs::relative(file, root).string() + ":" + std::to_string(n) + ": " + line; };
    // Spelt in two pieces so that this file does not match itself.
    for (const std::string& absolute : {std::string("/") + "home/", std::string("/") + "work/"})
      if (line.find(absolute) != std::string::npos) out.push_back(where());
    for (size_t at = line.find(up); at != std::string::npos; at = line.find(up, at + 3)) {
      if (at > 0 && path_char(line[at - 1]) && line[at - 1] != '/') continue;  // inside a longer token
      size_t end = at;
      while (end < line.size() && path_char(line[end])) ++end;
      fs::path target = (file.parent_path() / line.substr(at, end - at)).lexically_normal();
      auto rel = target.lexically_relative(root).string();
      if (rel.starts_with("..")) out.push_back(where());
    }
  }
  return out;
}

std::vector<std::string> scan(const fs::path& root) {
  std::vector<std::string> found;
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    std::string name = it->path().filename().string();
    if (name.starts_with(".")) {  // .git (a file in a worktree), editors' files
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_directory() && (name.starts_with("build") || name == "node_modules")) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && kTextExtensions.count(it->path().extension().string()) &&
        it->file_size() < (std::uintmax_t{1} << 20))
      files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    for (auto& r : outside_references(root, f, s.str())) found.push_back(r);
  }
  return found;
}

}  // namespace

TEST_CASE("no code, script or doc refers to a file outside the repository", "[docs]") {
  fs::path root = fs::path(SEPTSIM_SOURCE_DIR).lexically_normal();
  auto found = scan(root);
  INFO([&] {
    std::string all;
    for (const auto& f : found) all += f + "\n";
    return all;
  }());
  CHECK(found.empty());
}

TEST_CASE("the repository check finds paths that climb out of the repository and ignores those inside", "[docs]") {
  fs::path root = "/r";
  const std::string up = std::string("..") + "/";
  auto refs = [&](const std::string& file, const std::string& text) {
    return outside_references(root, root / file, text).size();
  };
  CHECK(refs("docs/a.md", "see " + up + up + "shared/kernel/mmu.c") == 1);
  CHECK(refs("a.md", "see " + up + "shared/notes.md") == 1);
  CHECK(refs("docs/a.md", "[trace format](" + up + "traces/samples/default.jsonl)") == 0);
  CHECK(refs("tests/cli/x.cc", "#include \"" + up + "traces/cli_util.h\"") == 0);
  CHECK(refs("scripts/studies/run", "root=\"$(cd \"$(dirname \"$0\")/" + up + "..\" && pwd)\"") == 0);
  CHECK(refs("x.md", "copied from /" + std::string("home/someone/notes")) == 1);
}
