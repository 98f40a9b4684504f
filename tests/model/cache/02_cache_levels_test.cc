// Cache and DRAM modules on their own: hit latency, misses sent down the
// chain, LRU replacement within a set, dirty write-backs, the DRAM row
// buffer, and a stream over N pages whose hit pattern is worked by hand.
#include <catch2/catch.hpp>

#include "cache_env.h"

using namespace septsim;
using namespace septsim::cachetest;

namespace {

// L1D (4 sets x 2 ways, 4 cycles) -> L2 (16 sets x 4 ways, 14) -> LLC (64 x 4, 60) -> DRAM.
struct Chain {
  Timing timing;
  Cache l1d, l2, llc;
  Dram dram;
  explicit Chain(CacheParams p1 = {4, 2, 4}, CacheParams p2 = {16, 4, 14}, CacheParams p3 = {64, 4, 60},
                 DramParams d = {2, 8192, 150, 220})
      : l1d(unique_name("l1d").c_str(), MemLevel::L1D, p1, "lru", 1, timing),
        l2(unique_name("l2").c_str(), MemLevel::L2, p2, "lru", 2, timing),
        llc(unique_name("llc").c_str(), MemLevel::LLC, p3, "lru", 3, timing),
        dram(unique_name("dram").c_str(), d, timing) {
    l1d.next.bind(l2.socket);
    l2.next.bind(llc.socket);
    llc.next.bind(dram.socket);
  }
  Cycles read(u64 a, LineAccess& info) { return l1d.access(a, false, info); }
};

}  // namespace

TEST_CASE("a line is served by the first level that holds it, at that level's latency", "[cache]") {
  Chain c;
  LineAccess info;
  // Cold: DRAM, bank 0 has no open row -> row miss.
  CHECK(c.read(0x1000, info) == 220);
  CHECK(info.served == MemLevel::DRAM);
  CHECK_FALSE(info.row_hit);
  // Every level filled on the way back.
  CHECK(c.l1d.holds(0x1000));
  CHECK(c.l2.holds(0x1000));
  CHECK(c.llc.holds(0x1000));
  CHECK(c.read(0x1038, info) == 4);  // same 64-byte line
  CHECK(info.served == MemLevel::L1D);
  c.l1d.invalidate_all();
  CHECK(c.read(0x1000, info) == 14);
  CHECK(info.served == MemLevel::L2);
  c.l1d.invalidate_all();
  c.l2.invalidate_all();
  CHECK(c.read(0x1000, info) == 60);
  CHECK(info.served == MemLevel::LLC);
  CHECK(c.l1d.hits() == 1);
  CHECK(c.l1d.misses() == 3);
}

TEST_CASE("the least recently used way of a set is the victim", "[cache]") {
  Chain c;
  LineAccess info;
  // L1D: 4 sets of 64-byte lines, so lines 0, 4, 8 (addresses 0, 0x100, 0x200) share set 0.
  c.read(0x000, info);
  c.read(0x100, info);
  c.read(0x000, info);  // 0x100 is now the LRU way
  c.read(0x200, info);  // evicts 0x100
  CHECK(c.l1d.holds(0x000));
  CHECK_FALSE(c.l1d.holds(0x100));
  CHECK(c.l1d.holds(0x200));
  CHECK(c.read(0x100, info) == 14);  // still in L2
}

TEST_CASE("a dirty victim is written back to the next level without charging the access", "[cache]") {
  Chain c;
  LineAccess info;
  CHECK(c.l1d.access(0x000, true, info) == 220);  // write-allocate: fetched, then dirty
  c.read(0x100, info);
  c.l2.invalidate_all();  // the write-back must re-create the line in L2
  const u64 llc_hits = c.llc.hits(), llc_misses = c.llc.misses();
  const Cycles cost = c.read(0x200, info);  // evicts dirty 0x000 (LRU) from set 0
  CHECK(c.l1d.writebacks() == 1);
  CHECK(c.l2.holds(0x000));  // written back: a whole line, installed without asking the LLC
  CHECK(c.llc.hits() == llc_hits);
  CHECK(c.llc.misses() == llc_misses + 1);  // 0x200 only
  CHECK(cost == 150);  // 0x200 comes from the open row of DRAM bank 0; nothing added for the write-back
  CHECK(info.row_hit);
}

