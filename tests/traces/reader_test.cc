#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "traces/reader.h"

using namespace septsim;
using namespace septsim::traces;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

class TempTrace {
 public:
  explicit TempTrace(const std::string& content) {
    static int n = 0;
    path_ = (std::filesystem::temp_directory_path() /
             ("septsim-reader-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".jsonl"))
                .string();
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempTrace() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  TempTrace(const TempTrace&) = delete;
  TempTrace& operator=(const TempTrace&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const std::string kHdr = "{\"format\":\"septsim-trace\",\"version\":1}\n";
const std::string kVm = "{\"type\":\"vm_create\",\"vcpus\":2}\n";

std::vector<Event> read_all(const std::string& content) {
  TempTrace t(content);
  TraceReader r(t.path());
  std::vector<Event> out;
  Event e;
  while (r.next(e)) out.push_back(e);
  return out;
}

// The second event of a trace holding the header, vm_create (2 vCPUs) and `line`.
Event decode(const std::string& line) {
  auto evs = read_all(kHdr + kVm + line + "\n");
  REQUIRE(evs.size() == 2);
  CHECK(evs[1].line == 3);
  return evs[1];
}

// what() of the TraceError reading `content` throws, the file name replaced by
// "FILE"; "" when reading succeeds.
std::string error_of(const std::string& content) {
  TempTrace t(content);
  try {
    TraceReader r(t.path());
    Event e;
    while (r.next(e)) {
    }
  } catch (const TraceError& e) {
    std::string w = e.what();
    if (w.rfind(t.path(), 0) == 0) w.replace(0, t.path().size(), "FILE");
    return w;
  }
  return "";
}

// The error of an event on line 3, after the header and vm_create.
std::string event_error(const std::string& line) { return error_of(kHdr + kVm + line + "\n"); }

}  // namespace

// ---------------------------------------------------------------------------
// Decoding

TEST_CASE("header, comments, blank lines and line numbers", "[reader]") {
  TempTrace t(
      "\n# a comment\n"
      "{\"format\":\"septsim-trace\",\"version\":1,\"description\":\"demo\"}\n"
      "   \n\t# indented comment\n" +
      kVm + "\n{\"type\":\"phase\",\"name\":\"measured\"}\n\n");
  TraceReader r(t.path());
  CHECK(r.header().format == "septsim-trace");
  CHECK(r.header().version == 1);
  CHECK(r.header().description == "demo");
  CHECK(r.line() == 3);
  Event e;
  REQUIRE(r.next(e));
  CHECK(e.type == EventType::VmCreate);
  CHECK(e.vcpus == 2);
  CHECK(e.line == 6);
  CHECK(r.line() == 6);
  REQUIRE(r.next(e));
  CHECK(e.type == EventType::Phase);
  CHECK(e.name == "measured");
  CHECK(e.line == 8);
  CHECK_FALSE(r.next(e));
  CHECK_FALSE(r.next(e));
  CHECK(r.path() == t.path());
}

TEST_CASE("header without description, CRLF, BOM and a last line without newline", "[reader]") {
  TempTrace t("\xEF\xBB\xBF{\"format\":\"septsim-trace\",\"version\":1}\r\n" + std::string("{\"type\":\"vm_create\",\"vcpus\":1}\r\n") +
              "{\"type\":\"phase\",\"name\":\"x\"}");
  TraceReader r(t.path());
  CHECK(r.header().description.empty());
  Event e;
  REQUIRE(r.next(e));
  CHECK(e.vcpus == 1);
  REQUIRE(r.next(e));
  CHECK(e.name == "x");
  CHECK(e.line == 3);
  CHECK_FALSE(r.next(e));
}

TEST_CASE("vm_create", "[reader]") {
  for (u32 n : {1u, 2u, 256u}) {
    auto evs = read_all(kHdr + "{\"type\":\"vm_create\",\"vcpus\":" + std::to_string(n) + "}\n");
    REQUIRE(evs.size() == 1);
    CHECK(evs[0].type == EventType::VmCreate);
    CHECK(evs[0].vcpus == n);
    CHECK(evs[0].vcpu == -1);
  }
}

TEST_CASE("memslot_add with every field and with defaults", "[reader]") {
  Event e = decode(
      R"({"type":"memslot_add","slot":3,"gpa":"0x40000000","size":"256M","backing":"hugetlb1g","hva":"0x7f0000000000","flags":["dirty_log","readonly"]})");
  CHECK(e.type == EventType::MemslotAdd);
  CHECK(e.slot.id == 3);
  CHECK(e.slot.gpa == 0x40000000);
  CHECK(e.slot.size == (256ull << 20));
  CHECK(e.slot.backing == mmu::HostBacking::Hugetlb1G);
  CHECK(e.slot.userspace_addr == 0x7f0000000000ull);
  CHECK(e.slot.flags == (mmu::KVM_MEM_LOG_DIRTY_PAGES | mmu::KVM_MEM_READONLY));

  e = decode(R"({"type":"memslot_add","slot":0,"gpa":0,"size":"1G","backing":"thp"})");
  CHECK(e.slot.id == 0);
  CHECK(e.slot.gpa == 0);
  CHECK(e.slot.size == (1ull << 30));
  CHECK(e.slot.backing == mmu::HostBacking::Thp2M);
  CHECK(e.slot.userspace_addr == 0);
  CHECK(e.slot.flags == 0);

  e = decode(R"({"type":"memslot_add","slot":32763,"gpa":"4096","size":4096,"backing":"4k","flags":[]})");
  CHECK(e.slot.id == 32763);
  CHECK(e.slot.backing == mmu::HostBacking::Page4K);
  CHECK(e.slot.flags == 0);
  e = decode(R"({"type":"memslot_add","slot":1,"gpa":"0x1000","size":"4K","backing":"4k","flags":["readonly"]})");
  CHECK(e.slot.flags == mmu::KVM_MEM_READONLY);
}

TEST_CASE("memslot_delete and memslot_move", "[reader]") {
  Event e = decode(R"({"type":"memslot_delete","slot":7})");
  CHECK(e.type == EventType::MemslotDelete);
  CHECK(e.slot.id == 7);
  e = decode(R"({"type":"memslot_move","slot":2,"gpa":"0x80000000"})");
  CHECK(e.type == EventType::MemslotMove);
  CHECK(e.slot.id == 2);
  CHECK(e.slot.gpa == 0x80000000ull);
}

TEST_CASE("dirty_log ops", "[reader]") {
  struct {
    const char* op;
    DirtyLogOp value;
  } ops[] = {{"enable", DirtyLogOp::Enable}, {"get", DirtyLogOp::Get}, {"clear", DirtyLogOp::Clear},
             {"disable", DirtyLogOp::Disable}};
  for (auto& o : ops) {
    Event e = decode(std::string(R"({"type":"dirty_log","slot":1,"op":")") + o.op + "\"}");
    CHECK(e.type == EventType::DirtyLog);
    CHECK(e.slot.id == 1);
    CHECK(e.dirty_op == o.value);
    CHECK(e.first_page == 0);
    CHECK(e.num_pages == 0);
  }
  Event e = decode(R"({"type":"dirty_log","slot":0,"op":"clear","first_page":128,"num_pages":"0x40"})");
  CHECK(e.dirty_op == DirtyLogOp::Clear);
  CHECK(e.first_page == 128);
  CHECK(e.num_pages == 64);
  e = decode(R"({"type":"dirty_log","slot":0,"op":"clear","num_pages":5})");
  CHECK(e.first_page == 0);
  CHECK(e.num_pages == 5);
}

TEST_CASE("access: gpa and gva, ops, count and stride", "[reader]") {
  Event e = decode(R"({"type":"access","vcpu":1,"gpa":"0x1000","op":"w"})");
  CHECK(e.type == EventType::Access);
  CHECK(e.vcpu == 1);
  CHECK(e.addr == 0x1000);
  CHECK_FALSE(e.is_gva);
  CHECK(e.access == AccessType::Write);
  CHECK(e.count == 1);
  CHECK(e.stride == 0);

  e = decode(R"({"type":"access","vcpu":0,"gva":"0xffffffff80001234","op":"x","count":16,"stride":"4K"})");
  CHECK(e.vcpu == 0);
  CHECK(e.is_gva);
  CHECK(e.addr == 0xffffffff80001234ull);
  CHECK(e.access == AccessType::Fetch);
  CHECK(e.count == 16);
  CHECK(e.stride == 4096);

  struct {
    const char* op;
    AccessType type;
  } ops[] = {{"r", AccessType::Read},    {"w", AccessType::Write},     {"x", AccessType::Fetch},
             {"read", AccessType::Read}, {"write", AccessType::Write}, {"fetch", AccessType::Fetch}};
  for (auto& o : ops) {
    e = decode(std::string(R"({"type":"access","vcpu":0,"gpa":12345,"op":")") + o.op + "\"}");
    CHECK(e.access == o.type);
    CHECK(e.addr == 12345);
  }
  // The last access may end exactly below 2^52.
  e = decode(R"({"type":"access","vcpu":0,"gpa":"0xffffffffff000","op":"r","count":"0x100","stride":"0x10"})");
  CHECK(e.count == 256);
}

TEST_CASE("guest_map with every field and with defaults", "[reader]") {
  Event e = decode(
      R"({"type":"guest_map","cr3":"0x100000","gva":"0x40000000","gpa":"0x80000000","size":"2G","page":"1g","levels":5,"writable":false,"executable":false})");
  CHECK(e.type == EventType::GuestMap);
  CHECK(e.cr3 == 0x100000);
  CHECK(e.gva == 0x40000000);
  CHECK(e.gpa == 0x80000000ull);
  CHECK(e.size == (2ull << 30));
  CHECK(e.page_level == PG_LEVEL_1G);
  CHECK(e.guest_levels == 5);
  CHECK_FALSE(e.writable);
  CHECK_FALSE(e.executable);

  e = decode(R"({"type":"guest_map","cr3":"0x1000","gva":"0x200000","gpa":"0x400000","size":"4M","page":"2m"})");
  CHECK(e.page_level == PG_LEVEL_2M);
  CHECK(e.guest_levels == 4);
  CHECK(e.writable);
  CHECK(e.executable);
  CHECK(e.vcpu == -1);

  e = decode(R"({"type":"guest_map","cr3":"0x1000","gva":"0xffff800000000000","gpa":"0x5000","size":"12K","page":"4k","writable":true})");
  CHECK(e.page_level == PG_LEVEL_4K);
  CHECK(e.gva == 0xffff800000000000ull);
  CHECK(e.size == 12288);
}

TEST_CASE("set_cr3", "[reader]") {
  Event e = decode(R"({"type":"set_cr3","vcpu":1,"cr3":"0x3ff00000","pcid":4095,"levels":5})");
  CHECK(e.type == EventType::SetCr3);
  CHECK(e.vcpu == 1);
  CHECK(e.cr3 == 0x3ff00000);
  CHECK(e.pcid == 4095);
  CHECK(e.guest_levels == 5);
  e = decode(R"({"type":"set_cr3","vcpu":0,"cr3":"0x1000"})");
  CHECK(e.pcid == 0);
  CHECK(e.guest_levels == 4);
}

TEST_CASE("invalidations", "[reader]") {
  Event e = decode(R"({"type":"invept","vcpu":1,"kind":"single"})");
  CHECK(e.type == EventType::Invept);
  CHECK(e.vcpu == 1);
  CHECK(e.inv_kind == InvKind::Single);
  CHECK(decode(R"({"type":"invept","vcpu":0,"kind":"all"})").inv_kind == InvKind::All);

  e = decode(R"({"type":"invvpid","vcpu":0,"kind":"address","gva":"0x401000"})");
  CHECK(e.type == EventType::Invvpid);
  CHECK(e.inv_kind == InvKind::Address);
  CHECK(e.gva == 0x401000);
  CHECK(decode(R"({"type":"invvpid","vcpu":0,"kind":"single"})").inv_kind == InvKind::Single);
  CHECK(decode(R"({"type":"invvpid","vcpu":0,"kind":"all"})").inv_kind == InvKind::All);
  CHECK(decode(R"({"type":"invvpid","vcpu":0,"kind":"single_retain_globals"})").inv_kind ==
        InvKind::SingleRetainGlobals);

  e = decode(R"({"type":"invlpg","vcpu":1,"gva":"0x7fff0123"})");
  CHECK(e.type == EventType::Invlpg);
  CHECK(e.vcpu == 1);
  CHECK(e.gva == 0x7fff0123);

  e = decode(R"({"type":"invpcid","vcpu":1,"kind":"address","pcid":7,"gva":"0x2000"})");
  CHECK(e.type == EventType::Invpcid);
  CHECK(e.inv_kind == InvKind::Address);
  CHECK(e.pcid == 7);
  CHECK(e.gva == 0x2000);
  e = decode(R"({"type":"invpcid","vcpu":0,"kind":"single","pcid":3})");
  CHECK(e.inv_kind == InvKind::Single);
  CHECK(e.pcid == 3);
  CHECK(decode(R"({"type":"invpcid","vcpu":0,"kind":"all"})").inv_kind == InvKind::All);
  // INVPCID type 3 shares the enumerator of INVVPID type 3.
  CHECK(decode(R"({"type":"invpcid","vcpu":0,"kind":"all_retain_globals"})").inv_kind ==
        InvKind::SingleRetainGlobals);
}

TEST_CASE("phase and guest_pt_pool", "[reader]") {
  Event e = decode(R"({"type":"phase","name":"measured run"})");
  CHECK(e.type == EventType::Phase);
  CHECK(e.name == "measured run");
  e = decode(R"({"type":"guest_pt_pool","gpa":"0x3ff01000","size":"1020K"})");
  CHECK(e.type == EventType::GuestPtPool);
  CHECK(e.gpa == 0x3ff01000);
  CHECK(e.size == 1020 * 1024);
}

TEST_CASE("event type names", "[reader]") {
  CHECK(std::string(event_type_name(EventType::VmCreate)) == "vm_create");
  CHECK(std::string(event_type_name(EventType::Invpcid)) == "invpcid");
  CHECK(std::string(event_type_name(EventType::GuestPtPool)) == "guest_pt_pool");
}

TEST_CASE("number syntax", "[reader]") {
  struct {
    const char* text;
    u64 value;
  } good[] = {
      {"0", 0},
      {"4096", 4096},
      {"0x1000", 0x1000},
      {"0X1f", 0x1f},
      {"0xABCdef", 0xabcdef},
      {"0x0000000000000000001", 1},
      {"0xffffffffffffffff", ~0ull},
      {"18446744073709551615", ~0ull},
      {"4K", 4096},
      {"4k", 4096},
      {"2M", 2ull << 20},
      {"2m", 2ull << 20},
      {"1G", 1ull << 30},
      {"1g", 1ull << 30},
      {"512M", 512ull << 20},
      {"1T", 1ull << 40},
      {"0K", 0},
      {"16777215T", 16777215ull << 40},
  };
  for (auto& g : good) {
    INFO(g.text);
    u64 v = 12345;
    CHECK(parse_trace_number(g.text, v));
    CHECK(v == g.value);
  }
  for (const char* bad : {"", "0x", "x10", "-1", "+1", "1.5", "1e3", "K", "4KB", "4 K", " 1", "1 ", "0x1g", "12Q",
                          "0x10000000000000000", "18446744073709551616", "16777216T", "1_000", "0b101"}) {
    INFO(bad);
    u64 v = 0;
    CHECK_FALSE(parse_trace_number(bad, v));
  }
  // The same number written as JSON integer, hex, decimal string and size.
  for (const char* s : {"2097152", "\"2097152\"", "\"0x200000\"", "\"2M\"", "\"2048k\""}) {
    Event e = decode(std::string(R"({"type":"guest_pt_pool","gpa":)") + s + R"(,"size":)" + s + "}");
    CHECK(e.gpa == 0x200000);
    CHECK(e.size == 0x200000);
  }
}

TEST_CASE("a 100k-line generated file streams correctly", "[reader]") {
  const u64 n = 100000;
  std::string text = kHdr + "{\"type\":\"vm_create\",\"vcpus\":4}\n";
  char line[160];
  for (u64 i = 0; i < n; ++i) {
    std::snprintf(line, sizeof line, "{\"type\":\"access\",\"vcpu\":%llu,\"gpa\":\"0x%llx\",\"op\":\"%s\"}\n",
                  static_cast<unsigned long long>(i % 4), static_cast<unsigned long long>(i * 4096 + i % 64),
                  i % 3 ? "r" : "w");
    text += line;
  }
  TempTrace t(text);
  TraceReader r(t.path());
  Event e;
  REQUIRE(r.next(e));
  CHECK(e.vcpus == 4);
  u64 i = 0, bad = 0;
  while (r.next(e)) {
    if (e.type != EventType::Access || e.vcpu != int(i % 4) || e.addr != i * 4096 + i % 64 ||
        e.access != (i % 3 ? AccessType::Read : AccessType::Write) || e.line != i + 3)
      ++bad;
    ++i;
  }
  CHECK(i == n);
  CHECK(bad == 0);
  CHECK(r.line() == n + 2);
}

TEST_CASE("lines crossing the read buffer boundary", "[reader]") {
  // Long phase names push line starts to every offset around the 2 MiB chunk edge.
  std::string text = kHdr + kVm;
  std::vector<std::string> names;
  for (int i = 0; i < 60; ++i) {
    names.push_back(std::string(50000 + i * 37, char('a' + i % 26)));
    text += "{\"type\":\"phase\",\"name\":\"" + names.back() + "\"}\n";
  }
  TempTrace t(text);
  TraceReader r(t.path());
  Event e;
  REQUIRE(r.next(e));
  for (int i = 0; i < 60; ++i) {
    REQUIRE(r.next(e));
    CHECK(e.name == names[i]);
  }
  CHECK_FALSE(r.next(e));
}

TEST_CASE("the bundled default trace parses completely", "[reader]") {
  TraceReader r(std::string(SEPTSIM_SOURCE_DIR) + "/traces/samples/default.jsonl");
  CHECK(r.header().version == 1);
  CHECK_FALSE(r.header().description.empty());
  Event e;
  std::vector<int> seen(size_t(EventType::L1Invept) + 1);
  u64 events = 0;
  REQUIRE(r.next(e));
  CHECK(e.type == EventType::VmCreate);
  CHECK(e.vcpus == 2);
  CHECK(e.vm == 0);
  do {
    seen[size_t(e.type)]++;
    ++events;
  } while (r.next(e));
  CHECK(events >= 60);
  CHECK(r.line() <= 150);  // short enough to read
  for (EventType t : {EventType::MemslotAdd, EventType::MemslotDelete, EventType::DirtyLog, EventType::Access,
                      EventType::GuestMap, EventType::SetCr3, EventType::Phase, EventType::GuestPtPool,
                      EventType::TdInitMemRegion, EventType::TdFinalize, EventType::Accept, EventType::MapGpa,
                      EventType::TdTeardown}) {
    INFO(event_type_name(t));
    CHECK(seen[size_t(t)] > 0);
  }
  CHECK(seen[size_t(EventType::VmCreate)] == 2);  // a normal VM and a TD
}

// ---------------------------------------------------------------------------
// Errors

TEST_CASE("error: cannot open", "[reader]") {
  std::string p = (std::filesystem::temp_directory_path() / "septsim-reader-does-not-exist.jsonl").string();
  try {
    TraceReader r(p);
    FAIL("no error");
  } catch (const TraceError& e) {
    CHECK(std::string(e.what()) == p + ": cannot open: No such file or directory");
    CHECK(e.line() == 0);
  }
  std::string dir = std::filesystem::temp_directory_path().string();
  try {
    TraceReader r(dir);
    FAIL("no error");
  } catch (const TraceError& e) {
    CHECK(std::string(e.what()) == dir + ": cannot open: Is a directory");
  }
}

TEST_CASE("error: malformed JSON", "[reader]") {
  CHECK(event_error(R"({"type":"access","vcpu":0 "gpa":1})") ==
        "FILE:3: malformed JSON at byte 31: syntax error while parsing object - unexpected string literal; "
        "expected '}'");
  CHECK_THAT(event_error(R"({"type":"access",})"), StartsWith("FILE:3: malformed JSON at byte 18: "));
  CHECK_THAT(event_error(R"({"type":"phase","name":"a"} x)"), StartsWith("FILE:3: malformed JSON at byte "));
  CHECK_THAT(event_error("{'type':'phase'}"), StartsWith("FILE:3: malformed JSON at byte 2: "));
  CHECK_THAT(error_of(kHdr + "{\"type\":\"vm_create\",\"vcpus\":2\n{}\n"), StartsWith("FILE:2: malformed JSON at byte "));
  CHECK(event_error("[1,2]") == "FILE:3: expected a JSON object on each line");
  CHECK(event_error("42") == "FILE:3: expected a JSON object on each line");
  CHECK(event_error("\"access\"") == "FILE:3: expected a JSON object on each line");
}

TEST_CASE("error: truncated last line", "[reader]") {
  std::string err = error_of(kHdr + kVm + R"({"type":"access","vcpu":0,"gp)");
  CHECK_THAT(err, StartsWith("FILE:3: truncated last line (no newline at end of file, malformed JSON at byte "));
  // The same text with a newline is just malformed.
  CHECK_THAT(error_of(kHdr + kVm + R"({"type":"access","vcpu":0,"gp)" + "\n"), StartsWith("FILE:3: malformed JSON"));
  CHECK_THAT(error_of("{\"format\":\"septsim-tr"), StartsWith("FILE:1: truncated last line"));
}

TEST_CASE("error: unknown event type lists the known ones", "[reader]") {
  CHECK(event_error(R"({"type":"acess","vcpu":0})") ==
        "FILE:3: field 'type': unknown event type \"acess\"; did you mean \"access\"? (known: vm_create, memslot_add, "
        "memslot_delete, memslot_move, dirty_log, access, guest_map, set_cr3, invept, invvpid, invlpg, invpcid, "
        "phase, guest_pt_pool, marker, kvm_decision, host_unmap, td_create, seamcall, tdcall, td_vcpu, "
        "td_init_mem_region, td_finalize, td_teardown, accept, set_memory_attributes, map_gpa, nx_recovery_tick, "
        "nested_vmentry, l2_access, l1_ept_write, l1_invept, vcpu_migrate)");
  CHECK_THAT(event_error(R"({"vcpu":0})"), StartsWith("FILE:3: field 'type': missing required field"));
  CHECK(event_error(R"({"type":3})") == "FILE:3: field 'type': expected a string, got 3");
}

TEST_CASE("error: unknown field names the closest known field", "[reader]") {
  CHECK(event_error(R"({"type":"access","vcpu":0,"gpaa":"0x1000","op":"r"})") ==
        "FILE:3: field 'gpaa': unknown field of access; did you mean 'gpa'? (fields: vcpu, gpa, gva, op, count, stride, "
        "ts_ns)");
  CHECK_THAT(event_error(R"({"type":"memslot_add","slot":0,"gpa":0,"size":"4K","backign":"4k"})"),
             StartsWith("FILE:3: field 'backign': unknown field of memslot_add; did you mean 'backing'?"));
  CHECK_THAT(event_error(R"({"type":"set_cr3","vcpu":0,"cr3":"0x1000","pcdi":1})"),
             StartsWith("FILE:3: field 'pcdi': unknown field of set_cr3; did you mean 'pcid'?"));
  CHECK_THAT(event_error(R"({"type":"phase","name":"x","vcpu":0})"),
             StartsWith("FILE:3: field 'vcpu': unknown field of phase; did you mean 'name'?"));
  CHECK(event_error(R"({"type":"phase","name":"x","name":"y"})") == "FILE:3: field 'name': given twice");
}

TEST_CASE("error: missing required field", "[reader]") {
  CHECK(event_error(R"({"type":"memslot_add","slot":0,"size":"4K","backing":"4k"})") ==
        "FILE:3: field 'gpa': missing required field of memslot_add");
  CHECK(event_error(R"({"type":"access","vcpu":0,"op":"r"})") ==
        "FILE:3: field 'gpa': missing required field of access (give 'gpa' or 'gva')");
  CHECK(event_error(R"({"type":"access","gpa":0,"op":"r"})") == "FILE:3: field 'vcpu': missing required field of access");
  CHECK(event_error(R"({"type":"access","vcpu":0,"gpa":0})") == "FILE:3: field 'op': missing required field of access");
  CHECK_THAT(event_error(R"({"type":"guest_map","cr3":"0x1000","gva":0,"gpa":0,"size":"4K"})"),
             StartsWith("FILE:3: field 'page': missing required field"));
  CHECK_THAT(event_error(R"({"type":"invvpid","vcpu":0,"kind":"address"})"), StartsWith("FILE:3: field 'gva': missing"));
  CHECK_THAT(event_error(R"({"type":"invpcid","vcpu":0,"kind":"single"})"), StartsWith("FILE:3: field 'pcid': missing"));
  CHECK_THAT(event_error(R"({"type":"invpcid","vcpu":0,"kind":"address","pcid":1})"),
             StartsWith("FILE:3: field 'gva': missing"));
  CHECK_THAT(event_error(R"({"type":"phase"})"), StartsWith("FILE:3: field 'name': missing"));
  CHECK_THAT(event_error(R"({"type":"dirty_log","op":"get"})"), StartsWith("FILE:3: field 'slot': missing"));
  CHECK_THAT(event_error(R"({"type":"invept","vcpu":0})"), StartsWith("FILE:3: field 'kind': missing"));
  CHECK_THAT(event_error(R"({"type":"guest_pt_pool","gpa":0})"), StartsWith("FILE:3: field 'size': missing"));
  CHECK_THAT(error_of(kHdr + "{\"type\":\"vm_create\"}\n"), StartsWith("FILE:2: field 'vcpus': missing"));
}

TEST_CASE("error: wrong kind of value", "[reader]") {
  CHECK(event_error(R"({"type":"access","vcpu":true,"gpa":0,"op":"r"})") ==
        "FILE:3: field 'vcpu': expected a number (an integer or a string such as \"0x1000\" or \"4K\"), got true");
  CHECK_THAT(event_error(R"({"type":"access","vcpu":0,"gpa":null,"op":"r"})"),
             StartsWith("FILE:3: field 'gpa': expected a number"));
  CHECK_THAT(event_error(R"({"type":"access","vcpu":0,"gpa":[1],"op":"r"})"),
             Contains("field 'gpa': expected a number") && Contains("got an array"));
  CHECK_THAT(event_error(R"({"type":"access","vcpu":0,"gpa":{"a":1},"op":"r"})"),
             Contains("field 'gpa': expected a number") && Contains("got an object"));
  CHECK(event_error(R"({"type":"access","vcpu":0,"gpa":0,"op":1})") == "FILE:3: field 'op': expected a string, got 1");
  CHECK(event_error(R"({"type":"guest_map","cr3":"0x1000","gva":0,"gpa":0,"size":"4K","page":"4k","writable":"yes"})") ==
        "FILE:3: field 'writable': expected true or false, got \"yes\"");
  CHECK_THAT(event_error(R"({"type":"guest_map","cr3":"0x1000","gva":0,"gpa":0,"size":"4K","page":"4k","executable":1})"),
             StartsWith("FILE:3: field 'executable': expected true or false, got 1"));
  CHECK_THAT(event_error(R"({"type":"memslot_add","slot":0,"gpa":0,"size":"4K","backing":"4k","flags":"dirty_log"})"),
             StartsWith("FILE:3: field 'flags': expected an array of strings"));
  CHECK_THAT(event_error(R"({"type":"memslot_add","slot":0,"gpa":0,"size":"4K","backing":"4k","flags":[1]})"),
             StartsWith("FILE:3: field 'flags': expected an array of strings"));
  CHECK_THAT(event_error(R"({"type":"memslot_add","slot":0,"gpa":0,"size":"4K","backing":"4k","flags":[["readonly"]]})"),
             StartsWith("FILE:3: field 'flags': expected an array of strings"));
  CHECK(event_error(R"({"type":"phase","name":5})") == "FILE:3: field 'name': expected a string, got 5");
}

TEST_CASE("error: bad number", "[reader]") {
  CHECK(event_error(R"({"type":"access","vcpu":0,"gpa":"0x1g","op":"r"})") ==
        "FILE:3: field 'gpa': bad number \"0x1g\": expected hex (\"0x1000\"), decimal (\"4096\") or a size (\"4K\", "
        "\"2M\", \"1G\")");
  CHECK(event_error(R"({"type":"access","vcpu":-1,"gpa":0,"op":"r"})") ==
        "FILE:3: field 'vcpu': bad number -1: must not be negative");
  CHECK(event_error(R"({"type":"access","vcpu":0,"gpa":1.5,"op":"r"})") ==
        "FILE:3: field 'gpa': bad number 1.5: expected an integer of at most 64 bits");
  CHECK_THAT(event_error(R"({"type":"access","vcpu":0,"gpa":18446744073709551616,"op":"r"})"),
             StartsWith("FILE:3: field 'gpa': bad number 18446744073709551616: expected an integer"));
  CHECK(event_error(R"({"type":"access","vcpu":0,"gpa":"0x10000000000000000","op":"r"})") ==
        "FILE:3: field 'gpa': bad number \"0x10000000000000000\": does not fit in 64 bits");
  CHECK_THAT(event_error(R"({"type":"access","vcpu":0,"gpa":"","op":"r"})"), StartsWith("FILE:3: field 'gpa': bad number \"\""));
  CHECK_THAT(event_error(R"({"type":"access","vcpu":0,"gpa":0,"op":"r","count":"4 K"})"),
             StartsWith("FILE:3: field 'count': bad number \"4 K\""));
}

TEST_CASE("error: bad enum value", "[reader]") {
  CHECK(event_error(R"({"type":"access","vcpu":0,"gpa":0,"op":"z"})") ==
        "FILE:3: field 'op': unknown value \"z\" (expected one of: r, w, x, read, write, fetch)");
  CHECK(event_error(R"({"type":"memslot_add","slot":0,"gpa":0,"size":"4K","backing":"2m"})") ==
        "FILE:3: field 'backing': unknown value \"2m\" (expected one of: 4k, thp, hugetlb1g)");
  CHECK(event_error(R"({"type":"memslot_add","slot":0,"gpa":0,"size":"4K","backing":"4k","flags":["dirty"]})") ==
        "FILE:3: field 'flags': unknown flag \"dirty\" (expected: dirty_log, readonly)");
  CHECK(event_error(R"({"type":"dirty_log","slot":0,"op":"reset"})") ==
        "FILE:3: field 'op': unknown value \"reset\" (expected one of: enable, get, clear, disable)");
  CHECK(event_error(R"({"type":"guest_map","cr3":"0x1000","gva":0,"gpa":0,"size":"4K","page":"4K!"})") ==
        "FILE:3: field 'page': unknown value \"4K!\" (expected one of: 4k, 2m, 1g)");
  CHECK(event_error(R"({"type":"invept","vcpu":0,"kind":"address"})") ==
        "FILE:3: field 'kind': unknown value \"address\" (expected one of: single, all)");
  CHECK_THAT(event_error(R"({"type":"invvpid","vcpu":0,"kind":"all_retain_globals"})"),
             StartsWith("FILE:3: field 'kind': unknown value \"all_retain_globals\""));
  CHECK_THAT(event_error(R"({"type":"invpcid","vcpu":0,"kind":"single_retain_globals","pcid":1})"),
             StartsWith("FILE:3: field 'kind': unknown value \"single_retain_globals\""));
}

TEST_CASE("error: header", "[reader]") {
  const std::string ex = "{\"format\":\"septsim-trace\",\"version\":1}";
  CHECK(error_of("") == "FILE:1: missing header: empty trace; the first line must be " + ex);
  CHECK(error_of("# only\n\n# comments\n") == "FILE:3: missing header: empty trace; the first line must be " + ex);
  CHECK(error_of(kVm) == "FILE:1: missing header: the first line must be " + ex + " before any event");
  CHECK(error_of("\n{\"version\":1}\n") == "FILE:2: missing header: the first line must be " + ex + " before any event");
  CHECK(error_of("{\"format\":\"other\",\"version\":1}\n") ==
        "FILE:1: field 'format': expected \"septsim-trace\", got \"other\"");
  CHECK(error_of("{\"format\":7,\"version\":1}\n") == "FILE:1: field 'format': expected a string, got 7");
  CHECK(error_of("{\"format\":\"septsim-trace\",\"version\":2}\n") ==
        "FILE:1: field 'version': unsupported version 2 (this reader reads version 1)");
  CHECK(error_of("{\"format\":\"septsim-trace\"}\n") == "FILE:1: field 'version': missing required field");
  CHECK(error_of("{\"format\":\"septsim-trace\",\"version\":\"1\"}\n") ==
        "FILE:1: field 'version': expected an integer, got \"1\"");
  CHECK(error_of("{\"format\":\"septsim-trace\",\"version\":1,\"descripton\":\"x\"}\n") ==
        "FILE:1: field 'descripton': unknown header field; did you mean 'description'? (header fields: format, "
        "version, description)");
  CHECK(error_of("{\"format\":\"septsim-trace\",\"version\":1,\"description\":false}\n") ==
        "FILE:1: field 'description': expected a string, got false");
  CHECK(error_of("[1]\n") == "FILE:1: expected a JSON object on each line");
}

TEST_CASE("error: non-UTF-8 text", "[reader]") {
  CHECK(event_error("{\"type\":\"phase\",\"name\":\"caf\xe9\"}") ==
        "FILE:3: not UTF-8 text: invalid byte 0xe9 at byte 28");
  CHECK(event_error("\xff\xfe{}") == "FILE:3: not UTF-8 text: invalid byte 0xff at byte 1");
  CHECK_THAT(event_error("{\"type\":\"phase\",\"name\":\"\xc0\xaf\"}"), StartsWith("FILE:3: not UTF-8 text"));  // overlong
  CHECK_THAT(event_error("{\"type\":\"phase\",\"name\":\"\xed\xa0\x80\"}"), StartsWith("FILE:3: not UTF-8 text"));  // surrogate
  CHECK_THAT(event_error("{\"type\":\"phase\",\"name\":\"\xf4\x90\x80\x80\"}"), StartsWith("FILE:3: not UTF-8 text"));
  CHECK_THAT(event_error("{\"type\":\"phase\",\"name\":\"\xe2\x82"), StartsWith("FILE:3: not UTF-8 text"));
  CHECK_THAT(error_of(kHdr + "# comment \x80\n"), StartsWith("FILE:2: not UTF-8 text"));
  // Valid multi-byte UTF-8 passes.
  CHECK(decode("{\"type\":\"phase\",\"name\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}").name ==
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST_CASE("error: binary file", "[reader]") {
  CHECK(error_of(std::string("\x1f\x8b\x08\x00\x00\x00", 6)) ==
        "FILE:1: binary file (gzip-compressed data; decompress it first); a trace is JSON Lines text");
  CHECK(error_of(std::string("\x28\xb5\x2f\xfd\x00", 5)) ==
        "FILE:1: binary file (zstd-compressed data; decompress it first); a trace is JSON Lines text");
  CHECK(error_of(std::string("\x7f" "ELF\x02\x01\x01\x00", 8)) == "FILE:1: binary file (an ELF executable); a trace is JSON Lines text");
  CHECK(error_of(std::string("ab\0cd\n", 6)) == "FILE:1: binary data: control byte 0x00 at byte 3; a trace is JSON Lines text");
  CHECK(error_of(kHdr + kVm + std::string("{\"type\":\0\"phase\"}\n", 18)) ==
        "FILE:3: binary data: control byte 0x00 at byte 9; a trace is JSON Lines text");
  CHECK_THAT(error_of(kHdr + "\x01\x02\x03\n"), StartsWith("FILE:2: binary data: control byte 0x01 at byte 1"));
  // A 3 MiB "line" without a newline ends with an error, not with 3 MiB held.
  CHECK(error_of(kHdr + std::string(3 << 20, 'a')) ==
        "FILE:2: line longer than 1048576 bytes; a trace is JSON Lines text");
}

TEST_CASE("error: event order and counts", "[reader]") {
  CHECK(error_of(kHdr + "{\"type\":\"phase\",\"name\":\"a\"}\n" + kVm) ==
        "FILE:2: phase before vm_create: vm_create must be the first event");
  CHECK(error_of(kHdr + kVm + kVm) ==
        "FILE:3: second vm_create for VM 0 (the first is on line 2); another VM takes \"vm\":1");
  CHECK(error_of(kHdr + "{\"type\":\"vm_create\",\"vcpus\":0}\n") == "FILE:2: field 'vcpus': 0 is out of range (1..256)");
  CHECK(error_of(kHdr + "{\"type\":\"vm_create\",\"vcpus\":257}\n") ==
        "FILE:2: field 'vcpus': 257 is out of range (1..256)");
  CHECK(event_error(R"({"type":"access","vcpu":2,"gpa":0,"op":"r"})") ==
        "FILE:3: field 'vcpu': 2 is out of range: vm_create declared 2 vCPUs (0..1)");
  CHECK(error_of(kHdr + "{\"type\":\"vm_create\",\"vcpus\":1}\n{\"type\":\"invept\",\"vcpu\":1,\"kind\":\"all\"}\n") ==
        "FILE:3: field 'vcpu': 1 is out of range: vm_create declared 1 vCPU (0..0)");
  CHECK(event_error(R"({"type":"access","vcpu":0,"gpa":0,"op":"r","count":0})") ==
        "FILE:3: field 'count': must be at least 1");
  CHECK(event_error(R"({"type":"access","vcpu":0,"gpa":0,"gva":0,"op":"r"})") ==
        "FILE:3: field 'gva': an access takes 'gpa' or 'gva', not both");
}

TEST_CASE("error: alignment and ranges", "[reader]") {
  CHECK(event_error(R"({"type":"memslot_add","slot":0,"gpa":"0x1800","size":"4K","backing":"4k"})") ==
        "FILE:3: field 'gpa': 0x1800 is not 4 KiB aligned");
  CHECK(event_error(R"({"type":"memslot_add","slot":0,"gpa":0,"size":"6000","backing":"4k"})") ==
        "FILE:3: field 'size': 0x1770 is not a multiple of 4 KiB");
  CHECK(event_error(R"({"type":"memslot_add","slot":0,"gpa":0,"size":0,"backing":"4k"})") ==
        "FILE:3: field 'size': must not be 0");
  CHECK(event_error(R"({"type":"memslot_add","slot":32764,"gpa":0,"size":"4K","backing":"4k"})") ==
        "FILE:3: field 'slot': 32764 is out of range (0..32763)");
  CHECK(event_error(R"({"type":"memslot_add","slot":0,"gpa":"0x10000000000000","size":"4K","backing":"4k"})") ==
        "FILE:3: field 'gpa': 0x10000000000000 is beyond the 52-bit guest-physical address space");
  CHECK_THAT(event_error(R"({"type":"memslot_add","slot":0,"gpa":"0xffffffffff000","size":"8K","backing":"4k"})"),
             StartsWith("FILE:3: field 'size': slot end 0x10000000001000 is beyond"));
  CHECK(event_error(R"({"type":"memslot_add","slot":0,"gpa":0,"size":"4K","backing":"4k","hva":"0x1234"})") ==
        "FILE:3: field 'hva': 0x1234 is not 4 KiB aligned");
  CHECK_THAT(event_error(R"({"type":"memslot_add","slot":0,"gpa":0,"size":"4K","backing":"4k","hva":"0xfffffffffffff000"})"),
             StartsWith("FILE:3: field 'hva': range 0xfffffffffffff000"));
  CHECK(event_error(R"({"type":"memslot_move","slot":0,"gpa":"0x10"})") == "FILE:3: field 'gpa': 0x10 is not 4 KiB aligned");
  CHECK(event_error(R"({"type":"guest_map","cr3":"0x1000","gva":"0x1000","gpa":0,"size":"2M","page":"2m"})") ==
        "FILE:3: field 'gva': 0x1000 is not 2 MiB aligned");
  CHECK(event_error(R"({"type":"guest_map","cr3":"0x1000","gva":0,"gpa":"0x1000","size":"2M","page":"2m"})") ==
        "FILE:3: field 'gpa': 0x1000 is not 2 MiB aligned");
  CHECK(event_error(R"({"type":"guest_map","cr3":"0x1000","gva":0,"gpa":0,"size":"3M","page":"2m"})") ==
        "FILE:3: field 'size': 0x300000 is not a multiple of 2 MiB");
  CHECK(event_error(R"({"type":"guest_map","cr3":"0x1000","gva":0,"gpa":0,"size":"1G","page":"1g","levels":3})") ==
        "FILE:3: field 'levels': must be 4 or 5, got 3");
  CHECK(event_error(R"({"type":"guest_map","cr3":"0x1001","gva":0,"gpa":0,"size":"4K","page":"4k"})") ==
        "FILE:3: field 'cr3': 0x1001 is not 4 KiB aligned");
  CHECK(event_error(R"({"type":"guest_map","cr3":"0x1000","gva":"0x800000000000","gpa":0,"size":"4K","page":"4k"})") ==
        "FILE:3: field 'gva': 0x800000000000 is not canonical for 4-level paging");
  CHECK_THAT(event_error(R"({"type":"guest_map","cr3":"0x1000","gva":"0x7ffffffff000","gpa":0,"size":"8K","page":"4k"})"),
             StartsWith("FILE:3: field 'size': gva + size leaves the canonical half"));
  // Canonical under 5-level paging.
  CHECK(event_error(R"({"type":"guest_map","cr3":"0x1000","gva":"0x800000000000","gpa":0,"size":"4K","page":"4k","levels":5})") ==
        "");
  CHECK(event_error(R"({"type":"set_cr3","vcpu":0,"cr3":"0x1000","pcid":4096})") ==
        "FILE:3: field 'pcid': 4096 is out of range (0..4095)");
  CHECK(event_error(R"({"type":"set_cr3","vcpu":0,"cr3":"0x1000","levels":"6"})") ==
        "FILE:3: field 'levels': must be 4 or 5, got 6");
  CHECK(event_error(R"({"type":"access","vcpu":0,"gpa":"0x10000000000000","op":"r"})") ==
        "FILE:3: field 'gpa': 0x10000000000000 is beyond the 52-bit guest-physical address space");
  CHECK_THAT(event_error(R"({"type":"access","vcpu":0,"gpa":"0xfffffffffffff","op":"r","count":2,"stride":1})"),
             StartsWith("FILE:3: field 'count': the last access is beyond"));
  CHECK_THAT(event_error(R"({"type":"access","vcpu":0,"gpa":"1G","op":"r","count":"0xffffffffffffffff","stride":"4K"})"),
             StartsWith("FILE:3: field 'count': the last access is beyond"));
  CHECK(event_error(R"({"type":"access","vcpu":0,"gva":"0x100000000000000","op":"r"})") ==
        "FILE:3: field 'gva': 0x100000000000000 is not canonical");
  CHECK_THAT(event_error(R"({"type":"access","vcpu":0,"gva":"0xfffffffffffff000","op":"r","count":2,"stride":"4K"})"),
             StartsWith("FILE:3: field 'count': the accesses leave the canonical half"));
  CHECK(event_error(R"({"type":"invlpg","vcpu":0,"gva":"0x0100000000000000"})") ==
        "FILE:3: field 'gva': 0x100000000000000 is not canonical for 5-level paging");
  CHECK(event_error(R"({"type":"invvpid","vcpu":0,"kind":"single","gva":0})") ==
        "FILE:3: field 'gva': only valid with kind \"address\"");
  CHECK(event_error(R"({"type":"invpcid","vcpu":0,"kind":"all","pcid":1})") ==
        "FILE:3: field 'pcid': only valid with kind \"address\" or \"single\"");
  CHECK(event_error(R"({"type":"invpcid","vcpu":0,"kind":"single","pcid":1,"gva":0})") ==
        "FILE:3: field 'gva': only valid with kind \"address\"");
  CHECK(event_error(R"({"type":"dirty_log","slot":0,"op":"clear","first_page":32,"num_pages":64})") ==
        "FILE:3: field 'first_page': must be a multiple of 64 (KVM_CLEAR_DIRTY_LOG)");
  CHECK(event_error(R"({"type":"dirty_log","slot":0,"op":"clear","first_page":64})") ==
        "FILE:3: field 'num_pages': required (>= 1) when first_page is given");
  CHECK(event_error(R"({"type":"dirty_log","slot":0,"op":"get","num_pages":64})") ==
        "FILE:3: field 'num_pages': only valid with op \"clear\"");
  CHECK(event_error(R"({"type":"phase","name":""})") == "FILE:3: field 'name': must not be empty");
  CHECK(event_error(R"({"type":"guest_pt_pool","gpa":"0x1000","size":"100"})") ==
        "FILE:3: field 'size': 0x64 is not a multiple of 4 KiB");
}

TEST_CASE("robustness: mutated and random input only ever throws TraceError", "[reader]") {
  std::ifstream in(std::string(SEPTSIM_SOURCE_DIR) + "/traces/samples/default.jsonl", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string sample = ss.str();
  REQUIRE(sample.size() > 1000);
  std::mt19937_64 rng(42);
  const char alphabet[] = "{}[]\":,0x1Kfg-.e \n\t\\u#\x80\xff\0";
  int parsed = 0, errors = 0;
  for (int round = 0; round < 400; ++round) {
    std::string text = sample;
    int edits = 1 + int(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      size_t pos = rng() % text.size();
      switch (rng() % 3) {
        case 0: text[pos] = alphabet[rng() % (sizeof alphabet - 1)]; break;
        case 1: text.erase(pos, 1 + rng() % 8); break;
        default: text.insert(pos, 1, alphabet[rng() % (sizeof alphabet - 1)]); break;
      }
      if (text.empty()) text = "x";
    }
    if (round % 50 == 0) {
      text.resize(rng() % 4096);
      for (char& c : text) c = char(rng());
    }
    std::string err;
    REQUIRE_NOTHROW(err = error_of(text));
    if (err.empty()) {
      ++parsed;
    } else {
      ++errors;
      CHECK_THAT(err, StartsWith("FILE:"));
    }
  }
  CHECK(errors > 0);
}

TEST_CASE("reader speed on simple access lines", "[.][reader-perf]") {
  const u64 n = 2000000;
  std::string text = kHdr + kVm;
  char line[160];
  for (u64 i = 0; i < n; ++i) {
    std::snprintf(line, sizeof line, "{\"type\":\"access\",\"vcpu\":%llu,\"gpa\":\"0x%llx\",\"op\":\"w\"}\n",
                  static_cast<unsigned long long>(i & 1), static_cast<unsigned long long>((i * 4096) & 0xfffffffff));
    text += line;
  }
  TempTrace t(text);
  auto t0 = std::chrono::steady_clock::now();
  TraceReader r(t.path());
  Event e;
  u64 count = 0;
  while (r.next(e)) ++count;
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  WARN(count << " events in " << s << " s: " << count / s / 1e6 << " M events/s, "
             << text.size() / s / 1e6 << " MB/s");
  CHECK(count == n + 1);
}
