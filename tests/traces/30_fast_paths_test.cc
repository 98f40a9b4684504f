// The fast paths of the binary format and of the lackey importer give what
// the general code gives: numbers of every LEB128 length written and read
// back (the byte sequence of 624485 is the LEB128 example of the DWARF
// standard, section 7.6), through next() and next_accesses() alike; a lackey
// line parsed in the reader's buffer imports as the same line does through
// the line-by-line path (forced here by a "\r\n" ending).
#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>

#include "cli_util.h"
#include "collect_sink.h"
#include "traces/binary_trace.h"
#include "traces/jsonl_writer.h"
#include "traces/lackey_import.h"
#include "traces/reader.h"

using namespace septsim;
using namespace septsim::traces;
using namespace septsim::test;

namespace {

// Addresses whose LEB128 takes 1, 2, ... 10 bytes, at both ends of each length.
std::vector<u64> every_length() {
  std::vector<u64> v = {0, 1, 0x7f};
  for (unsigned bits = 7; bits < 64; bits += 7) v.push_back(u64{1} << bits), v.push_back((u64{1} << bits) - 1);
  v.push_back(u64{1} << 63);
  v.push_back(~u64{0});
  v.push_back(624485);
  return v;
}

// Plain accesses of VM 0's two vCPUs at those addresses (GPAs below 2^52,
// canonical GVAs), some with a count and a stride of every length too.
std::vector<Event> accesses_of_every_length() {
  std::vector<Event> out;
  u32 i = 0;
  for (u64 a : every_length()) {
    for (bool gva : {false, true}) {
      if (gva ? !(a < u64{1} << 47 || a >> 47 == 0x1ffff) : a >= TraceReader::kMaxGpa) continue;
      Event e;
      e.type = EventType::Access;
      e.vcpu = int(i % 2);
      e.addr = a;
      e.is_gva = gva;
      e.access = AccessType(i % 3);
      if (i % 4 == 3 && a < u64{1} << 40) e.count = 1 + i % 5, e.stride = u64{1} << (i % 40);
      out.push_back(e);
      ++i;
    }
  }
  return out;
}

// VM 0 with two vCPUs, then the accesses, then (`late_vm`) a vm_create of
// VM 1, which a reader must refuse (the writer takes any order).
std::string write_trace(const std::vector<Event>& accesses, bool late_vm = false) {
  const std::string path = (temp_dir() / (late_vm ? "late.sstb" : "lengths.sstb")).string();
  BinaryTraceWriter w(path);
  Event vm;
  vm.type = EventType::VmCreate;
  vm.vcpus = 2;
  w.put(vm);
  for (const Event& e : accesses) w.put_access(e);
  vm.vm = 1;
  if (late_vm) w.put(vm);
  w.finish();
  return path;
}

std::string fields(u64 addr, u64 count, u64 stride, u32 vcpu, bool gva, AccessType t) {
  return std::to_string(addr) + " " + std::to_string(count) + " " + std::to_string(stride) + " v" +
         std::to_string(vcpu) + (gva ? " gva " : " gpa ") + std::to_string(int(t));
}

}  // namespace

TEST_CASE("access numbers of every LEB128 length read back as written, through next() and next_accesses()",
          "[binary]") {
  const std::vector<Event> written = accesses_of_every_length();
  REQUIRE(written.size() > 30);
  const std::string path = write_trace(written);
  std::vector<std::string> want;
  for (const Event& e : written) want.push_back(fields(e.addr, e.count, e.stride, u32(e.vcpu), e.is_gva, e.access));

  std::vector<std::string> by_next;
  {
    BinaryTraceReader r(path);
    Event e;
    while (r.next(e))
      if (e.type == EventType::Access) by_next.push_back(fields(e.addr, e.count, e.stride, u32(e.vcpu), e.is_gva, e.access));
  }
  CHECK(by_next == want);

  std::vector<std::string> by_runs;
  size_t in_runs = 0;
  {
    BinaryTraceReader r(path);
    Event e;
    std::vector<PlainAccess> run(7);  // a short batch: runs end inside the block too
    for (;;) {
      if (const size_t n = r.next_accesses(run.data(), run.size())) {
        in_runs += n;
        for (size_t i = 0; i < n; ++i)
          by_runs.push_back(fields(run[i].addr, run[i].count, run[i].stride, run[i].vcpu, run[i].is_gva, run[i].access));
        continue;
      }
      if (!r.next(e)) break;
      if (e.type == EventType::Access) by_runs.push_back(fields(e.addr, e.count, e.stride, u32(e.vcpu), e.is_gva, e.access));
    }
  }
  CHECK(by_runs == want);
  // Most came as runs (not the first after vm_create, nor those near the block's end).
  CHECK(in_runs * 2 > written.size());
}

TEST_CASE("a binary trace of accesses alone refuses a vm_create after them, as the JSON reader does", "[binary]") {
  Event a;
  a.type = EventType::Access;
  a.vcpu = 0;
  const std::string path = write_trace({a});
  const std::string late = write_trace({a}, true);
  auto error_of = [](const std::string& p) {
    BinaryTraceReader r(p);
    Event e;
    try {
      while (r.next(e)) {
      }
    } catch (const TraceError& err) {
      return std::to_string(err.line()) + ": " + err.message();
    }
    return std::string("no error");
  };
  CHECK(error_of(path) == "no error");
  CHECK(error_of(late) == "3: vm_create after other events: create every VM at the start of the trace");
}

