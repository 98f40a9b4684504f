#include "traces/trace_input.h"

#include <lzma.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "traces/reader.h"

namespace septsim::traces {

namespace {

constexpr size_t kChunk = 1 << 20;

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f && f != stdin) std::fclose(f);
  }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

File open_input(const std::string& path) {
  if (path == "-") return File(stdin);
  errno = 0;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw TraceError(path, 0, "", std::string("cannot open: ") + std::strerror(errno ? errno : ENOENT));
  return File(f);
}

Compression by_magic(const unsigned char* b, size_t n) {
  if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return Compression::Gzip;
  if (n >= 6 && std::memcmp(b, "\xfd" "7zXZ\0", 6) == 0) return Compression::Xz;
  if (n >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) return Compression::Zstd;
  return Compression::None;
}

// A streaming decompressor: feed() takes the compressed bytes chunk by
// chunk and writes what they decode to `out`; finish() throws when the data
// ended inside a stream. Concatenated streams (gzip members, xz streams,
// zstd frames) decode one after the other.
class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void feed(const unsigned char* data, size_t n, std::FILE* out) = 0;
  virtual void finish(std::FILE* out) = 0;
};

[[noreturn]] void corrupt(const std::string& path, const std::string& what) {
  throw TraceError(path, 0, "", "corrupt compressed data: " + what);
}

void write_out(std::FILE* out, const void* p, size_t n, const std::string& path) {
  if (n && std::fwrite(p, 1, n, out) != n) throw TraceError(path, 0, "", "cannot write the decompressed copy");
}

class GzipDecoder : public Decoder {
 public:
  explicit GzipDecoder(const std::string& path) : path_(path), buf_(kChunk) {
    // 16 + MAX_WBITS: gzip wrapper only; concatenated members are restarted below.
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) corrupt(path_, "inflateInit2 failed");
  }
  ~GzipDecoder() override { inflateEnd(&z_); }
  void feed(const unsigned char* data, size_t n, std::FILE* out) override {
    z_.next_in = const_cast<unsigned char*>(data);
    z_.avail_in = unsigned(n);
    while (z_.avail_in > 0) {
      if (ended_) {  // another gzip member follows
        inflateReset(&z_);
        ended_ = false;
      }
      z_.next_out = buf_.data();
      z_.avail_out = unsigned(buf_.size());
      int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) corrupt(path_, z_.msg ? z_.msg : "inflate failed");
      write_out(out, buf_.data(), buf_.size() - z_.avail_out, path_);
      if (rc == Z_STREAM_END) ended_ = true;
      if (rc == Z_BUF_ERROR && z_.avail_out != 0) break;
    }
  }
  void finish(std::FILE*) override {
    if (!ended_) corrupt(path_, "the gzip stream is truncated");
  }

 private:
  std::string path_;
  z_stream z_{};
  std::vector<unsigned char> buf_;
  bool ended_ = false;
};

