// Checks a configuration as a whole before a model is built: TLB and
// paging-structure cache geometries the arrays cannot take (zero entries or
// ways, more ways than entries, entries not a multiple of the ways) are
// refused instead of being silently rounded, and so is a word the key does
// not take (tlb.replacement = fifo), which the model would refuse only when
// it is built: after a sweep's first points had run.
#pragma once
#include <string>
#include <vector>

#include "model/config.h"

namespace septsim::traces {

// Every problem found, each naming the keys and their values; empty when the
// configuration is usable.
std::vector<std::string> config_problems(const model::Config& cfg);

// Throws model::ConfigError "WHERE: PROBLEM" for the first problem found.
void check_config(const model::Config& cfg, const std::string& where);

}  // namespace septsim::traces
