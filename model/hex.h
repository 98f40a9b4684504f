// "0x1f000": how every message prints an address.
#pragma once
#include <cstdio>
#include <string>

#include "model/types.h"

namespace septsim {

inline std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}
inline std::string hex(Gfn gfn) { return hex(gfn.raw()); }

}  // namespace septsim
