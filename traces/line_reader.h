// Streams a text file line by line through a fixed buffer (text importers:
// ftrace, lackey), so a file of any size is read in constant memory.
//
// A regular file is mapped instead of read: the buffer is then a window of
// the mapping (its bytes always are the file's next ones, in order), which
// moves where read() would have copied, so that lines, overlong lines and
// the end of the file come out exactly as through the buffer, without the
// kernel's copy (the largest single cost of `septsim import lackey`).
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
  // For a caller that parses lines where they lie: the buffered bytes from
  // the next line on, at least `want` of them unless the file ends first
  // (want <= kChunk), empty while the rest of an overlong line is dropped.
  // consume(n) then takes the first n of them, which must end with a newline:
  // as next() returning that line.
  std::string_view window(size_t want) {
    if (skipping_) return {};
    if (end_ - pos_ < want && !eof_) fill();
    return {buf_ + pos_, end_ - pos_};
  }
  void consume(size_t n) { pos_ += n; }
  // True once the last line returned had no newline after it.
  bool unterminated() const { return unterminated_; }

 private:
  void fill();

  std::string path_;
  std::FILE* f_;
  // The buffer: owned_ (cap_ bytes), or the file's bytes from `offset_` on
  // when the file is mapped (map_, map_size_ bytes).
  std::vector<char> owned_;
  char* buf_ = nullptr;
  size_t cap_ = 0;
  const char* map_ = nullptr;
  size_t map_size_ = 0, offset_ = 0;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false, skipping_ = false, unterminated_ = false;
};

}  // namespace septsim::traces
