// libFuzzer: the lackey importer must never crash, whatever the input; bad
// input ends in TraceError.
#include "fuzz/fuzz_util.h"
#include "traces/lackey_import.h"
#include "traces/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = fuzz_file(data, size, ".lackey");
  FuzzNullSink sink;
  septsim::traces::LackeyImportOptions opts;
  opts.paging.mem_size = 8u << 20;  // small, so inputs can fill guest memory and the table area
  opts.paging.placement = size % 2 ? septsim::traces::GuestPlacement::Fragmented : septsim::traces::GuestPlacement::Sequential;
  try {
    septsim::traces::import_lackey(path, sink, opts);
  } catch (const septsim::traces::TraceError&) {
  }
  return 0;
}
