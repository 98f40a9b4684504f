#include "traces/event_desc.h"

#include "traces/reader.h"

namespace septsim::traces {

static_assert(find_field(event_desc(EventType::VmCreate), "vcpus")->hi == TraceReader::kMaxVcpus);
static_assert(find_field(event_desc(EventType::MemslotAdd), "slot")->hi == TraceReader::kMaxSlots - 1);

std::string field_range_error(EventType type, std::string_view field, u64 v) {
  const FieldDesc* f = find_field(event_desc(type), field);
  if (!f || (v >= f->lo && v <= f->hi)) return {};
  return std::to_string(v) + " is out of range (" + std::to_string(f->lo) + ".." + std::to_string(f->hi) + ")";
}

}  // namespace septsim::traces
