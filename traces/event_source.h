// A stream of decoded trace events from a file of any supported format:
// JSON Lines (traces/reader.h) or the binary .sstb format
// (traces/binary_trace.h), chosen by the file's first bytes, not its name.
#pragma once
#include <memory>
#include <string>

#include "traces/event.h"

namespace septsim::traces {

// An access event of VM 0 that needs no checks beyond the reader's (an
// existing vCPU, valid addresses): what next_accesses() hands out.
struct PlainAccess {
  u64 addr;
  u64 count;
  u64 stride;
  u32 vcpu;
  bool is_gva;
  AccessType access;
};

class EventSource {
 public:
  virtual ~EventSource() = default;
  // Decodes the next event into `out`; false at the end. Throws TraceError.
  virtual bool next(Event& out) = 0;
  // Decodes up to `max` next events while they are plain accesses (the
  // replayer's direct path): 0 when the next event is anything else, an
  // error, the end, or the source has no such path; next() then reads it.
  // line() is the last one's. An Event given to next() afterwards is decoded
  // afresh.
  virtual size_t next_accesses(PlainAccess* out, size_t max) { return 0; }
  // Where the last event came from: its line (JSON Lines) or its 1-based
  // index (binary), for "FILE:N:" messages.
  virtual u64 line() const = 0;
  virtual const std::string& path() const = 0;
};

// Opens `path`; throws TraceError if it cannot be opened or its header is bad.
std::unique_ptr<EventSource> open_event_source(const std::string& path);

}  // namespace septsim::traces
