// One statistics registry for the whole model. Modules register named
// counters and histograms once and then bump plain integers on hot paths.
// Phases (warm-up, measured, ...) are scoped by snapshots: each phase reports
// the difference between its end and its start. Output order is by name, so
// the JSON is byte-identical for the same input.
#pragma once
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/types.h"

namespace septsim::model {

using Counter = u64;

// Power-of-two bucketed histogram: bucket 0 counts zeros, bucket i > 0 values
// in [2^(i-1), 2^i); the last bucket also takes everything larger.
struct Histogram {
  static constexpr unsigned kBuckets = 40;
  u64 buckets[kBuckets] = {};
  u64 count = 0;
  u64 sum = 0;
  void add(u64 v) {
    unsigned b = v ? 64u - unsigned(__builtin_clzll(v)) : 0u;
    buckets[b < kBuckets ? b : kBuckets - 1]++;
    count++;
    sum += v;
  }
};

class StatsRegistry {
 public:
  StatsRegistry();
  // Returns a reference that stays valid for the registry's lifetime.
  // Registering the same name twice returns the same counter.
  Counter& counter(const std::string& name, const std::string& description = "");
  Histogram& histogram(const std::string& name, const std::string& description = "");
  // Gauges are instant values (e.g. pages_4k): phases report the value at the
  // phase end, not a difference.
  Counter& gauge(const std::string& name, const std::string& description = "");

  // Names registered from now on start with `prefix` ("vm1." while the
  // replayer builds a trace's second VM); value() and has() take full names.
  void set_name_prefix(const std::string& prefix) { prefix_ = prefix; }
  const std::string& name_prefix() const { return prefix_; }

  u64 value(const std::string& name) const;  // current value; throws if unknown
  bool has(const std::string& name) const { return index_.count(name) != 0; }

  // Ends the current phase and starts one called `name`. The first phase is
  // called "warmup" unless begin_phase is called before anything is counted.
  void begin_phase(const std::string& name);
  void rename_current_phase(const std::string& name) { current_phase_ = name; }

  // {"phases":[{"name":..., "counters":{...}, "histograms":{...}}...], "total":{...}}
  // A histogram is {"count", "sum", "buckets": [{"from", "below", "count"}...]}
  // with its non-empty buckets in value order ("below" absent on the last,
  // open-ended bucket).
  nlohmann::json to_json() const;
  // Flat name -> value of the totals, for CSV rows and tests.
  std::map<std::string, u64> totals() const;
  const std::map<std::string, std::string>& descriptions() const { return descriptions_; }

  enum class Kind { Counter, Gauge, Histogram };
  struct Info {
    std::string name;
    Kind kind;
    std::string description;
  };
  // Every registered statistic, sorted by name.
  std::vector<Info> list() const;

 private:
  struct Entry {
    Kind kind;
    size_t slot;
  };
  struct Snapshot {
    std::string name;
    std::vector<u64> counters;
    std::vector<Histogram> histograms;
  };
  Snapshot snapshot(const std::string& name) const;
  nlohmann::json phase_json(const Snapshot& begin, const Snapshot& end) const;

  std::map<std::string, Entry> index_;
  std::map<std::string, std::string> descriptions_;
  std::deque<Counter> counters_;
  std::deque<Histogram> histograms_;
  std::vector<Snapshot> phase_starts_;
  std::vector<std::pair<Snapshot, Snapshot>> closed_;
  std::string current_phase_ = "warmup";
  std::string prefix_;
};

}  // namespace septsim::model
