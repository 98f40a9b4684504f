// The binary trace format (.sstb): the Event stream of trace vocabulary v1 in
// a compact, versioned, checksummed container, read and written as a stream.
//
//   file   = header block* end
//   header = "SSTB\r\n\x1a\n" (8 bytes; \r\n and \x1a catch text-mode mangling),
//            u32 version (2; 1 is still read), u32 reserved (0)  little-endian
//   block  = u32 payload_bytes (1..kMaxBlockBytes), u32 events (>= 1),
//            u64 checksum (block_checksum of the payload), payload
//   end    = u32 0, u32 0, u64 total events of the file
//   event  = u8 type, LEB128 bitmap of the fields that differ from their
//            defaults (kField* order), then each such number as LEB128, then
//            the name (LEB128 length + bytes) if its bit is set, then, if the
//            kTdx bit is set (version 2), the TDX fields: their own LEB128
//            bitmap (kTdxField order) and each as LEB128. Version 1 has
//            neither the TD VM fields nor the TDX events.
//
// A file without its end block is truncated; every block is checked before
// any of its events is returned, and decoded events are validated like the
// JSON Lines reader does (ranges, alignment, vcpu < vcpus).
#pragma once
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "traces/event_sink.h"
#include "traces/event_source.h"
#include "traces/reader.h"

namespace septsim::traces {

constexpr char kBinaryMagic[8] = {'S', 'S', 'T', 'B', '\r', '\n', '\x1a', '\n'};
constexpr u32 kBinaryVersion = 2;  // 2 adds the TD events; version 1 files are still read

// 64-bit checksum of a block payload (word-wise multiply-xor).
u64 block_checksum(const u8* data, size_t n);

// True if the file starts with the binary magic.
bool is_binary_trace(const std::string& path);

class BinaryTraceWriter : public EventSink {
 public:
  static constexpr size_t kBlockBytes = 64 * 1024;  // a block is flushed once its payload reaches this
  explicit BinaryTraceWriter(const std::string& path);
  ~BinaryTraceWriter() override;
  void put(const Event& e) override;
  void put_access(const Event& e) override;
  void finish() override;

 private:
  void encode(const Event& e, u64 bits, u64 tdx_bits);
  void flush_block();
  std::string path_;
  std::FILE* f_ = nullptr;
  void write_block(const std::vector<u8>& payload, size_t len, u32 events, u64 sum);
  std::vector<u8> block_;  // block_[0, len_) is the block so far; the rest is room
  size_t len_ = 0;
  u32 block_events_ = 0;
  std::vector<u8> held_;  // a full block not written yet (flush_block), held_[0, held_len_)
  size_t held_len_ = 0;
  u32 held_events_ = 0;  // 0: none held
  u64 total_ = 0;
};

class BinaryTraceReader {
 public:
  static constexpr u32 kMaxBlockBytes = 16u << 20;
  // Throws TraceError "FILE: ..." if the file cannot be opened or is not .sstb v1.
  explicit BinaryTraceReader(const std::string& path);
  ~BinaryTraceReader();
  BinaryTraceReader(const BinaryTraceReader&) = delete;
  BinaryTraceReader& operator=(const BinaryTraceReader&) = delete;

  // Next event; false after the end block. Errors: TraceError
  // "FILE:N: field 'x': ..." with N the 1-based event index.
  bool next(Event& out);
  // EventSource::next_accesses: the plain accesses that follow, up to `max`
  // and the end of the current block.
  size_t next_accesses(PlainAccess* out, size_t max);
  u64 index() const { return index_; }
  const std::string& path() const { return path_; }

 private:
  bool load_block();
  size_t read_header(u8 (&h)[16]);
  size_t read_payload(u32 bytes);
  u64 checksum_of_block(bool ahead_sum, u64 sum);
  [[noreturn]] void fail(const std::string& field, const std::string& msg) const;
  // The same, built out of line: the decoder's hot path stays small.
  [[noreturn, gnu::cold, gnu::noinline]] void fail_cold(const char* field, const char* msg) const;
  [[noreturn, gnu::cold, gnu::noinline]] void fail_number(const char* field, const char* before, u64 v, bool in_hex,
                                                          const char* after = "") const;
  void decode(Event& out);
  bool decode_access(Event& out);
  void validate(const Event& e);
  void validate_tdx(const Event& e);
  void validate_access(const Event& e) const;

  std::string path_;
  std::FILE* f_ = nullptr;
  std::vector<u8> block_;
  size_t pos_ = 0;
  u32 block_left_ = 0;  // events left in the current block
  u64 block_no_ = 0;
  u64 file_offset_ = 16;
  u64 index_ = 0;
  bool ended_ = false;
  struct VmDecl {
    u32 vcpus;
    bool tdx;
  };
  std::vector<VmDecl> vms_;  // vm_create'd VMs by id
  bool others_seen_ = false;  // an event other than vm_create was read
  const Event* last_out_ = nullptr;  // the Event decoded into last time,
  u64 last_line_ = 0;                // its line then,
  u64 prev_bits_ = 0;                // and the fields it got
  u64 known_bits_ = 0;   // field bits of the file's version
  u32 known_types_ = 0;  // event types of the file's version
  std::map<u32, u32> td_vcpus_;  // td_create'd TDs and their vCPU counts
  // The block after the current one, read ahead so that the two checksums
  // are computed together: as read, checked when its turn comes.
  struct ReadAhead {
    bool valid = false;  // head and payload hold the next block's bytes
    u8 head[16] = {};
    size_t head_n = 0;           // header bytes read
    std::vector<u8> payload;
    size_t payload_n = 0;        // payload bytes read (0: not read, the header being unusual)
    bool have_sum = false;       // sum is the whole payload's block_checksum
    u64 sum = 0;
  };
  ReadAhead ahead_;
};

}  // namespace septsim::traces
