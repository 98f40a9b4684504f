// Trace inputs that are not a plain file: standard input ("-") and gzip, xz
// or zstd compressed files, recognised by their magic bytes (not their
// names). The bytes are decompressed into a temporary file first (in
// $TMPDIR, else /tmp), which the readers then treat like any trace; the
// temporary file is removed when the TraceInput goes away.
#pragma once
#include <string>

namespace septsim::traces {

enum class Compression { None, Gzip, Xz, Zstd };

// By the first bytes of the file; None for a plain (or empty) file. Throws
// TraceError when the file cannot be opened.
Compression detect_compression(const std::string& path);
const char* compression_name(Compression c);

class TraceInput {
 public:
  // `path` is a file or "-". Throws TraceError "PATH: ..." on a read error or
  // corrupt compressed data.
  explicit TraceInput(const std::string& path);
  ~TraceInput();
  TraceInput(const TraceInput&) = delete;
  TraceInput& operator=(const TraceInput&) = delete;

  // A plain file to read: the given path itself or the temporary copy.
  const std::string& path() const { return readable_; }
  // The name to give in messages: the path as given ("-" for standard input).
  const std::string& display() const { return given_; }
  bool is_copy() const { return !tmp_.empty(); }
  Compression compression() const { return compression_; }

 private:
  std::string given_, readable_, tmp_;
  Compression compression_ = Compression::None;
};

}  // namespace septsim::traces
