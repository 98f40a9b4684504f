#include "traces/event_desc.h"

#include "traces/reader.h"

namespace septsim::traces {

static_assert(find_field(event_desc(EventType::VmCreate), "vcpus")->hi == TraceReader::kMaxVcpus);
static_assert(find_field(event_desc(EventType::MemslotAdd), "slot")->hi == TraceReader::kMaxSlots - 1);
static_assert(desc_detail::kMaxGpa == TraceReader::kMaxGpa);

std::string field_range_error(EventType type, std::string_view field, u64 v) {
  const FieldDesc* f = find_field(event_desc(type), field);
  if (!f || (v >= f->lo && v <= f->hi)) return {};
  return std::to_string(v) + " is out of range (" + std::to_string(f->lo) + ".." + std::to_string(f->hi) + ")";
}

namespace desc_detail {

void read_eptp(const FieldIn& in, Event& e) {
  const u64 v = in.num();
  const std::string h = FieldIn::hex(v);
  if ((v & 7) != 0 && (v & 7) != 6) in.fail(h + ": memory type (bits 2:0) must be 0 (UC) or 6 (WB)");
  if (((v >> 3) & 7) != 3 && ((v >> 3) & 7) != 4) in.fail(h + ": page-walk length - 1 (bits 5:3) must be 3 or 4");
  if (v & 0xf00) in.fail(h + ": reserved bits 11:8 must be 0");
  if (v >= kMaxGpa) in.fail(h + " is beyond the 52-bit physical address space");
  e.eptp = v;
}

void check_access(const FieldIn& in, Event& e) {
  const bool wraps = e.stride && e.count - 1 > (~u64{0} - e.addr) / e.stride;
  const u64 last = e.addr + (e.count - 1) * e.stride;
  if (e.is_gva) {
    if (wraps || !FieldIn::canonical(last, 5) || (e.addr >> 63) != (last >> 63))
      in.fail("count", "the accesses leave the canonical half of " + FieldIn::hex(e.addr) + " (count x stride too large)");
  } else if (wraps || last >= kMaxGpa) {
    in.fail("count", "the last access is beyond the 52-bit guest-physical address space (count x stride too large)");
  }
}

void check_guest_map(const FieldIn& in, Event& e) {
  const u64 page = level_size(e.page_level);
  in.multiple("size", e.size, page);
  in.aligned("gpa", e.gpa, page);
  if (e.size > kMaxGpa - e.gpa)
    in.fail("size", "gpa + size " + FieldIn::hex(e.gpa) + " + " + FieldIn::hex(e.size) +
                        " is beyond the 52-bit guest-physical address space");
  if (!FieldIn::canonical(e.gva, e.guest_levels))
    in.fail("gva", FieldIn::hex(e.gva) + " is not canonical for " + std::to_string(e.guest_levels) + "-level paging");
  in.aligned("gva", e.gva, page);
  const u64 last = e.gva + (e.size - 1);
  if (last < e.gva || !FieldIn::canonical(last, e.guest_levels) || (last >> 63) != (e.gva >> 63))
    in.fail("size", "gva + size leaves the canonical half of " + FieldIn::hex(e.gva) + " for " +
                        std::to_string(e.guest_levels) + "-level paging");
}

}  // namespace desc_detail

}  // namespace septsim::traces
