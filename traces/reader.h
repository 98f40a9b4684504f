// Streaming reader of trace vocabulary v1 (JSON Lines, docs/trace-format.md).
// Reads the file in fixed-size chunks: memory stays constant however large
// the trace is. Every problem is a TraceError naming file, line and field.
#pragma once
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "model/types.h"
#include "traces/event.h"

namespace septsim::traces {

// what() is "FILE:LINE: field 'NAME': MESSAGE", "FILE:LINE: MESSAGE" when no
// field applies, or "FILE: MESSAGE" when no line does (line() == 0).
class TraceError : public std::runtime_error {
 public:
  TraceError(const std::string& file, u64 line, const std::string& field, const std::string& message);
  u64 line() const { return line_; }
  const std::string& field() const { return field_; }
  const std::string& message() const { return message_; }

 private:
  u64 line_;
  std::string field_, message_;
};

struct Header {
  std::string format;  // "septsim-trace"
  u32 version = 0;
  std::string description;
};

class TraceReader {
 public:
  static constexpr u32 kVersion = 1;
  static constexpr size_t kMaxLineBytes = 1u << 20;
  static constexpr u32 kMaxVcpus = 256;
  static constexpr u32 kMaxVms = 16;  // VMs of one trace (vm_create "vm" 0..15)
  static constexpr u32 kMaxSlots = 32764;  // KVM_USER_MEM_SLOTS on x86
  static constexpr u64 kMaxGpa = u64{1} << 52;

  // Opens the file and reads the header.
  explicit TraceReader(const std::string& path);
  ~TraceReader();
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;

  // Decodes the next event into `out`; false at the end of the file.
  bool next(Event& out);
  // 1-based number of the last line read (that of the last event returned).
  u64 line() const;
  const Header& header() const;
  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The trace number syntax: "0x1f000" (hex), "4096" (decimal), "4K" / "2m" /
// "1G" / "1T" (decimal times a binary size suffix). False if malformed or
// beyond 64 bits.
bool parse_trace_number(std::string_view text, u64& out);
template <class Space>
bool parse_trace_number(std::string_view text, Addr<Space>& out) {
  u64 v = 0;
  if (!parse_trace_number(text, v)) return false;
  out = v;
  return true;
}

// Stable names of the vocabulary ("memslot_add", "invpcid", ...).
const char* event_type_name(EventType type);

}  // namespace septsim::traces
