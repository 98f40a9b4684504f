// Streams a text file line by line through a fixed buffer (text importers:
// ftrace, lackey), so a file of any size is read in constant memory.
#pragma once
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace septsim::traces {

class LineReader {
 public:
  static constexpr size_t kChunk = 1 << 20;
  static constexpr size_t kMaxLine = 1 << 20;

  // Throws TraceError "PATH: cannot open: ..." when the file cannot be read.
  explicit LineReader(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Next line without its newline (and "\r"); `overlong` when it was cut at
  // kMaxLine (the rest of that line is dropped). The view lives until the
  // next call.
  bool next(std::string_view& line, bool& overlong);
  // True once the last line returned had no newline after it.
  bool unterminated() const { return unterminated_; }

 private:
  void fill();

  std::string path_;
  std::FILE* f_;
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false, skipping_ = false, unterminated_ = false;
};

}  // namespace septsim::traces
