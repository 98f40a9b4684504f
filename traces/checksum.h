// FNV-1a 64 of a file's bytes: the trace identity recorded in stats files and
// sweep manifests.
#pragma once
#include <string>

#include "model/types.h"

namespace septsim::traces {

u64 fnv1a_file(const std::string& path);
std::string fnv1a_hex(u64 sum);

}  // namespace septsim::traces
