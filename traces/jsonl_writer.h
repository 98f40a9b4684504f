// Writes events as trace vocabulary v1 JSON Lines (docs/trace-format.md):
// the header, then one event per line, addresses as hex strings, fields at
// their defaults left out. TraceReader reads back the same events.
#pragma once
#include <cstdio>
#include <string>

#include "traces/event_sink.h"

namespace septsim::traces {

class JsonlWriter : public EventSink {
 public:
  // Throws std::runtime_error "PATH: cannot write: ..." if the file cannot be created.
  JsonlWriter(const std::string& path, const std::string& description = "");
  ~JsonlWriter() override;
  void put(const Event& e) override;
  void finish() override;

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  std::string line_;
};

// One event as a JSON object on one line, without the newline.
std::string event_to_json(const Event& e);

}  // namespace septsim::traces
