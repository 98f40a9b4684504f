// The description of every statistic: name, kind, unit, meaning and the
// module that counts it. Meanings are the ones each module registers with
// its counter; kind comes from the registry; unit and module follow from the
// name by the rules in stat_catalog.cc. `septsim stats --list` prints it and
// docs/stats.md holds its rendering (a test keeps the two in step).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/stats.h"

namespace septsim::traces {

struct StatDescription {
  std::string name;     // "vcpuN.dtlb.misses": vcpuN stands for each vCPU
  std::string kind;     // counter (per phase: the difference), gauge (value at the phase end), histogram
  std::string unit;     // cycles, bytes, MiB, ... or "count"
  std::string module;   // source directory of the module that counts it
  std::string meaning;
};

std::vector<StatDescription> describe_stats(const std::vector<model::StatsRegistry::Info>& registered);

std::string stat_unit(const std::string& name, model::StatsRegistry::Kind kind);
std::string stat_module(const std::string& name);

// {"statistics": [{name, kind, unit, module, meaning}...], "derived": [...]}
nlohmann::json stat_catalog_json(const std::vector<StatDescription>& stats);
// A plain-text table (septsim stats --list) and the Markdown page (docs/stats.md).
std::string stat_catalog_text(const std::vector<StatDescription>& stats);
std::string stat_catalog_markdown(const std::vector<StatDescription>& stats);

}  // namespace septsim::traces
