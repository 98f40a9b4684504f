// TD generators for `septsim gen`: td-boot and conversions, built from the
// TD VM events (docs/trace-format.md, "A TD VM").
#include <numeric>
#include <vector>

#include "traces/generators_impl.h"
#include "traces/splitmix.h"

namespace septsim::traces {

namespace {

constexpr u64 k2M = u64{2} << 20;
constexpr Gpa kImageGpa = 0x100000;     // TDVF-like image at 1 MiB, in the first 2M region
constexpr u64 kImagePages = 64;         // 256 KiB, PAGE.ADDed and measured
constexpr Gpa kSharedBit = Gpa{1} << 47;  // gpaw 48
constexpr u64 k4kChunkPages = 64;       // pages a 4K-accepting chunk accepts

// The TD VM: one THP memslot at GPA 0 of o.size bytes, the measured image,
// TDH.MR.FINALIZE.
void td_vm(EventSink& sink, const GenOptions& o, bool dynamic_pamt, SplitMix64& r) {
  Event e;
  e.type = EventType::VmCreate;
  e.vcpus = o.vcpus;
  e.tdx_vm = true;
  e.tdx.gpaw = 48;
  e.tdx.ept_levels = 4;
  e.tdx.dynamic_pamt = dynamic_pamt;
  sink.put(e);
  e = Event{};
  e.type = EventType::MemslotAdd;
  e.slot.size = o.size;
  e.slot.backing = mmu::HostBacking::Thp2M;
  sink.put(e);
  e = Event{};
  e.type = EventType::TdInitMemRegion;
  e.gpa = kImageGpa;
  e.size = kImagePages * kPageSize;
  e.measure = true;
  e.tag = r.next() >> 20;
  sink.put(e);
  e = Event{};
  e.type = EventType::TdFinalize;
  sink.put(e);
}

// td_teardown's VP.FLUSH drops every vCPU's cached translations itself.
void teardown(EventSink& sink) {
  Event e;
  e.type = EventType::TdTeardown;
  sink.put(e);
}

void accept(EventSink& sink, u32 vcpu, Gpa gpa, int tdx_level) {
  Event e;
  e.type = EventType::Accept;
  e.vcpu = int(vcpu);
  e.gpa = gpa;
  e.tdx.level = tdx_level;
  sink.put(e);
}

// A conversion: the guest's MapGPA (the shared bit of gpa says which way)
// or the VMM's KVM_SET_MEMORY_ATTRIBUTES.
void convert(EventSink& sink, EventType type, u32 vcpu, Gpa gpa, u64 size, bool make_private) {
  Event e;
  e.type = type;
  if (type == EventType::MapGpa) e.vcpu = int(vcpu);
  e.gpa = gpa;
  e.size = size;
  e.make_private = make_private;
  sink.put(e);
}

// The 2M regions after the first (which holds the image), in a seeded order.
std::vector<u64> shuffled_chunks(const GenOptions& o, SplitMix64& r) {
  std::vector<u64> c(o.size / k2M - 1);
  std::iota(c.begin(), c.end(), u64{1});
  for (size_t i = c.size(); i > 1; --i) std::swap(c[i - 1], c[r.below(i)]);
  return c;
}

void check_td_size(const GenOptions& o) {
  if (o.size < 2 * k2M || o.size > kSharedBit) throw std::invalid_argument("--size of a TD must be 4M .. 128T (below the shared bit)");
}

// A memory region the guest accepted: `pages` 4K pages from `gpa`.
struct Accepted {
  Gpa gpa;
  u64 pages;
};

// The guest kernel accepts a chunk: 2M at once (TDG.MEM.PAGE.ACCEPT level 1,
// the fault AUGs a 2M page), or page by page after touching the first page
// (its EPT violation AUGs it before the ACCEPT), then writes what it accepted.
Accepted accept_chunk(EventSink& sink, u32 vcpu, Gpa base, bool by_4k) {
  if (!by_4k) {
    accept(sink, vcpu, base, 1);
    sink.put(access(vcpu, base, AccessType::Write, k2M / kPageSize, kPageSize));
    return {base, k2M / kPageSize};
  }
  sink.put(access(vcpu, base, AccessType::Write));
  for (u64 p = 0; p < k4kChunkPages; ++p) accept(sink, vcpu, base + p * kPageSize, 0);
  sink.put(access(vcpu, base, AccessType::Write, k4kChunkPages, kPageSize));
  return {base, k4kChunkPages};
}

}  // namespace

// Boot: the image is read, each vCPU accepts its share of the 2M regions in
// a seeded order (one in four page by page), then COUNT accesses (30%
// writes) to random accepted bytes, vCPUs in turn, then teardown.
void gen_td_boot(const GenOptions& o, EventSink& sink) {
  check_td_size(o);
  SplitMix64 r{o.seed};
  td_vm(sink, o, false, r);
  phase(sink, "boot");
  sink.put(access(0, kImageGpa, AccessType::Read, kImagePages, kPageSize));
  std::vector<Accepted> accepted;
  std::vector<u64> chunks = shuffled_chunks(o, r);
  for (size_t i = 0; i < chunks.size(); ++i)
    accepted.push_back(accept_chunk(sink, u32(i % o.vcpus), chunks[i] * k2M, r.below(4) == 0));
  phase(sink, "run");
  for (u64 i = 0; i < o.count && !accepted.empty(); ++i) {
    const Accepted& a = accepted[r.below(accepted.size())];
    Gpa gpa = a.gpa + r.below(a.pages * kPageSize / 8) * 8;
    sink.put(access(u32(i % o.vcpus), gpa, r.below(10) < 3 ? AccessType::Write : AccessType::Read));
  }
  teardown(sink);
}

// Conversions: every 2M region is accepted (2M, or its first 64 pages by 4K),
// then COUNT (<= 1000) round trips, each chosen at random:
// - the guest converts one 4K page to shared (MapGPA with the shared bit),
//   two vCPUs use the shared alias, the guest converts it back (MapGPA),
//   accepts it again and writes it;
// - the VMM converts a 2M-accepted region to shared
//   (KVM_SET_MEMORY_ATTRIBUTES), a vCPU writes the shared alias, the VMM
//   converts it back and the guest accepts it again at 2M.
void gen_conversions(const GenOptions& o, EventSink& sink) {
  check_td_size(o);
  SplitMix64 r{o.seed};
  td_vm(sink, o, true, r);
  phase(sink, "accept");
  std::vector<Gpa> small, huge;  // regions accepted by 4K pages, at 2M
  std::vector<u64> chunks = shuffled_chunks(o, r);
  for (size_t i = 0; i < chunks.size(); ++i) {
    bool by_4k = i % 2 == 0;
    accept_chunk(sink, u32(i % o.vcpus), chunks[i] * k2M, by_4k);
    (by_4k ? small : huge).push_back(chunks[i] * k2M);
  }
  phase(sink, "convert");
  u64 rounds = std::min<u64>(o.count, 1000);
  for (u64 i = 0; i < rounds; ++i) {
    u32 v = u32(r.below(o.vcpus)), w = u32((v + 1) % o.vcpus);
    if (huge.empty() || (!small.empty() && r.below(4) != 0)) {
      Gpa gpa = small[r.below(small.size())] + r.below(k4kChunkPages) * kPageSize;
      convert(sink, EventType::MapGpa, v, gpa | kSharedBit, kPageSize, false);
      sink.put(access(v, gpa | kSharedBit, AccessType::Write));
      sink.put(access(w, gpa | kSharedBit, AccessType::Read));
      convert(sink, EventType::MapGpa, v, gpa, kPageSize, true);
      accept(sink, v, gpa, 0);
      sink.put(access(v, gpa, AccessType::Write));
    } else {
      Gpa base = huge[r.below(huge.size())];
      convert(sink, EventType::SetMemoryAttributes, v, base, k2M, false);
      sink.put(access(v, base | kSharedBit, AccessType::Write, k2M / kPageSize, kPageSize));
      convert(sink, EventType::SetMemoryAttributes, v, base, k2M, true);
      accept(sink, v, base, 1);
      sink.put(access(v, base, AccessType::Write));
    }
  }
  teardown(sink);
}

}  // namespace septsim::traces
