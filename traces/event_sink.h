// Where an importer, a generator or `septsim convert` writes events: a JSON
// Lines file (traces/jsonl_writer.h) or a binary .sstb file
// (traces/binary_trace.h), chosen by the output file's extension.
#pragma once
#include <memory>
#include <string>

#include "traces/event.h"

namespace septsim::traces {

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void put(const Event& e) = 0;
  // An access event whose other fields are all at their defaults (an
  // importer's runs): a writer may skip comparing the rest. Same output as put().
  virtual void put_access(const Event& e) { put(e); }
  // Flushes and closes; throws std::runtime_error "FILE: ..." if writing failed.
  virtual void finish() = 0;
};

// ".sstb" writes the binary format, anything else JSON Lines. `description`
// goes into the JSON Lines header.
std::unique_ptr<EventSink> open_event_sink(const std::string& path, const std::string& description = "");

}  // namespace septsim::traces
