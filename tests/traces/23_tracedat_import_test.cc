// trace-cmd's binary trace.dat read directly (libtracecmd): the same
// recording imported from its text and from its trace.dat gives the same
// septsim trace.
#include <catch2/catch.hpp>
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "tracedat_writer.h"
#include "traces/ftrace_import.h"
#include "traces/tracedat_import.h"

using namespace septsim;
using namespace septsim::traces;
using namespace septsim::test;

namespace {

std::string data(const std::string& name) { return std::string(SEPTSIM_SOURCE_DIR) + "/tests/data/kvm-shadow/" + name; }

// The trace.dat of a text recording; `records` gets the number of events.
std::string to_tracedat(const std::string& text_path, u64& records) {
  std::ifstream in(text_path);
  std::vector<std::string> lines;
  unsigned cpus = 1;
  for (std::string l; std::getline(in, l);) {
    FtraceRecord r;
    if (parse_ftrace_line(l, r)) lines.push_back(l), cpus = std::max(cpus, r.cpu + 1);
  }
  TraceDatWriter w(cpus);
  records = 0;
  for (const std::string& l : lines) {
    FtraceRecord r;
    parse_ftrace_line(l, r);
    INFO(l);
    REQUIRE(w.add_line(r));
    ++records;
  }
  auto p = (temp_dir() / "trace.dat").string();
  w.write(p);
  return p;
}

// The events of `septsim import ftrace IN` (the header line dropped).
std::vector<std::string> imported(const std::string& in, std::string* out = nullptr) {
  auto o = (temp_dir() / "out.jsonl").string();
  auto r = run_septsim("import ftrace " + in + " -o " + o);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  if (out) *out = r.out + r.err;
  std::ifstream f(o);
  std::vector<std::string> lines;
  std::string l;
  std::getline(f, l);
  while (std::getline(f, l)) lines.push_back(l);
  return lines;
}

}  // namespace

#ifdef SEPTSIM_HAVE_TRACECMD

TEST_CASE("a recording imported from its trace.dat gives the septsim trace of its text", "[ftrace][tracedat]") {
  for (const char* name : {"seq.trace", "memslot-churn.trace"}) {
    INFO(name);
    u64 records = 0;
    auto dat = to_tracedat(data(name), records);
    REQUIRE(is_tracedat(dat));
    auto text_events = imported(data(name));
    auto dat_events = imported(dat);
    CHECK(text_events.size() > 100);
    CHECK(dat_events == text_events);
    // The library's own reading agrees on the number of records.
    TraceDatSource src(dat);
    FtraceRecord r;
    u64 n = 0;
    while (src.next(r)) ++n;
    CHECK(n == records);
    CHECK(src.lost_events() == 0);
  }
}

