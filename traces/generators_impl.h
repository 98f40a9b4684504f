// What the generators (generators.cc, td_generators.cc) share.
#pragma once
#include "traces/generators.h"

namespace septsim::traces {

inline void phase(EventSink& sink, const char* name) {
  Event e;
  e.type = EventType::Phase;
  e.name = name;
  sink.put(e);
}

inline Event access(u32 vcpu, u64 gpa, AccessType op, u64 count = 1, u64 stride = 0) {
  Event e;
  e.type = EventType::Access;
  e.vcpu = int(vcpu);
  e.addr = gpa;
  e.access = op;
  e.count = count;
  e.stride = stride;
  return e;
}

// The TD generators (td_generators.cc).
void gen_td_boot(const GenOptions& o, EventSink& sink);
void gen_conversions(const GenOptions& o, EventSink& sink);

}  // namespace septsim::traces
