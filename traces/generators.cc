#include "traces/generators.h"

#include <algorithm>
#include <stdexcept>

#include "traces/reader.h"
#include "traces/generators_impl.h"
#include "traces/splitmix.h"

namespace septsim::traces {

namespace {

constexpr u32 kSlot = 0;

void vm(EventSink& sink, const GenOptions& o) {
  Event e;
  e.type = EventType::VmCreate;
  e.vcpus = o.vcpus;
  sink.put(e);
  Event m;
  m.type = EventType::MemslotAdd;
  m.slot.id = kSlot;
  m.slot.gpa = 0;
  m.slot.size = o.size;
  m.slot.backing = mmu::HostBacking::Thp2M;
  sink.put(m);
}

void dirty(EventSink& sink, DirtyLogOp op) {
  Event e;
  e.type = EventType::DirtyLog;
  e.slot.id = kSlot;
  e.dirty_op = op;
  sink.put(e);
}

// Each vCPU writes its share of memory once, page by page.
void gen_seq(const GenOptions& o, EventSink& sink) {
  vm(sink, o);
  phase(sink, "measured");
  u64 pages = o.size / kPageSize, share = pages / o.vcpus;
  for (u32 v = 0; v < o.vcpus; ++v)
    if (share) sink.put(access(v, v * share * kPageSize, AccessType::Write, share, kPageSize));
}

// Uniformly random 8-byte reads (70%) and writes over all memory, vCPUs in turn.
void gen_random(const GenOptions& o, EventSink& sink) {
  vm(sink, o);
  phase(sink, "measured");
  SplitMix64 r{o.seed};
  u64 words = o.size / 8;
  for (u64 i = 0; i < o.count; ++i) {
    u64 gpa = r.below(words) * 8;
    AccessType op = r.below(10) < 3 ? AccessType::Write : AccessType::Read;
    sink.put(access(u32(i % o.vcpus), gpa, op));
  }
}

// Pre-copy live migration: the guest fills memory, the VMM enables dirty
// logging, then `count` rounds of random writes each followed by
// KVM_GET_DIRTY_LOG, then logging is disabled (the migration failed over).
void gen_dirty_log(const GenOptions& o, EventSink& sink) {
  vm(sink, o);
  phase(sink, "fill");
  u64 pages = o.size / kPageSize, share = pages / o.vcpus;
  for (u32 v = 0; v < o.vcpus; ++v)
    if (share) sink.put(access(v, v * share * kPageSize, AccessType::Write, share, kPageSize));
  phase(sink, "migrate");
  dirty(sink, DirtyLogOp::Enable);
  SplitMix64 r{o.seed};
  u64 rounds = std::max<u64>(1, std::min<u64>(o.count, 1000));
  u64 per_round = std::max<u64>(1, pages / 16);
  for (u64 round = 0; round < rounds; ++round) {
    for (u64 i = 0; i < per_round; ++i)
      sink.put(access(u32(i % o.vcpus), r.below(pages) * kPageSize + r.below(512) * 8, AccessType::Write));
    dirty(sink, DirtyLogOp::Get);
  }
  phase(sink, "after");
  dirty(sink, DirtyLogOp::Disable);
  for (u32 v = 0; v < o.vcpus; ++v)
    if (share) sink.put(access(v, v * share * kPageSize, AccessType::Write, share, kPageSize));
}

Event memslot_event(EventType type, u32 id, Gpa gpa, u64 size, mmu::HostBacking backing) {
  Event e;
  e.type = type;
  e.slot.id = id;
  e.slot.gpa = gpa;
  e.slot.size = size;
  e.slot.backing = backing;
  return e;
}

// A VMM that keeps deleting and re-adding a small slot (a PCI BAR or option
// ROM being remapped) while the guest works on its main memory: slot 0 the
// guest's 2 MiB "sys" region (4K pages, code, stacks, page tables), slot 1
// the data (THP) at 1 GiB, slot 2 the 2 MiB churned slot (4K) at 3 GiB.
// Each of `count` (<= 1000) rounds deletes and re-adds slot 2, then every
// vCPU reads its share of the data page by page, 16 sys pages and 16 pages
// of slot 2.
void gen_memslot_churn(const GenOptions& o, EventSink& sink) {
  constexpr Gpa kData = 1ull << 30, kChurn = 3ull << 30;
  constexpr u64 kSmall = 2u << 20, kTouched = 16;
  Event e;
  e.type = EventType::VmCreate;
  e.vcpus = o.vcpus;
  sink.put(e);
  sink.put(memslot_event(EventType::MemslotAdd, 0, 0, kSmall, mmu::HostBacking::Page4K));
  sink.put(memslot_event(EventType::MemslotAdd, 1, kData, o.size, mmu::HostBacking::Thp2M));
  sink.put(memslot_event(EventType::MemslotAdd, 2, kChurn, kSmall, mmu::HostBacking::Page4K));
  u64 share = o.size / kPageSize / o.vcpus;
  auto touch_all = [&](AccessType op) {
    for (u32 v = 0; v < o.vcpus; ++v) {
      if (share) sink.put(access(v, kData + v * share * kPageSize, op, share, kPageSize));
      sink.put(access(v, v * kTouched * kPageSize % kSmall, AccessType::Read, kTouched, kPageSize));
      sink.put(access(v, kChurn, AccessType::Read, kTouched, kPageSize));
    }
  };
  phase(sink, "fill");
  touch_all(AccessType::Write);
  phase(sink, "churn");
  u64 rounds = std::min<u64>(o.count, 1000);
  for (u64 round = 0; round < rounds; ++round) {
    sink.put(memslot_event(EventType::MemslotDelete, 2, 0, 0, mmu::HostBacking::Page4K));
    sink.put(memslot_event(EventType::MemslotAdd, 2, kChurn, kSmall, mmu::HostBacking::Page4K));
    touch_all(AccessType::Read);
  }
}

// An L1 hypervisor running kL2Guests L2 guests with nested EPT on its
// vCPUs. L2 guest g has `size / kL2Guests` bytes at its GPA 0 and an EPT12
// rooted at 16 MiB + g * 4 KiB in L1. Each of `count` steps (per vCPU) enters
// an L2 (the next in turn, a random one 1 time in 4), which then reads 4 runs
// of 8 pages at random places of its working set (the first 4 MiB); 1 step
// in 8, L1 then remaps 4 pages of that L2 (EPT12 writes) and runs INVEPT
// single-context for its EPTP. A warm-up phase first enters every L2 on
// every vCPU and touches its working set.
constexpr u32 kL2Guests = 6;

u64 l2_eptp(u32 g) { return ((16ull << 20) + g * kPageSize) | (3u << 3) | (1u << 6) | 6u; }

Event nested(EventType type, u32 vcpu, u64 eptp) {
  Event e;
  e.type = type;
  e.vcpu = int(vcpu);
  e.eptp = eptp;
  return e;
}

Event l2_access(u32 vcpu, Gpa gpa, u64 count) {
  Event e = access(vcpu, gpa, AccessType::Read, count, count > 1 ? kPageSize : 0);
  e.type = EventType::L2Access;
  return e;
}

void gen_nested_ept(const GenOptions& o, EventSink& sink) {
  Event vm;
  vm.type = EventType::VmCreate;
  vm.vcpus = o.vcpus;
  sink.put(vm);
  u64 ws_pages = std::min<u64>(o.size / kL2Guests / kPageSize, 1024);
  if (ws_pages < 8) throw std::invalid_argument("--size must give each of the 6 L2 guests at least 32 KiB");
  phase(sink, "warmup");
  for (u32 v = 0; v < o.vcpus; ++v)
    for (u32 g = 0; g < kL2Guests; ++g) {
      sink.put(nested(EventType::NestedVmentry, v, l2_eptp(g)));
      sink.put(l2_access(v, 0, ws_pages));
    }
  phase(sink, "measured");
  SplitMix64 r{o.seed};
  for (u64 step = 0; step < o.count; ++step) {
    u32 v = u32(step % o.vcpus);
    u32 g = r.below(4) == 0 ? u32(r.below(kL2Guests)) : u32((step / o.vcpus + v) % kL2Guests);
    sink.put(nested(EventType::NestedVmentry, v, l2_eptp(g)));
    for (int run = 0; run < 4; ++run) sink.put(l2_access(v, r.below(ws_pages - 7) * kPageSize, 8));
    if (r.below(8) != 0) continue;
    for (int w = 0; w < 4; ++w) {
      Event e = nested(EventType::L1EptWrite, v, l2_eptp(g));
      e.gpa = r.below(ws_pages) * kPageSize;
      sink.put(e);
    }
    Event inv = nested(EventType::L1Invept, v, l2_eptp(g));
    inv.inv_kind = InvKind::Single;
    sink.put(inv);
  }
}

}  // namespace

const std::vector<GeneratorInfo>& generators() {
  static const std::vector<GeneratorInfo> g = {
      {"seq", "each vCPU writes its share of memory once, 4 KiB apart"},
      {"random", "COUNT uniformly random 8-byte accesses (30% writes), vCPUs in turn"},
      {"dirty-log-migration", "fill, enable dirty logging, COUNT (<= 1000) rounds of random writes + GET_DIRTY_LOG, disable"},
      {"td-boot", "a TD boots: measured image (PAGE.ADD), finalize, vCPUs accept memory (2M, some 4K after a fault), COUNT random accesses, teardown"},
      {"conversions", "a TD (Dynamic PAMT) converts private memory: COUNT (<= 1000) rounds of MapGPA / KVM_SET_MEMORY_ATTRIBUTES, 4K and 2M, teardown"},
      {"nested-ept", "an L1 hypervisor switching EPTPs among 6 L2 guests: COUNT entries, L2 reads, EPT12 writes + INVEPT"},
      {"memslot-churn", "COUNT (<= 1000) rounds of deleting and re-adding a small slot while vCPUs read all of memory"},
  };
  return g;
}

void generate(const std::string& name, const GenOptions& o, EventSink& sink) {
  if (o.vcpus < 1 || o.vcpus > TraceReader::kMaxVcpus) throw std::invalid_argument("--vcpus must be 1..256");
  if (o.size == 0 || o.size % (2u << 20) || o.size > (u64{1} << 46))
    throw std::invalid_argument("--size must be a non-zero multiple of 2M, at most 64T");
  if (o.count == 0) throw std::invalid_argument("--count must be at least 1");
  if (name == "seq") return gen_seq(o, sink);
  if (name == "random") return gen_random(o, sink);
  if (name == "dirty-log-migration") return gen_dirty_log(o, sink);
  if (name == "td-boot") return gen_td_boot(o, sink);
  if (name == "conversions") return gen_conversions(o, sink);
  if (name == "nested-ept") return gen_nested_ept(o, sink);
  if (name == "memslot-churn") {
    if (o.size > (2ull << 30)) throw std::invalid_argument("--size must be at most 2G for memslot-churn (data at 1 GiB)");
    return gen_memslot_churn(o, sink);
  }
  std::string known;
  for (const auto& g : generators()) known += (known.empty() ? "" : ", ") + g.name;
  throw std::invalid_argument("unknown generator '" + name + "' (known: " + known + ")");
}

}  // namespace septsim::traces