TEST_CASE("DRAM row buffer: lines of the open row hit, another row of the same bank misses", "[cache]") {
  Timing timing;
  Dram dram(unique_name("dram").c_str(), DramParams{2, 8192, 150, 220}, timing);
  LineAccess info;
  CHECK(dram.access(0x0000, false, info) == 220);  // bank 0 row 0: opened
  CHECK(dram.access(0x1fc0, false, info) == 150);  // last line of that row
  CHECK(info.row_hit);
  CHECK(dram.access(0x2000, false, info) == 220);  // bank 1 row 0
  CHECK(dram.access(0x0040, false, info) == 150);  // bank 0 still has row 0 open
  CHECK(dram.access(0x4000, false, info) == 220);  // bank 0 row 1: conflict
  CHECK(dram.access(0x0000, false, info) == 220);  // row 0 again: conflict
  CHECK(dram.row_hits() == 2);
  CHECK(dram.row_misses() == 4);
}

TEST_CASE("a stream over N pages gives the hand-worked line hit pattern", "[cache]") {
  // Skylake-SP geometry (memory.* defaults): L1D 32 KiB, L2 1 MiB. N = 16 pages
  // (64 KiB) is twice the L1D and fits the L2.
  Config cfg = hierarchy_config();
  Timing timing = Timing::from(cfg);
  const MemoryParams& m = timing.memory;
  Cache l1d(unique_name("l1d").c_str(), MemLevel::L1D, m.l1d, "lru", 1, timing);
  Cache l2(unique_name("l2").c_str(), MemLevel::L2, m.l2, "lru", 2, timing);
  Cache llc(unique_name("llc").c_str(), MemLevel::LLC, m.llc, "lru", 3, timing);
  Dram dram(unique_name("dram").c_str(), m.dram, timing);
  l1d.next.bind(l2.socket);
  l2.next.bind(llc.socket);
  llc.next.bind(dram.socket);

  constexpr u64 kPages = 16, kBase = 0x40000000;  // 1 GiB: row-aligned
  constexpr u64 kLines = kPages * kPageSize / kLineBytes;  // 1024
  Cycles pass1 = 0, pass2 = 0, pass3 = 0;
  LineAccess info;
  // Pass 1, one read per 8 bytes: 1024 lines from DRAM; 8192-byte rows, so a
  // row miss every 128 lines (8 rows) and 1016 row hits; the other 7 reads of
  // each line hit L1D.
  for (u64 a = kBase; a < kBase + kPages * kPageSize; a += 8) pass1 += l1d.access(a, false, info);
  CHECK(dram.row_misses() == kLines / 128);
  CHECK(dram.row_hits() == kLines - kLines / 128);
  CHECK(l1d.misses() == kLines);
  CHECK(l1d.hits() == 7 * kLines);
  CHECK(pass1 == 8 * 216 + 1016 * 148 + 7 * 1024 * 4);
  // Pass 2, one read per line: the stream is twice the L1D (64 sets x 8 ways):
  // under LRU every line was evicted before its reuse, so all come from L2.
  for (u64 a = kBase; a < kBase + kPages * kPageSize; a += kLineBytes) pass2 += l1d.access(a, false, info);
  CHECK(l2.hits() == kLines);
  CHECK(pass2 == kLines * 14);
  // Pass 3 over the last 8 pages only (32 KiB = the L1D): the second half of
  // pass 2 is what the L1D holds, so all hit.
  for (u64 a = kBase + 8 * kPageSize; a < kBase + kPages * kPageSize; a += kLineBytes)
    pass3 += l1d.access(a, false, info);
  CHECK(pass3 == (kLines / 2) * 4);
}

TEST_CASE("a level driven by b_transport without the extension annotates its latency as time", "[cache]") {
  Chain c;
  tlm::tlm_generic_payload p;
  unsigned char buf[64] = {};
  p.set_command(tlm::TLM_READ_COMMAND);
  p.set_address(0x3000);
  p.set_data_ptr(buf);
  p.set_data_length(64);
  p.set_streaming_width(64);
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  c.l1d.socket.get_base_interface().b_transport(p, delay);
  CHECK(p.is_response_ok());
  CHECK(delay == c.timing.to_time(220));
  delay = sc_core::SC_ZERO_TIME;
  c.l1d.socket.get_base_interface().b_transport(p, delay);
  CHECK(delay == c.timing.to_time(4));
}

TEST_CASE("memory.* keys: the model must be flat or hierarchy and levels need sets and ways", "[cache][config]") {
  Config c;
  CHECK(Timing::from(c).memory.hierarchy);  // the default, in both presets
  c.apply_preset("sapphire-rapids");
  CHECK(Timing::from(c).memory.hierarchy);
  c.set("memory.model", "flat");
  CHECK_FALSE(Timing::from(c).memory.hierarchy);
  c.set("memory.model", "hierarchy");
  CHECK(Timing::from(c).memory.hierarchy);
  c.set("memory.model", "caches");
  CHECK_THROWS_AS(Timing::from(c), ConfigError);
  c.set("memory.model", "hierarchy");
  c.set("memory.l2.ways", "0");
  CHECK_THROWS_AS(Timing::from(c), ConfigError);
}
