// libFuzzer: the JSON Lines trace reader must never crash, whatever the input.
#include "fuzz/fuzz_util.h"
#include "traces/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = fuzz_file(data, size, ".jsonl");
  try {
    septsim::traces::TraceReader r(path);
    septsim::traces::Event e;
    while (r.next(e)) {
    }
  } catch (const septsim::traces::TraceError&) {
  }
  return 0;
}