TEST_CASE("an address is written as LEB128: 624485 is E5 8E 26", "[binary]") {
  Event e;
  e.type = EventType::Access;
  e.vcpu = 0;
  e.addr = 624485;
  const std::string path = write_trace({e});
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(bytes.find("\xE5\x8E\x26") != std::string::npos);
  CHECK(bytes.find("\xE5\x8E\xA6") == std::string::npos);
}

TEST_CASE("a lackey line parsed in the reader's buffer imports as through the line-by-line path", "[lackey]") {
  // Every kind, addresses of 1 to 16 digits, sizes crossing pages, runs, a
  // line not ending in a newline, banner lines between.
  const std::string lines[] = {
      "==12== Lackey, an example Valgrind tool",
      "I  0401ab70,3",
      "I  0401ab73,5",
      " L 1ffefffb58,8",
      " S 1ffefffb50,8",
      " M 0000000004a1f0c8,4",
      " L 7,1",
      "I  0401ab78,2",
      " S 00007fffffffeff8,16",
      " L 0000000000401ff9,8",
      "==12== ",
      " M 4a1f0c8,4",
      "I  0401ab7a,7",
  };
  auto import = [&](const char* eol, bool last_newline) {
    std::string body;
    for (size_t i = 0; i < std::size(lines); ++i)
      body += lines[i] + (i + 1 < std::size(lines) || last_newline ? eol : "");
    const auto p = temp_dir() / "fast.lackey";
    std::ofstream(p, std::ios::binary) << body;
    Collect c;
    const LackeyImportReport r = import_lackey(p.string(), c);
    std::vector<std::string> out = {std::to_string(r.lines) + " lines " + std::to_string(r.accesses) + " accesses " +
                                    std::to_string(r.noise_lines) + " noise"};
    for (const Event& e : c.events) out.push_back(event_to_json(e));
    return out;
  };
  const std::vector<std::string> slow = import("\r\n", true);
  CHECK(slow.front() == "13 lines 15 accesses 2 noise");
  CHECK(import("\n", true) == slow);
  CHECK(import("\n", false) == slow);
}

TEST_CASE("a bad block fails the read where it lies: the blocks before it are read whole, none of it", "[binary][badinput]") {
  // Enough accesses for several blocks (the writer flushes at 64 KiB).
  std::vector<Event> many;
  for (u64 i = 0; i < 60000; ++i) {
    Event e;
    e.type = EventType::Access;
    e.vcpu = int(i % 2);
    e.addr = (i * 0x9e3779b97f4a7c15ull) % (u64{1} << 40);
    many.push_back(e);
  }
  const std::string path = write_trace(many);
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The blocks as the format says (traces/binary_trace.h): after the 16-byte
  // header, u32 payload bytes, u32 events, u64 checksum, payload; then the end block.
  struct Block {
    size_t at;  // offset of its header
    u32 bytes, events;
  };
  std::vector<Block> blocks;
  size_t at = 16;
  auto u32_at = [&](size_t o) {
    return u32(u8(bytes[o])) | u32(u8(bytes[o + 1])) << 8 | u32(u8(bytes[o + 2])) << 16 | u32(u8(bytes[o + 3])) << 24;
  };
  while (u32_at(at) != 0) {
    blocks.push_back({at, u32_at(at), u32_at(at + 4)});
    at += 16 + blocks.back().bytes;
  }
  REQUIRE(blocks.size() >= 4);
  REQUIRE(at + 16 == bytes.size());

  // Events read before the error, and the error.
  auto read = [](const std::string& body) {
    const auto p = temp_dir() / "bad.sstb";
    std::ofstream(p, std::ios::binary) << body;
    BinaryTraceReader r(p.string());
    Event e;
    u64 n = 0;
    try {
      while (r.next(e)) ++n;
    } catch (const TraceError& err) {
      return std::to_string(n) + " then " + err.message();
    }
    return std::to_string(n) + " then no error";
  };
  auto events_before = [&](size_t k) {
    u64 n = 0;
    for (size_t i = 0; i < k; ++i) n += blocks[i].events;
    return std::to_string(n);
  };
  for (size_t k : {size_t{1}, size_t{2}, size_t{3}}) {  // the second block of a pair read together, and the first
    std::string bad = bytes;
    bad[blocks[k].at + 16 + 100] = char(bad[blocks[k].at + 16 + 100] ^ 1);
    CHECK(read(bad) == events_before(k) + " then corrupt binary trace: checksum mismatch in block " + std::to_string(k + 1) +
                           " at byte " + std::to_string(blocks[k].at));
    CHECK(read(bytes.substr(0, blocks[k].at + 16 + 10)) ==
          events_before(k) + " then truncated binary trace: block " + std::to_string(k + 1) + " at byte " +
              std::to_string(blocks[k].at) + " is cut short");
    CHECK(read(bytes.substr(0, blocks[k].at + 9)) == events_before(k) + " then truncated binary trace: block " +
                                                          std::to_string(k + 1) + " at byte " +
                                                          std::to_string(blocks[k].at) + " has a cut-short block header");
  }
  CHECK(read(bytes.substr(0, at)) == events_before(blocks.size()) + " then truncated binary trace: no end block after " +
                                         events_before(blocks.size()) + " events (block " +
                                         std::to_string(blocks.size() + 1) + " at byte " + std::to_string(at) + ")");
  CHECK(read(bytes) == events_before(blocks.size()) + " then no error");
}
