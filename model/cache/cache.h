// A set-associative cache level of 64-byte lines (write-back, write-allocate,
// non-inclusive) as a TLM-2.0 target: `socket` takes line accesses (see
// line_access.h) from the level above, `next` sends misses and dirty
// write-backs to the level below, which may be another Cache, the Dram, or a
// target of the user's own. The cache keeps tags only; the bytes stay in
// PhysMem, which the page walker reads through DMI.
//
// Latency: an access served here costs `latency` (the load-to-use latency of
// this level); a miss costs what the level that served it says, nothing more
// (published latencies are load-to-use). Write-backs of dirty victims go to
// `next` as whole-line writes, which the level below installs without
// fetching the line; their latency is not charged to the access that
// evicted them.
//
// access() is the direct call the walker and the vCPU use; b_transport wraps it.
// Misses and write-backs go to `next` by a direct call when it reaches a
// level of model/cache (see LineTargetProbe), else as TLM transactions.
#pragma once
#include <memory>
#include <string>
#include <systemc>
#include <tlm>
#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>
#include <vector>

#include "model/cache/line_access.h"
#include "model/cache/memory_params.h"
#include "model/stats.h"
#include "model/timing.h"

namespace septsim::model {

class Cache : public sc_core::sc_module, public LineTarget {
 public:
  using Types = tlm::tlm_base_protocol_types;
  tlm_utils::simple_target_socket_optional<Cache> socket;
  tlm_utils::simple_initiator_socket_optional<Cache> next;

  // `stats`: when given, counters "<prefix>.hits", ".misses", ".writebacks".
  Cache(sc_core::sc_module_name name, MemLevel level, const CacheParams& p, const std::string& replacement, u64 seed,
        const Timing& timing, StatsRegistry* stats = nullptr, const std::string& prefix = "");

  // One access to the line holding `addr`; returns its latency in cycles and
  // says in `info` where it was served.
  Cycles access(u64 addr, bool write, LineAccess& info) {
    const u64 line = addr >> kLineShift;
    Way* hit = nullptr;
    if (line == last_line_) {  // consecutive fetches and loads often share a line
      hit = last_way_;
    } else {
      const size_t base = size_t(set_of(line)) * ways_;
      Way* set = &ways_of_[base];
      for (u32 w = 0; w < ways_; ++w)
        if (set[w].tag == line) {
          hit = &set[w];
          break;
        }
      if (!hit) return miss(line, base, write, info);
      last_line_ = line, last_way_ = hit;
    }
    hit->use = (++clock_ << 1) | (hit->use & 1) | (write ? 1 : 0);
    ++*hits_;
    info.served = level_;
    info.cycles = latency_;
    return latency_;
  }

  // Asks the host to bring the sets that `addr` maps to in the levels below
  // this one (model/cache levels reached by direct calls) into its caches:
  // a walker calls it before it reads the entry's bytes, so the two host
  // memory reads overlap. No effect on the model.
  void prefetch_below(u64 addr) const {
    for (const Cache* c = below_; c; c = c->below_) c->prefetch_set(addr >> kLineShift);
  }

  Cycles line_access(u64 addr, bool write, bool whole_line, LineAccess& info) override {
    if (!whole_line) return access(addr, write, info);
    install(addr, info);
    return info.cycles;
  }

  bool holds(u64 addr) const;  // the line of `addr` is cached (no replacement update)
  void invalidate_all();       // drops every line, dirty ones without write-back
  MemLevel level() const { return level_; }
  u32 sets() const { return sets_; }
  u32 ways() const { return ways_; }
  u64 hits() const { return *hits_; }
  u64 misses() const { return *misses_; }
  u64 writebacks() const { return *writebacks_; }

 private:
  static constexpr u64 kInvalid = ~u64{0};
  u32 set_of(u64 line) const { return mask_ ? u32(line & mask_) : (sets_ == 1 ? 0 : u32(line % sets_)); }
  void prefetch_set(u64 line) const {
    const char* p = reinterpret_cast<const char*>(&ways_of_[size_t(set_of(line)) * ways_]);
    const size_t bytes = size_t(ways_) * sizeof(Way);
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off);
    __builtin_prefetch(p + bytes - 1);
  }
  Cycles miss(u64 line, size_t base, bool write, LineAccess& info);
  void place(u64 line, size_t base, bool dirty);
  void install(u64 addr, LineAccess& info);
  Cycles forward(tlm::tlm_command cmd, u64 line, LineAccess& info);
  Cycles forward_tlm(tlm::tlm_command cmd, u64 line, LineAccess& info);
  void probe();
  void b_transport(tlm::tlm_generic_payload& trans, sc_core::sc_time& delay);

  MemLevel level_;
  u32 sets_, ways_, mask_;
  Cycles latency_;
  bool random_;
  u64 rng_;
  const Timing& timing_;
  u64 clock_ = 0;
  // One set's ways are contiguous: a lookup in a large LLC touches one or
  // two host cache lines, not three arrays.
  struct Way {
    u64 tag = kInvalid;  // line number, kInvalid when empty
    u64 use = 0;         // last use (LRU stamp) << 1 | dirty
  };
  struct FreeWays {
    void operator()(Way* w) const;
  };
  static Way* allocate_ways(size_t n);
  std::unique_ptr<Way[], FreeWays> ways_of_;  // sets_ x ways_; on huge pages when 2 MiB or more
  bool probed_ = false;          // `next` was asked what it reaches (on the first miss)
  LineTarget* direct_ = nullptr;  // ... a level of model/cache: called directly
  const Cache* below_ = nullptr;  // ... and that level when it is a Cache (prefetch_below)
  // The line of the last hit or fill and its way: a repeated access skips
  // the set search (same state change as the search would make).
  u64 last_line_ = kInvalid;
  Way* last_way_ = nullptr;
  tlm::tlm_generic_payload payload_;  // misses and write-backs to `next`
  unsigned char buffer_[kLineBytes] = {};
  Counter own_[3] = {};  // counters when no registry is given
  Counter *hits_, *misses_, *writebacks_;
};

}  // namespace septsim::model
