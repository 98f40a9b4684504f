#include "traces/event_sink.h"

#include "traces/binary_trace.h"
#include "traces/jsonl_writer.h"

namespace septsim::traces {

std::unique_ptr<EventSink> open_event_sink(const std::string& path, const std::string& description) {
  auto ends_with = [&](const char* ext) {
    std::string e = ext;
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends_with(".sstb")) return std::make_unique<BinaryTraceWriter>(path);
  return std::make_unique<JsonlWriter>(path, description);
}

}  // namespace septsim::traces
