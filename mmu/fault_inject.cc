#include "mmu/fault_inject.h"

#include <algorithm>
#include <charconv>

#include "model/config.h"
#include "model/stats.h"

namespace septsim::mmu {

const std::vector<std::string>& inject_class_names() {
  static const std::vector<std::string> names = {
      "none",           "skip-track",       "skip-kick",         "remove-without-block",  "free-linked-sept",
      "pamt-put-forgotten", "no-remote-flush", "huge-over-mixed", "stale-snapshot",       "promote-without-track",
      "double-map",     "dirty-log-no-wrprot", "slot-delete-no-zap", "convert-no-removal", "teardown-leak",
      "pml-no-flush",   "migrate-race"};
  return names;
}

FaultInjector::FaultInjector(const model::Config& cfg, model::StatsRegistry& stats) {
  const std::string& spec = cfg.s("debug.inject");
  const size_t at = spec.find('@');
  const std::string name = spec.substr(0, at);
  const auto& names = inject_class_names();
  const auto it = std::find(names.begin(), names.end(), name);
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  if (it == names.end())
    throw model::ConfigError("config key 'debug.inject': unknown bug class '" + name + "' (known: " + known + ")");
  armed_ = Inject(it - names.begin());
  if (at != std::string::npos) {
    const std::string when = spec.substr(at + 1);
    if (when == "all") {
      when_ = When::All;
    } else if (when == "random") {
      when_ = When::Random;
    } else {
      const auto [end, ec] = std::from_chars(when.data(), when.data() + when.size(), nth_);
      if (ec != std::errc{} || end != when.data() + when.size() || nth_ == 0)
        throw model::ConfigError("config key 'debug.inject': '" + when +
                                 "' after '@' must be a positive count, 'all' or 'random'");
    }
  }
  if (armed_ == Inject::None) {
    if (at != std::string::npos)
      throw model::ConfigError("config key 'debug.inject': 'none' takes no '@'");
    return;
  }
  rng_ = cfg.u("debug.inject_seed");
  fired_ = &stats.counter("debug.inject_fired", "bugs committed by debug.inject (fault injection, not for normal use)");
}

bool FaultInjector::decide() {
  ++reached_;
  bool now = false;
  switch (when_) {
    case When::Nth: now = reached_ == nth_; break;
    case When::All: now = true; break;
    case When::Random: {
      // splitmix64 (as traces/splitmix.h): one draw per opportunity.
      u64 z = (rng_ += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      now = ((z ^ (z >> 31)) & 3) == 0;
      break;
    }
  }
  if (now) ++*fired_;
  return now;
}

}  // namespace septsim::mmu
