#include "model/cache/cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>

namespace septsim::model {

namespace {
u64 splitmix(u64& s) {
  u64 z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

// A tag array of 2 MiB or more (the LLC's: 9.6 MiB for Skylake-SP, 26 MiB
// for Sapphire Rapids) asks the host for transparent huge pages: a lookup in
// a random set then costs the simulator one host cache miss instead of a host
// TLB miss and a page walk on top. Advice only: where THP is off nothing changes.
Cache::Way* Cache::allocate_ways(size_t n) {
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t bytes = n * sizeof(Way);
  const size_t align = bytes >= kHuge ? kHuge : 64;
  const size_t size = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, size);
  if (!p) throw std::bad_alloc();
  if (align == kHuge) ::madvise(p, size, MADV_HUGEPAGE);
  Way* w = static_cast<Way*>(p);
  std::uninitialized_fill_n(w, n, Way{});
  return w;
}

void Cache::FreeWays::operator()(Way* w) const { std::free(w); }

Cache::Cache(sc_core::sc_module_name name, MemLevel level, const CacheParams& p, const std::string& replacement,
             u64 seed, const Timing& timing, StatsRegistry* stats, const std::string& prefix)
    : sc_core::sc_module(name),
      socket("socket"),
      next("next"),
      level_(level),
      sets_(p.sets ? p.sets : 1),
      ways_(p.ways ? p.ways : 1),
      mask_((sets_ & (sets_ - 1)) == 0 ? sets_ - 1 : 0),
      latency_(p.latency),
      random_(replacement == "random"),
      rng_(seed ^ (u64(level) << 56)),
      timing_(timing),
      ways_of_(allocate_ways(size_t(sets_) * ways_)) {
  if (replacement != "lru" && replacement != "random")
    throw std::invalid_argument("cache replacement must be lru or random, got '" + replacement + "'");
  socket.register_b_transport(this, &Cache::b_transport);
  payload_.set_data_ptr(buffer_);
  payload_.set_data_length(kLineBytes);
  payload_.set_streaming_width(kLineBytes);
  payload_.set_byte_enable_ptr(nullptr);
  payload_.set_dmi_allowed(false);
  hits_ = &own_[0], misses_ = &own_[1], writebacks_ = &own_[2];
  if (stats) {
    const std::string what = kMemLevelNames[unsigned(level)];
    hits_ = &stats->counter(prefix + ".hits", what + " line hits");
    misses_ = &stats->counter(prefix + ".misses", what + " line misses (sent to the next level)");
    writebacks_ = &stats->counter(prefix + ".writebacks", what + " dirty lines evicted and written to the next level");
  }
}

// Asks once, at the first miss (the binding is complete by then), whether
// `next` reaches a level that takes direct calls.
void Cache::probe() {
  probed_ = true;
  if (next.size() == 0) return;
  LineTargetProbe probe;
  payload_.set_command(tlm::TLM_IGNORE_COMMAND);
  payload_.set_address(0);
  payload_.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  payload_.set_extension(&probe);
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  next->b_transport(payload_, delay);
  payload_.clear_extension(&probe);
  direct_ = probe.target;
  below_ = dynamic_cast<const Cache*>(direct_);
}

Cycles Cache::forward(tlm::tlm_command cmd, u64 line, LineAccess& info) {
  if (!probed_) [[unlikely]]
    probe();
  if (direct_) [[likely]] {
    info.served = MemLevel::DRAM;
    info.row_hit = false;
    info.cycles = 0;
    const bool write = cmd == tlm::TLM_WRITE_COMMAND;  // only write-backs of whole lines go down
    return direct_->line_access(line << kLineShift, write, write, info);
  }
  return forward_tlm(cmd, line, info);
}

Cycles Cache::forward_tlm(tlm::tlm_command cmd, u64 line, LineAccess& info) {
  if (next.size() == 0) {  // nothing below: this level is the memory
    info.served = level_;
    info.cycles = latency_;
    return latency_;
  }
  info.served = MemLevel::DRAM;
  info.row_hit = false;
  info.cycles = 0;
  payload_.set_command(cmd);
  payload_.set_address(line << kLineShift);
  payload_.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  payload_.set_extension(&info);
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  next->b_transport(payload_, delay);
  payload_.clear_extension(&info);
  if (payload_.is_response_error()) [[unlikely]]
    throw std::runtime_error(std::string(name()) + ": line access failed below: " + payload_.get_response_string());
  // A target that ignores the extension annotates its latency as time.
  if (delay != sc_core::SC_ZERO_TIME) info.cycles += timing_.from_time(delay + timing_.to_time(1) / 2);
  return info.cycles;
}

Cycles Cache::miss(u64 line, size_t base, bool write, LineAccess& info) {
  ++*misses_;
  // The levels below look up their sets next: let the host fetch them together.
  for (const Cache* c = below_; c; c = c->below_) c->prefetch_set(line);
  const Cycles c = forward(tlm::TLM_READ_COMMAND, line, info);
  place(line, base, write);
  return c;
}

// Puts `line` into its set: into an empty way, else over the least recently
// used (or a random) way, whose line goes to `next` first if it is dirty.
void Cache::place(u64 line, size_t base, bool dirty) {
  Way* set = &ways_of_[base];
  u32 way = ways_;
  if (random_) {
    for (u32 w = 0; w < ways_; ++w)
      if (set[w].tag == kInvalid) {
        way = w;
        break;
      }
    if (way == ways_) way = u32(splitmix(rng_) % ways_);
  } else {
    // An empty way has use 0 and every filled one more: the least recently
    // used way is the first empty one if there is one.
    way = 0;
    for (u32 w = 1; w < ways_; ++w)
      if (set[w].use < set[way].use) way = w;
  }
  if (set[way].tag != kInvalid) {
    if (set[way].use & 1) {
      ++*writebacks_;
      LineAccess wb;
      forward(tlm::TLM_WRITE_COMMAND, set[way].tag, wb);  // off the critical path: not charged
    }
  }
  set[way].tag = line;
  set[way].use = (++clock_ << 1) | (dirty ? 1 : 0);
  last_line_ = line, last_way_ = &set[way];  // the victim may have been the last line
}

// A whole line written by the level above (its write-back): no fetch.
void Cache::install(u64 addr, LineAccess& info) {
  const u64 line = addr >> kLineShift;
  const size_t base = size_t(set_of(line)) * ways_;
  info.served = level_;
  info.cycles = latency_;
  Way* set = &ways_of_[base];
  for (u32 w = 0; w < ways_; ++w)
    if (set[w].tag == line) {
      set[w].use = (++clock_ << 1) | 1;
      return;
    }
  place(line, base, true);
}

bool Cache::holds(u64 addr) const {
  const u64 line = addr >> kLineShift;
  const size_t base = size_t(set_of(line)) * ways_;
  for (u32 w = 0; w < ways_; ++w)
    if (ways_of_[base + w].tag == line) return true;
  return false;
}

void Cache::invalidate_all() {
  std::fill_n(ways_of_.get(), size_t(sets_) * ways_, Way{});
  last_line_ = kInvalid, last_way_ = nullptr;
}

void Cache::b_transport(tlm::tlm_generic_payload& trans, sc_core::sc_time& delay) {
  const tlm::tlm_command cmd = trans.get_command();
  if (cmd == tlm::TLM_IGNORE_COMMAND) {
    if (LineTargetProbe* probe = trans.get_extension<LineTargetProbe>()) probe->target = this;
    trans.set_response_status(tlm::TLM_OK_RESPONSE);
    return;
  }
  const bool write = cmd == tlm::TLM_WRITE_COMMAND;
  if (LineAccess* info = trans.get_extension<LineAccess>()) {
    if (write && trans.get_data_length() == kLineBytes)
      install(trans.get_address(), *info);
    else
      access(trans.get_address(), write, *info);
  } else {
    LineAccess local;
    delay += timing_.to_time(access(trans.get_address(), write, local));
  }
  trans.set_response_status(tlm::TLM_OK_RESPONSE);
}

}  // namespace septsim::model
