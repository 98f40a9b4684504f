// Phase markers in lackey logs: a program marks its region of interest with
// VALGRIND_PRINTF("septsim: phase begin NAME\n") / ("septsim: phase end
// NAME\n"), which valgrind writes into lackey's log as "**PID** TEXT", and
// `septsim import lackey` turns them into `phase` events. Golden values are
// counted with awk from the real recording tests/data/lackey/roi.lackey of
// tests/data/lackey/roi.c (its README), not from the importer.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "collect_sink.h"
#include "replay_util.h"
#include "traces/lackey_import.h"
#include "traces/reader.h"

using namespace septsim;
using namespace septsim::traces;
using namespace septsim::test;

namespace {

std::string roi() { return std::string(SEPTSIM_SOURCE_DIR) + "/tests/data/lackey/roi.lackey"; }

std::string write_log(const std::string& body) {
  auto p = temp_dir() / "t.lackey";
  std::ofstream(p) << body;
  return p.string();
}

// The accesses of each phase, in order: the first entry counts those before
// the first `phase` event.
struct PhaseSplit {
  std::vector<std::string> names{"warmup"};
  std::vector<u64> accesses{0}, maps{0};
};

PhaseSplit split(const Collect& c) {
  PhaseSplit s;
  for (const auto& e : c.events) {
    if (e.type == EventType::Phase) s.names.push_back(e.name), s.accesses.push_back(0), s.maps.push_back(0);
    if (e.type == EventType::Access) s.accesses.back() += e.count;
    if (e.type == EventType::GuestMap) ++s.maps.back();
  }
  return s;
}

// How many accesses of op `op` in each phase fall on the words roi.c's
// array `a` uses: 0x10c040 + p * 0x1000, p = 0..63.
std::vector<u64> array_accesses(const Collect& c, AccessType op) {
  std::vector<u64> out{0};
  for (const auto& e : c.events) {
    if (e.type == EventType::Phase) out.push_back(0);
    if (e.type != EventType::Access || e.access != op) continue;
    for (u64 i = 0; i < e.count; ++i) {
      u64 addr = e.addr + i * e.stride;
      out.back() += addr >= 0x10c040 && addr <= 0x14b040 && (addr & 0xfff) == 0x040;
    }
  }
  return out;
}

std::string error_of(const std::string& body, u64 warmup = 0) {
  Collect c;
  LackeyImportOptions o;
  o.warmup = warmup;
  try {
    import_lackey(write_log(body), c, o);
  } catch (const TraceError& e) {
    return std::to_string(e.line()) + " " + e.field() + ": " + e.message();
  }
  return "no error";
}

}  // namespace

TEST_CASE("a real recording's phase markers start the measured phase and end it at the region's end", "[lackey]") {
  Collect c;
  auto r = import_lackey(roi(), c);
  auto s = split(c);
  REQUIRE(s.names == std::vector<std::string>{"warmup", "measured", "after-measured"});
  CHECK(s.accesses == std::vector<u64>{559, 1857, 1926});
  CHECK(s.maps[1] == 0);  // the region touches no page its start-up did not
  // roi.c: one store per page of `a` before the region, four loads per page inside it.
  CHECK(array_accesses(c, AccessType::Write) == std::vector<u64>{64, 0, 0});
  CHECK(array_accesses(c, AccessType::Read) == std::vector<u64>{0, 256, 0});
  CHECK(r.phase_markers == 2);
  CHECK(r.unknown_markers == 1);
  REQUIRE(r.first_unknown_markers.size() == 1);
  CHECK(r.first_unknown_markers[0] == std::pair<u64, std::string>{2476, "sum 8064"});
  CHECK(r.lines == 4329);
  CHECK(r.noise_lines == 25);  // the banner and summary, not the three VALGRIND_PRINTF lines
  CHECK_FALSE(r.measured_phase);  // that is --warmup's
}

TEST_CASE("an end marker starts the after phase only when an access follows before the next begin", "[lackey]") {
  const std::string a = "I  0401ab70,3\n", b = " L 0401b000,8\n";
  Collect c;
  import_lackey(write_log(a + "**7** septsim: phase begin one\n" + a + "**7** septsim: phase end one\n" +
                          "**7** septsim: phase begin two\n" + b + "**7** septsim: phase end two\n"),
                c);
  auto s = split(c);
  CHECK(s.names == std::vector<std::string>{"warmup", "one", "two"});
  CHECK(s.accesses == std::vector<u64>{1, 1, 1});
  Collect d;
  import_lackey(write_log("**7** septsim: phase begin roi \r\n" + a + "**7** septsim: phase end roi\n" + b + b), d);
  s = split(d);
  CHECK(s.names == std::vector<std::string>{"warmup", "roi", "after-roi"});
  CHECK(s.accesses == std::vector<u64>{0, 1, 2});
}

