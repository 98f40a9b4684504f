// libFuzzer: the binary trace reader must never crash, whatever the input.
// Inputs get a valid magic and version 1 so the fuzzer reaches the blocks; a
// recomputed checksum (first input byte odd) lets it reach the event decoder.
#include <cstring>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "traces/binary_trace.h"

using namespace septsim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  bool fix = data[0] & 1;
  std::vector<uint8_t> buf(16);
  std::memcpy(buf.data(), traces::kBinaryMagic, 8);
  buf[8] = 1;
  buf.insert(buf.end(), data + 1, data + size);
  // Fix the first block's checksum when its length fits the input.
  if (fix && buf.size() >= 32) {
    u32 len = u32(buf[16]) | u32(buf[17]) << 8 | u32(buf[18]) << 16 | u32(buf[19]) << 24;
    if (len && len <= buf.size() - 32) {
      u64 sum = traces::block_checksum(buf.data() + 32, len);
      for (int i = 0; i < 8; ++i) buf[24 + size_t(i)] = uint8_t(sum >> (8 * i));
    }
  }
  std::string path = fuzz_file(buf.data(), buf.size(), ".sstb");
  try {
    traces::BinaryTraceReader r(path);
    traces::Event e;
    while (r.next(e)) {
    }
  } catch (const traces::TraceError&) {
  }
  return 0;
}
