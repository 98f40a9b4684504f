#include "traces/checksum.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <vector>

namespace septsim::traces {

namespace {

constexpr u64 kFnvOffset = 1469598103934665603ull, kFnvPrime = 1099511628211ull;

// A regular file through mmap (no copy into a buffer); false if it cannot be mapped.
bool fnv1a_mapped(const std::string& path, u64& h) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
    ::close(fd);
    return false;
  }
  const size_t n = size_t(st.st_size);
  void* m = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) return false;
  ::madvise(m, n, MADV_SEQUENTIAL);
  const u8* p = static_cast<const u8*>(m);
  u64 v = kFnvOffset;
  for (size_t i = 0; i < n; ++i) v = (v ^ p[i]) * kFnvPrime;
  ::munmap(m, n);
  h = v;
  return true;
}

}  // namespace

u64 fnv1a_file(const std::string& path) {
  u64 h = kFnvOffset;
  if (fnv1a_mapped(path, h)) return h;
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    for (std::streamsize i = 0; i < in.gcount(); ++i) h = (h ^ u8(buf[size_t(i)])) * kFnvPrime;
  }
  return h;
}

std::string fnv1a_hex(u64 sum) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(sum));
  return buf;
}

}  // namespace septsim::traces
