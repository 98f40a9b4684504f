// libFuzzer: the ftrace text importer must never crash, whatever the input.
#include "fuzz/fuzz_util.h"
#include "traces/ftrace_import.h"
#include "traces/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = fuzz_file(data, size, ".trace");
  FuzzNullSink sink;
  try {
    septsim::traces::import_ftrace(path, sink);
  } catch (const septsim::traces::TraceError&) {
  }
  septsim::traces::FtraceRecord r;
  septsim::traces::parse_ftrace_line(std::string_view(reinterpret_cast<const char*>(data), size), r);
  return 0;
}