TEST_CASE("client-request lines that are not phase markers are counted and the first five listed", "[lackey]") {
  std::string body = "I  0401ab70,3\n** not a marker\n**12a** nor this\n";
  for (int i = 0; i < 7; ++i) body += "**12** progress " + std::to_string(i) + "\n";
  Collect c;
  auto r = import_lackey(write_log(body), c);
  CHECK(r.unknown_markers == 7);
  REQUIRE(r.first_unknown_markers.size() == 5);
  CHECK(r.first_unknown_markers[0] == std::pair<u64, std::string>{4, "progress 0"});
  CHECK(r.first_unknown_markers[4] == std::pair<u64, std::string>{8, "progress 4"});
  CHECK(r.noise_lines == 2);
  CHECK(c.count(EventType::Phase) == 0);
  CHECK(c.count(EventType::Marker) == 0);
}

TEST_CASE("phase markers that break the rules are bad input naming the line and field", "[lackey]") {
  const std::string a = "I  0401ab70,3\n";
  CHECK(error_of(a + "**1** septsim: phase begin\n") ==
        "2 marker: a program's marker is \"septsim: phase begin NAME\" or \"septsim: phase end NAME\", not "
        "\"septsim: phase begin\"");
  CHECK(error_of(a + "**1** septsim: phase begin two words\n").starts_with("2 marker: a program's marker is"));
  CHECK(error_of(a + "**1** septsim: memslot add slot=1 gpa=0 size=4K\n").starts_with("2 marker: a program's marker"));
  CHECK(error_of(a + "**1** septsim: phase end x\n") == "2 name: \"phase end x\" but no phase was begun");
  CHECK(error_of("**1** septsim: phase begin a\n" + a + "**1** septsim: phase end b\n") ==
        "3 name: \"phase end b\" but the phase begun is \"a\"");
  CHECK(error_of(a + a + "**1** septsim: phase begin a\n", 1) ==
        "3 marker: --warmup and the log's phase markers both place phases: drop --warmup");
}

TEST_CASE("septsim import lackey reports the markers, and the replay gives the region its own phase", "[lackey][cli]") {
  auto d = temp_dir();
  for (const char* vm_type : {"vm", "tdx"}) {
    INFO(vm_type);
    auto t = (d / (std::string(vm_type) + ".sstb")).string();
    auto i = run_septsim("import lackey " + roi() + " -o " + t + " --mem 64M --vm-type " + vm_type);
    INFO(i.err);
    REQUIRE(i.exit_code == 0);
    CHECK(i.err.find("; 2 phase markers\n") != std::string::npos);
    CHECK(i.err.find("1 unknown markers") != std::string::npos);
    CHECK(i.err.find("  line 2476: sum 8064\n") != std::string::npos);
    auto j = replay_checked(t);
    const auto& phases = j["stats"]["phases"];
    REQUIRE(phases.size() == 3);
    CHECK(phases[0]["name"] == "warmup");
    CHECK(phases[1]["name"] == "measured");
    CHECK(phases[2]["name"] == "after-measured");
    CHECK(phases[0]["derived"]["accesses"] == 559);
    CHECK(phases[1]["derived"]["accesses"] == 1857);
    CHECK(phases[2]["derived"]["accesses"] == 1926);
    CHECK(phases[1]["counters"]["kvm.pf_taken"] == 0);  // no page is new to the region
    CHECK(phases[0]["counters"]["kvm.pf_taken"].get<u64>() > 0);
  }
  auto bad = run_septsim("import lackey " + write_log("**1** septsim: phase end x\nI  0401ab70,3\n") + " -o " +
                         (d / "x.jsonl").string());
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("t.lackey:1: field 'name': \"phase end x\" but no phase was begun") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(d / "x.jsonl"));
  auto help = run_septsim("import lackey --help");
  CHECK(help.err.empty());
  CHECK(help.out.find("VALGRIND_PRINTF(\"septsim: phase begin NAME\\n\")") != std::string::npos);
}
