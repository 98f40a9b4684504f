// An EventSink that keeps every event, for tests of importers and generators.
#pragma once
#include <vector>

#include "traces/event_sink.h"

namespace septsim::test {

struct Collect : traces::EventSink {
  std::vector<traces::Event> events;
  void put(const traces::Event& e) override { events.push_back(e); }
  void finish() override {}
  std::vector<traces::Event> of(traces::EventType t) const {
    std::vector<traces::Event> out;
    for (const auto& e : events)
      if (e.type == t) out.push_back(e);
    return out;
  }
  size_t count(traces::EventType t) const { return of(t).size(); }
  size_t decisions(traces::DecisionKind k) const {
    size_t n = 0;
    for (const auto& e : events) n += e.type == traces::EventType::KvmDecision && e.decision == k;
    return n;
  }
};

}  // namespace septsim::test
