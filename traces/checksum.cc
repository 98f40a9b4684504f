#include "traces/checksum.h"

#include <cstdio>
#include <fstream>
#include <vector>

namespace septsim::traces {

u64 fnv1a_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  u64 h = 1469598103934665603ull;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    for (std::streamsize i = 0; i < in.gcount(); ++i) h = (h ^ u8(buf[size_t(i)])) * 1099511628211ull;
  }
  return h;
}

std::string fnv1a_hex(u64 sum) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(sum));
  return buf;
}

}  // namespace septsim::traces
