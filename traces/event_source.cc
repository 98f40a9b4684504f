#include "traces/event_source.h"

#include <fstream>

#include "traces/binary_trace.h"
#include "traces/reader.h"

namespace septsim::traces {

namespace {

class JsonlSource : public EventSource {
 public:
  explicit JsonlSource(const std::string& path) : reader_(path) {}
  bool next(Event& out) override { return reader_.next(out); }
  u64 line() const override { return reader_.line(); }
  const std::string& path() const override { return reader_.path(); }

 private:
  TraceReader reader_;
};

class BinarySource : public EventSource {
 public:
  explicit BinarySource(const std::string& path) : reader_(path) {}
  bool next(Event& out) override { return reader_.next(out); }
  size_t next_accesses(PlainAccess* out, size_t max) override { return reader_.next_accesses(out, max); }
  u64 line() const override { return reader_.index(); }
  const std::string& path() const override { return reader_.path(); }

 private:
  BinaryTraceReader reader_;
};

}  // namespace

std::unique_ptr<EventSource> open_event_source(const std::string& path) {
  if (is_binary_trace(path)) return std::make_unique<BinarySource>(path);
  return std::make_unique<JsonlSource>(path);
}

}  // namespace septsim::traces