// seq-v7.dat: written by Debian's trace-cmd 3.1.6 (`trace-cmd extract`) from
// a real recording of `vmm -m 4 seq`, in its default format: version 7 with
// zstd-compressed sections (trace-cmd.dat.v7(5)). seq-v7.trace is the same
// ring buffer read as text.
TEST_CASE("a trace-cmd version 7 trace.dat imports as the text of the same recording", "[ftrace][tracedat]") {
  const std::string dat = data("seq-v7.dat");
  REQUIRE(is_tracedat(dat));
  std::ifstream f(dat, std::ios::binary);
  char head[12] = {};
  f.read(head, sizeof head);
  CHECK(std::string(head + 3, 8) == std::string("tracing7", 8));
  auto dat_events = imported(dat);
  auto text_events = imported(data("seq-v7.trace"));
  // The text gives microseconds: compare every event with ts_ns rounded so.
  auto to_us = [](std::string l) {
    size_t at = l.find("\"ts_ns\":");
    if (at == std::string::npos) return l;
    size_t b = at + 8, e = l.find_first_of(",}", b);
    u64 ns = std::stoull(l.substr(b, e - b));
    return l.substr(0, b) + std::to_string((ns + 500) / 1000 * 1000) + l.substr(e);
  };
  for (auto& l : dat_events) l = to_us(l);
  CHECK(dat_events == text_events);
  // vm_create, 2 memslots, a phase, KVM's 3 pf_taken, 9 decisions (3
  // kvm_mmu_spte_requested, 6 kvm_mmu_prepare_zap_page), 6 markers.
  CHECK(dat_events.size() == 1 + 2 + 1 + 3 + 9 + 6);
  // The VMM's markers came through as ftrace print records.
  CHECK(std::count_if(dat_events.begin(), dat_events.end(),
                      [](const std::string& l) { return l.find("\"type\":\"marker\"") != std::string::npos; }) == 6);
  auto out = temp_dir() / "v7.json";
  auto r = run_septsim("kvm-compare " + dat + " --kvm-stats " + data("seq-v7.stats.json") + " -q --json " + out.string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(slurp(out));
  CHECK(j["total"]["faults_compared"] == 3);  // the code page, then the two 2M pages of the 4 MiB slot
  CHECK(j["verdict"]["agree"] == true);
}

TEST_CASE("trace.dat import of TDP faults keeps the vCPU, address, access type and time", "[ftrace][tracedat]") {
  // Lines as Linux 6.x prints them (arch/x86/kvm/trace.h kvm_page_fault; mmutrace.h).
  auto text = (temp_dir() / "tdp.trace").string();
  std::ofstream(text)
      << "# tracer: nop\n"
         " CPU 0/KVM-10 [001] ..... 1.000000: tracing_mark_write: kvmrec: begin phase touch (op 1)\n"
         " CPU 0/KVM-10 [001] ..... 1.000001: kvm_page_fault: vcpu 0 rip 0xffff address 0x0000000000001000 error_code 0x182\n"
         " CPU 0/KVM-10 [001] ..... 1.000002: kvm_mmu_spte_requested: gfn 1 pfn 1234 level 1\n"
         " CPU 1/KVM-11 [000] ..... 1.000004: kvm_page_fault: vcpu 1 rip 0xffff address 0x0000000000200000 error_code 0x184\n"
         " CPU 1/KVM-11 [000] ..... 1.000005: kvm_mmu_spte_requested: gfn 200 pfn 5678 level 2\n"
         " CPU 0/KVM-10 [001] ..... 1.300000: kvm_tdp_mmu_spte_changed: as id 0 gfn 1 level 1 old_spte 600000001234f77 new_spte 5a0\n"
         " CPU 0/KVM-10 [001] ..... 1.300001: tracing_mark_write: kvmrec: begin action dirty-log-enable\n";
  u64 records = 0;
  auto dat = to_tracedat(text, records);
  CHECK(records == 7);
  auto a = imported(text), b = imported(dat);
  CHECK(b == a);
  // Golden values from the lines above: error_code 0x182 is an EPT write
  // (bit 1), 0x184 a fetch (bit 2); times are the timestamps in ns.
  REQUIRE(b.size() >= 6);
  auto has = [&](const std::string& s) { return std::find(b.begin(), b.end(), s) != b.end(); };
  CHECK(has(R"({"type":"access","vcpu":0,"gpa":"0x1000","op":"w","ts_ns":1000001000})"));
  CHECK(has(R"({"type":"access","vcpu":1,"gpa":"0x200000","op":"x","ts_ns":1000004000})"));
  CHECK(has(R"({"type":"marker","text":"kvmrec: begin action dirty-log-enable"})"));
}

#endif

TEST_CASE("trace-cmd reads the test's trace.dat as the same records", "[ftrace][tracedat]") {
  // Checks the test's writer against the real tool where it is installed.
  if (std::system("command -v trace-cmd >/dev/null 2>&1") != 0) {
    WARN("trace-cmd is not installed (scripts/deps installs it): the test's trace.dat writer is not checked");
    return;
  }
  u64 records = 0;
  auto dat = to_tracedat(data("seq.trace"), records);
  auto out = (temp_dir() / "report.txt").string();
  REQUIRE(std::system(("trace-cmd report -i " + dat + " > " + out + " 2>/dev/null").c_str()) == 0);
  std::ifstream in(out);
  u64 lines = 0, walks = 0;
  for (std::string l; std::getline(in, l);) {
    FtraceRecord r;
    if (parse_ftrace_line(l, r)) {
      ++lines;
      if (r.event == "kvm_mmu_pagetable_walk") ++walks;
    }
  }
  CHECK(lines == records);
  CHECK(walks > 0);
}

#ifdef SEPTSIM_HAVE_TRACECMD

TEST_CASE("a truncated trace.dat is bad input naming the file", "[ftrace][tracedat]") {
  u64 records = 0;
  auto dat = to_tracedat(data("seq.trace"), records);
  std::string bytes = slurp(dat);
  auto cut = (temp_dir() / "cut.dat").string();
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, 300);
  auto r = run_septsim("import ftrace " + cut + " -o " + (temp_dir() / "x.jsonl").string());
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains(cut));
  CHECK_THAT(r.err, Catch::Contains("trace.dat"));
}

#else

TEST_CASE("a septsim without libtracecmd says how to read a trace.dat", "[ftrace][tracedat]") {
  CHECK_FALSE(tracedat_supported());
  u64 records = 0;
  auto dat = to_tracedat(data("seq.trace"), records);
  auto r = run_septsim("import ftrace " + dat + " -o " + (temp_dir() / "x.jsonl").string());
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("built without libtracecmd"));
}

#endif
