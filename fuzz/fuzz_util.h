// libFuzzer targets read files, as septsim does: each input is written to a
// per-process file in /dev/shm (or /tmp) first.
#pragma once
#include <unistd.h>

#include <cstdio>
#include <string>

#include "traces/event_sink.h"

inline std::string fuzz_file(const uint8_t* data, size_t size, const char* ext) {
  static std::string path = std::string(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") + "/septsim-fuzz-" +
                            std::to_string(getpid()) + ext;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  return path;
}

// Drops what an importer writes: the fuzzers look for crashes, not output.
struct FuzzNullSink : septsim::traces::EventSink {
  void put(const septsim::traces::Event&) override {}
  void finish() override {}
};

// libsystemc's shared library wants an sc_main; the fuzzers never start SystemC.
extern "C" int sc_main(int, char**) { return 0; }
