#include "model/stats.h"

#include <stdexcept>

namespace septsim::model {

StatsRegistry::StatsRegistry() { phase_starts_.push_back(snapshot(current_phase_)); }

Counter& StatsRegistry::counter(const std::string& short_name, const std::string& description) {
  const std::string name = prefix_ + short_name;
  auto it = index_.find(name);
  if (it != index_.end()) return counters_[it->second.slot];
  index_[name] = {Kind::Counter, counters_.size()};
  if (!description.empty()) descriptions_[name] = description;
  for (auto& s : phase_starts_) s.counters.push_back(0);
  for (auto& [b, e] : closed_) b.counters.push_back(0), e.counters.push_back(0);
  return counters_.emplace_back(0);
}

Counter& StatsRegistry::gauge(const std::string& short_name, const std::string& description) {
  Counter& c = counter(short_name, description);
  index_[prefix_ + short_name].kind = Kind::Gauge;
  return c;
}

Histogram& StatsRegistry::histogram(const std::string& short_name, const std::string& description) {
  const std::string name = prefix_ + short_name;
  auto it = index_.find(name);
  if (it != index_.end()) return histograms_[it->second.slot];
  index_[name] = {Kind::Histogram, histograms_.size()};
  if (!description.empty()) descriptions_[name] = description;
  for (auto& s : phase_starts_) s.histograms.emplace_back();
  for (auto& [b, e] : closed_) b.histograms.emplace_back(), e.histograms.emplace_back();
  return histograms_.emplace_back();
}

u64 StatsRegistry::value(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end() || it->second.kind == Kind::Histogram) throw std::out_of_range("no counter " + name);
  return counters_[it->second.slot];
}

StatsRegistry::Snapshot StatsRegistry::snapshot(const std::string& name) const {
  return Snapshot{name, std::vector<u64>(counters_.begin(), counters_.end()),
                  std::vector<Histogram>(histograms_.begin(), histograms_.end())};
}

void StatsRegistry::begin_phase(const std::string& name) {
  Snapshot now = snapshot(current_phase_);
  closed_.emplace_back(phase_starts_.back(), now);
  now.name = name;
  phase_starts_.push_back(std::move(now));
  current_phase_ = name;
}

nlohmann::json StatsRegistry::phase_json(const Snapshot& begin, const Snapshot& end) const {
  nlohmann::json counters = nlohmann::json::object(), hists = nlohmann::json::object();
  for (const auto& [name, e] : index_) {
    if (e.kind == Kind::Counter) {
      counters[name] = end.counters[e.slot] - begin.counters[e.slot];
    } else if (e.kind == Kind::Gauge) {
      counters[name] = end.counters[e.slot];
    } else {
      const Histogram &hb = begin.histograms[e.slot], &he = end.histograms[e.slot];
      nlohmann::json h;
      h["count"] = he.count - hb.count;
      h["sum"] = he.sum - hb.sum;
      // An array in value order: as object keys ("<16", "<1024") they would
      // sort as text.
      nlohmann::json buckets = nlohmann::json::array();
      for (unsigned i = 0; i < Histogram::kBuckets; ++i) {
        u64 n = he.buckets[i] - hb.buckets[i];
        if (!n) continue;
        nlohmann::json b = {{"from", i == 0 ? 0 : 1ull << (i - 1)}, {"count", n}};
        if (i + 1 < Histogram::kBuckets) b["below"] = i == 0 ? 1 : 1ull << i;
        buckets.push_back(b);
      }
      h["buckets"] = buckets;
      hists[name] = h;
    }
  }
  return {{"name", end.name}, {"counters", counters}, {"histograms", hists}};
}

nlohmann::json StatsRegistry::to_json() const {
  nlohmann::json out;
  out["phases"] = nlohmann::json::array();
  for (const auto& [b, e] : closed_) out["phases"].push_back(phase_json(b, e));
  Snapshot now = snapshot(current_phase_);
  out["phases"].push_back(phase_json(phase_starts_.back(), now));
  Snapshot zero = snapshot("total");
  for (auto& c : zero.counters) c = 0;
  for (auto& h : zero.histograms) h = Histogram{};
  now.name = "total";
  out["total"] = phase_json(zero, now);
  return out;
}

std::vector<StatsRegistry::Info> StatsRegistry::list() const {
  std::vector<Info> out;
  for (const auto& [name, e] : index_) {
    auto d = descriptions_.find(name);
    out.push_back({name, e.kind, d == descriptions_.end() ? std::string() : d->second});
  }
  return out;
}

std::map<std::string, u64> StatsRegistry::totals() const {
  std::map<std::string, u64> out;
  for (const auto& [name, e] : index_)
    if (e.kind != Kind::Histogram) out[name] = counters_[e.slot];
  return out;
}

}  // namespace septsim::model
