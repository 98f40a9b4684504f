// LineReader maps a regular file instead of reading it: lines, overlong lines
// (cut where the 1 MiB buffer fills, which depends on where the reads fell),
// "\r\n" endings and an unterminated last line come out exactly as through
// the read buffer, which a FIFO (not mappable) still takes. Both readers are
// driven the way the lackey importer drives them: window() and consume() for
// a line whose newline is in the next 32 bytes, next() for the rest.
#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>

#include "cli_util.h"
#include "traces/line_reader.h"

using namespace septsim;
using namespace septsim::traces;

namespace {

struct Line {
  std::string text;
  bool overlong;
  bool operator==(const Line&) const = default;
};

// Every line of `path`, alternating between the two ways of taking a line.
std::vector<Line> read_all(const std::string& path, bool& unterminated) {
  LineReader in(path);
  std::vector<Line> lines;
  for (size_t k = 0;; ++k) {
    const std::string_view w = in.window(32);
    const size_t nl = w.substr(0, 32).find('\n');
    if (k % 2 == 0 && nl != std::string_view::npos) {
      lines.push_back({std::string(w.substr(0, nl)) + "<w>", false});
      in.consume(nl + 1);
      continue;
    }
    std::string_view line;
    bool overlong;
    if (!in.next(line, overlong)) break;
    lines.push_back({std::string(line), overlong});
  }
  unterminated = in.unterminated();
  return lines;
}

// The file's bytes through a FIFO, written by a second thread.
std::vector<Line> read_through_fifo(const std::string& bytes, const std::filesystem::path& dir, bool& unterminated) {
  const std::string fifo = (dir / "fifo").string();
  std::filesystem::remove(fifo);
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::thread writer([&] {
    std::ofstream out(fifo, std::ios::binary);
    out.write(bytes.data(), std::streamsize(bytes.size()));
  });
  std::vector<Line> lines = read_all(fifo, unterminated);
  writer.join();
  return lines;
}

}  // namespace

TEST_CASE("a mapped file gives the lines, overlong lines and last line the read buffer gives", "[lackey][badinput]") {
  const size_t kMax = LineReader::kMaxLine;
  const std::string shortish = " L 7ff000a8,8\nI  0401000,3\n S 1,4\r\nnoise\n";
  std::vector<std::pair<const char*, std::string>> files;
  files.push_back({"small", shortish + "last, no newline"});
  files.push_back({"empty", ""});
  std::string big;
  // Lines around the 1 MiB limit, at different offsets from the reads'
  // boundaries: kept whole or cut depending on where the buffer fills.
  for (size_t len : {kMax - 1, kMax, kMax + 1, 2 * kMax + 7, size_t(3), kMax / 2 * 3}) {
    for (int i = 0; i < 1000; ++i) big += shortish;
    big += std::string(len, 'x') + "\n";
  }
  files.push_back({"long lines", big + shortish});
  files.push_back({"overlong last line", big + std::string(kMax + 10, 'y')});
  // The first read takes exactly kMaxLine bytes: a first line of kMaxLine
  // characters is cut (its newline is not among them), one shorter is not.
  files.push_back({"first line at the limit", std::string(kMax, 'z') + "\n" + std::string(kMax - 1, 'w') + "\n" + shortish});
  const auto dir = septsim::test::temp_dir();
  for (const auto& [name, bytes] : files) {
    CAPTURE(name);
    const auto path = dir / "log";
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    bool mapped_unterminated = false, fifo_unterminated = false;
    const std::vector<Line> mapped = read_all(path.string(), mapped_unterminated);
    const std::vector<Line> fifo = read_through_fifo(bytes, dir, fifo_unterminated);
    CHECK(mapped.size() == fifo.size());
    CHECK(mapped == fifo);
    CHECK(mapped_unterminated == fifo_unterminated);
    if (std::string(name) != "empty") CHECK(!mapped.empty());
    size_t overlong = 0;
    for (const Line& l : mapped) overlong += l.overlong;
    // The long files do exercise the cut.
    if (std::string(name) == "long lines" || std::string(name) == "overlong last line") CHECK(overlong >= 1);
    if (std::string(name) == "first line at the limit") CHECK((mapped.front().overlong && !mapped.at(1).overlong));
  }
}