class XzDecoder : public Decoder {
 public:
  explicit XzDecoder(const std::string& path) : path_(path), buf_(kChunk) {
    if (lzma_stream_decoder(&s_, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK) corrupt(path_, "lzma_stream_decoder failed");
  }
  ~XzDecoder() override { lzma_end(&s_); }
  void feed(const unsigned char* data, size_t n, std::FILE* out) override { run(data, n, LZMA_RUN, out); }
  void finish(std::FILE* out) override { run(nullptr, 0, LZMA_FINISH, out); }

 private:
  void run(const unsigned char* data, size_t n, lzma_action action, std::FILE* out) {
    s_.next_in = data;
    s_.avail_in = n;
    for (;;) {
      s_.next_out = buf_.data();
      s_.avail_out = buf_.size();
      lzma_ret rc = lzma_code(&s_, action);
      write_out(out, buf_.data(), buf_.size() - s_.avail_out, path_);
      if (rc == LZMA_STREAM_END) return;
      if (rc == LZMA_BUF_ERROR && action == LZMA_FINISH) corrupt(path_, "the xz stream is truncated");
      if (rc != LZMA_OK && rc != LZMA_BUF_ERROR) corrupt(path_, "xz error " + std::to_string(int(rc)));
      if (s_.avail_in == 0 && s_.avail_out != 0 && action == LZMA_RUN) return;
    }
  }
  std::string path_;
  lzma_stream s_ = LZMA_STREAM_INIT;
  std::vector<unsigned char> buf_;
};

class ZstdDecoder : public Decoder {
 public:
  explicit ZstdDecoder(const std::string& path) : path_(path), d_(ZSTD_createDStream()), buf_(ZSTD_DStreamOutSize()) {
    if (!d_) corrupt(path_, "ZSTD_createDStream failed");
  }
  ~ZstdDecoder() override { ZSTD_freeDStream(d_); }
  void feed(const unsigned char* data, size_t n, std::FILE* out) override {
    ZSTD_inBuffer in{data, n, 0};
    for (;;) {
      ZSTD_outBuffer o{buf_.data(), buf_.size(), 0};
      size_t rc = ZSTD_decompressStream(d_, &o, &in);
      if (ZSTD_isError(rc)) corrupt(path_, ZSTD_getErrorName(rc));
      write_out(out, buf_.data(), o.pos, path_);
      last_ = rc;  // 0: a frame ended and everything it holds is out
      // Done with this chunk once it is consumed and the decoder holds
      // nothing back (a full output buffer may hide more).
      if (in.pos == in.size && (rc == 0 || o.pos < o.size)) break;
    }
  }
  void finish(std::FILE*) override {
    if (last_ != 0) corrupt(path_, "the zstd frame is truncated");
  }

 private:
  std::string path_;
  ZSTD_DStream* d_;
  std::vector<unsigned char> buf_;
  size_t last_ = 0;
};

std::unique_ptr<Decoder> decoder_for(Compression c, const std::string& path) {
  switch (c) {
    case Compression::Gzip: return std::make_unique<GzipDecoder>(path);
    case Compression::Xz: return std::make_unique<XzDecoder>(path);
    case Compression::Zstd: return std::make_unique<ZstdDecoder>(path);
    default: return nullptr;
  }
}

}  // namespace

const char* compression_name(Compression c) {
  switch (c) {
    case Compression::Gzip: return "gzip";
    case Compression::Xz: return "xz";
    case Compression::Zstd: return "zstd";
    default: return "none";
  }
}

Compression detect_compression(const std::string& path) {
  File f = open_input(path);
  unsigned char b[8];
  size_t n = std::fread(b, 1, sizeof b, f.get());
  return by_magic(b, n);
}

TraceInput::TraceInput(const std::string& path) : given_(path), readable_(path) {
  if (path != "-") {
    compression_ = detect_compression(path);
    if (compression_ == Compression::None) return;
  }
  File in = open_input(path);
  std::vector<unsigned char> buf(kChunk);
  size_t n = std::fread(buf.data(), 1, buf.size(), in.get());
  compression_ = by_magic(buf.data(), n);

  const char* dir = std::getenv("TMPDIR");
  std::string tmpl = std::string(dir && *dir ? dir : "/tmp") + "/septsim-trace-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) throw TraceError(path, 0, "", std::string("cannot create a temporary file: ") + std::strerror(errno));
  tmp_ = readable_ = name.data();
  std::FILE* out = ::fdopen(fd, "wb");
  try {
    auto dec = decoder_for(compression_, path);
    while (n > 0) {
      if (dec)
        dec->feed(buf.data(), n, out);
      else
        write_out(out, buf.data(), n, path);
      n = std::fread(buf.data(), 1, buf.size(), in.get());
    }
    if (std::ferror(in.get())) throw TraceError(path, 0, "", "read error");
    if (dec) dec->finish(out);
    if (std::fclose(out) != 0) {
      out = nullptr;
      throw TraceError(path, 0, "", "cannot write the decompressed copy");
    }
  } catch (...) {
    if (out) std::fclose(out);
    std::remove(tmp_.c_str());
    throw;
  }
}

TraceInput::~TraceInput() {
  if (!tmp_.empty()) std::remove(tmp_.c_str());
}

}  // namespace septsim::traces
