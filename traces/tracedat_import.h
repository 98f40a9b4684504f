// trace-cmd's binary trace.dat (tracecmd-record output) read through
// libtracecmd and libtraceevent: the event formats come from the file, so a
// kernel's own field layout is decoded as that kernel wrote it. Each record
// becomes the FtraceRecord the text import would have parsed from the same
// event's line (docs/kvm-compare.md, "trace.dat"), and the text import's
// rules turn the records into septsim events.
#pragma once
#include <memory>
#include <string>

#include "traces/ftrace_import.h"

namespace septsim::traces {

// True when `path` starts with trace.dat's magic (0x17 0x08 0x44 "tracing").
bool is_tracedat(const std::string& path);
// False when septsim was built without libtracecmd-dev / libtraceevent-dev.
bool tracedat_supported();

// The records of the file's top-level ring buffer in time order (ties: the
// lower CPU first, as the kernel's own `trace` file merges them).
class TraceDatSource : public FtraceRecordSource {
 public:
  // Throws TraceError when the file cannot be opened as a trace.dat (or
  // septsim has no libtracecmd).
  explicit TraceDatSource(const std::string& path);
  ~TraceDatSource() override;
  bool next(FtraceRecord& r) override;
  void rewind() override;
  u64 lost_events() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace septsim::traces
