#include "traces/guest_paging_model.h"

#include <bit>
#include <string>

#include "model/hex.h"
#include "traces/splitmix.h"

namespace septsim::traces {

FramePermutation::FramePermutation(u64 n, u64 seed) : n_(n) {
  unsigned bits = n > 1 ? unsigned(std::bit_width(n - 1)) : 1;
  half_bits_ = (bits + 1) / 2;
  SplitMix64 r{seed};
  for (u64& k : keys_) k = r.next();
}

u64 FramePermutation::feistel(u64 x) const {
  u64 mask = (u64{1} << half_bits_) - 1;
  u64 left = x >> half_bits_, right = x & mask;
  for (u64 k : keys_) {
    u64 next = left ^ (splitmix_mix(right ^ k) & mask);
    left = right;
    right = next;
  }
  return left << half_bits_ | right;
}

u64 FramePermutation::operator()(u64 i) const {
  u64 x = feistel(i);
  while (x >= n_) x = feistel(x);  // cycle walking: stays a permutation of [0, n)
  return x;
}

namespace {

constexpr u64 k2M = u64{2} << 20;

// The page-table area: 1/64 of guest memory, at least 2 MiB, 2 MiB aligned.
u64 table_area_bytes(u64 mem) { return std::max(k2M, (mem / 64 + k2M - 1) / k2M * k2M); }

GuestPagingOptions checked(const GuestPagingOptions& o) {
  if (o.mem_size < 2 * k2M || o.mem_size % k2M || o.mem_size > (u64{1} << 46))
    throw std::invalid_argument("--mem must be a multiple of 2M from 4M to 64T");
  if (o.page_level < PG_LEVEL_4K || o.page_level > PG_LEVEL_1G) throw std::invalid_argument("--page-size must be 4k, 2m or 1g");
  if ((o.mem_size - table_area_bytes(o.mem_size)) / level_size(o.page_level) == 0)
    throw std::invalid_argument("--mem " + hex(o.mem_size) + " leaves no room for one guest page of the --page-size");
  return o;
}

}  // namespace

GuestPagingModel::GuestPagingModel(const GuestPagingOptions& opts)
    : opts_(checked(opts)),
      cr3_(opts_.mem_size - table_area_bytes(opts_.mem_size)),
      pool_pages_(table_area_bytes(opts_.mem_size) / kPageSize - 1),
      frames_(cr3_ / level_size(opts_.page_level)),
      perm_(frames_, opts_.seed) {
  recent_.fill(~u64{0});
}

void GuestPagingModel::setup(EventSink& sink, u32 vcpus, u32 vcpu, bool td) const {
  Event e;
  e.type = EventType::VmCreate;
  e.vcpus = vcpus;
  if (td) {
    e.tdx_vm = true;
    e.tdx.gpaw = 48;
    e.tdx.ept_levels = 4;
  }
  sink.put(e);
  e = Event{};
  e.type = EventType::MemslotAdd;
  e.slot.id = 0;
  e.slot.size = opts_.mem_size;
  e.slot.backing = opts_.backing;
  sink.put(e);
  if (td) {
    e = Event{};
    e.type = EventType::TdFinalize;
    sink.put(e);
  }
  e = Event{};
  e.type = EventType::GuestPtPool;
  e.gpa = cr3_ + kPageSize;
  e.size = pool_pages_ * kPageSize;
  sink.put(e);
  e = Event{};
  e.type = EventType::SetCr3;
  e.vcpu = int(vcpu);
  e.cr3 = cr3_;
  e.guest_levels = kLevels;
  sink.put(e);
}

Gpa GuestPagingModel::next_frame() {
  u64 n = pages_.size();
  if (n >= frames_)
    throw GuestPagingError("guest memory full: all " + std::to_string(frames_) + " data pages are mapped; raise --mem");
  return (opts_.placement == GuestPlacement::Fragmented ? perm_(n) : n) * page_size();
}

void GuestPagingModel::add_tables(Gva gva) {
  for (int level = opts_.page_level; level < kLevels; ++level) {
    u64 key = u64(level) << 60 | (gva & ((u64{1} << 57) - 1)) >> level_shift(level + 1);
    if (tables_.count(key)) continue;
    if (tables_.size() >= pool_pages_)
      throw GuestPagingError("guest page-table area full (" + std::to_string(pool_pages_) + " tables); raise --mem");
    tables_.insert(key);
  }
}

bool GuestPagingModel::touch_slow(Gva gva, Event& map, Gpa gpa_bits) {
  u64 page = gva >> level_shift(opts_.page_level);
  u64& recent = recent_[page & (kRecentPages - 1)];
  if (pages_.count(page)) {
    last_page_ = recent = page;
    return false;
  }
  u64 upper = gva >> 47;
  if (upper != 0 && upper != 0x1ffff) throw GuestPagingError(hex(gva) + " is not canonical under 4-level guest paging");
  Gpa gpa = next_frame();
  add_tables(gva);
  pages_.insert(page);
  last_page_ = recent = page;
  map = Event{};
  map.type = EventType::GuestMap;
  map.cr3 = cr3_;
  map.guest_levels = kLevels;
  map.gva = page << level_shift(opts_.page_level);
  map.gpa = gpa | gpa_bits;
  map.size = page_size();
  map.page_level = opts_.page_level;
  return true;
}

}  // namespace septsim::traces
