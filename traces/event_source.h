// A stream of decoded trace events from a file of any supported format:
// JSON Lines (traces/reader.h) or the binary .sstb format
// (traces/binary_trace.h), chosen by the file's first bytes, not its name.
#pragma once
#include <memory>
#include <string>

#include "traces/event.h"

namespace septsim::traces {

class EventSource {
 public:
  virtual ~EventSource() = default;
  // Decodes the next event into `out`; false at the end. Throws TraceError.
  virtual bool next(Event& out) = 0;
  // Where the last event came from: its line (JSON Lines) or its 1-based
  // index (binary), for "FILE:N:" messages.
  virtual u64 line() const = 0;
  virtual const std::string& path() const = 0;
};

// Opens `path`; throws TraceError if it cannot be opened or its header is bad.
std::unique_ptr<EventSource> open_event_source(const std::string& path);

}  // namespace septsim::traces
