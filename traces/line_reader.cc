#include "traces/line_reader.h"

#include <sys/mman.h>
#include <sys/stat.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "model/types.h"
#include "traces/reader.h"

namespace septsim::traces {

LineReader::LineReader(const std::string& path) : path_(path) {
  errno = 0;
  f_ = std::fopen(path.c_str(), "rb");
  if (!f_) throw TraceError(path, 0, "", std::string("cannot open: ") + std::strerror(errno ? errno : ENOENT));
  // A regular file smaller than kMaxLine fits whole (and cannot hold an
  // overlong line); anything else gets room for two chunks and a long line.
  cap_ = 2 * kChunk + kMaxLine;
  struct stat st;
  const bool regular = ::fstat(::fileno(f_), &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0;
  if (regular && size_t(st.st_size) < kMaxLine) cap_ = size_t(st.st_size) + 1;
  if (regular && st.st_size > 0) {
    void* m = ::mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, ::fileno(f_), 0);
    if (m != MAP_FAILED) {
      ::madvise(m, size_t(st.st_size), MADV_SEQUENTIAL);
      map_ = static_cast<const char*>(m);
      map_size_ = size_t(st.st_size);
      // Read only, though the type is char* (the owned buffer's).
      buf_ = const_cast<char*>(map_);
      return;
    }
  }
  owned_.resize(cap_);
  buf_ = owned_.data();
}

LineReader::~LineReader() {
  if (map_) ::munmap(const_cast<char*>(map_), map_size_);
  std::fclose(f_);
}

namespace {

// The first '\n' in [p, end), or null: 16 or 8 bytes at a time (lines of
// trace logs are short, and a library call per line cost more than the scan).
const char* find_newline(const char* p, const char* end) {
#ifdef __SSE2__
  // 16 bytes at a time: most lines of a lackey log (~14 bytes) end in the first.
  const __m128i nl = _mm_set1_epi8('\n');
  for (; p + 16 <= end; p += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if (const unsigned m = unsigned(_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)))) return p + std::countr_zero(m);
  }
#endif
  constexpr u64 kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
  for (; p + 8 <= end; p += 8) {
    u64 w;
    std::memcpy(&w, p, 8);
    if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
    const u64 x = w ^ (kOnes * '\n');
    // The lowest set bit marks the first zero byte of x (higher ones may be false).
    if (const u64 zero = (x - kOnes) & ~x & kHighs) return p + std::countr_zero(zero) / 8;
  }
  return static_cast<const char*>(std::memchr(p, '\n', size_t(end - p)));
}

}  // namespace

bool LineReader::next(std::string_view& line, bool& overlong) {
  overlong = false;
  while (true) {
    const char* nl = find_newline(buf_ + pos_, buf_ + end_);
    if (nl) {
      size_t len = size_t(nl - (buf_ + pos_));
      line = std::string_view(buf_ + pos_, len);
      pos_ += len + 1;
      if (skipping_) {
        skipping_ = false;
        continue;
      }
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      return true;
    }
    if (eof_) {
      if (pos_ == end_) return false;
      line = std::string_view(buf_ + pos_, end_ - pos_);
      pos_ = end_;
      if (skipping_) return false;
      unterminated_ = true;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      return true;
    }
    if (end_ - pos_ >= kMaxLine) {
      // An overlong line: report it once, drop the rest of it.
      line = std::string_view(buf_ + pos_, 0);
      if (map_) offset_ += end_, buf_ = const_cast<char*>(map_) + offset_;
      pos_ = end_ = 0;
      if (!skipping_) {
        skipping_ = true;
        overlong = true;
        fill();
        return true;
      }
    }
    fill();
  }
}

void LineReader::fill() {
  if (map_) {
    // What the read below would do, on the mapping: the window moves past
    // the bytes consumed and takes the next ones the read would have.
    offset_ += pos_;
    end_ -= pos_;
    pos_ = 0;
    buf_ = const_cast<char*>(map_) + offset_;
    const size_t n = std::min({kChunk, cap_ - end_, map_size_ - offset_ - end_});
    if (n == 0) eof_ = true;
    end_ += n;
    return;
  }
  if (pos_ > 0) {
    std::memmove(buf_, buf_ + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  size_t n = std::fread(buf_ + end_, 1, std::min(kChunk, cap_ - end_), f_);
  if (n == 0) {
    if (std::ferror(f_)) throw TraceError(path_, 0, "", "read error");
    eof_ = true;
  }
  end_ += n;
}

}  // namespace septsim::traces
