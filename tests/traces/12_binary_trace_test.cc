// The binary .sstb format: round trips, truncation and corruption errors,
// `septsim convert`, and replay picking the format by magic.
#include <catch2/catch.hpp>
#include <fstream>
#include <set>

#include "cli_util.h"
#include "traces/binary_trace.h"
#include "traces/event_source.h"
#include "traces/jsonl_writer.h"
#include "traces/reader.h"

using namespace septsim;
using namespace septsim::traces;
using namespace septsim::test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> all_json(const std::string& path) {
  auto src = open_event_source(path);
  std::vector<std::string> out;
  Event e;
  while (src->next(e)) out.push_back(event_to_json(e));
  return out;
}

std::string write_bytes(const std::string& bytes) {
  auto p = temp_dir() / "t.sstb";
  std::ofstream(p, std::ios::binary) << bytes;
  return p.string();
}

}  // namespace

TEST_CASE("jsonl -> sstb -> jsonl keeps every event of the sample and an import", "[binary]") {
  auto d = temp_dir();
  auto imported = (d / "imp.jsonl").string();
  REQUIRE(run_septsim("import ftrace " + std::string(SEPTSIM_SOURCE_DIR) + "/tests/data/kvm-shadow/memslot-churn.trace -o " + imported).exit_code == 0);
  for (const std::string& in : {sample_trace(), imported}) {
    INFO(in);
    auto b = (d / "x.sstb").string(), j = (d / "x.jsonl").string();
    auto r = run_septsim("convert " + in + " " + b);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(run_septsim("convert " + b + " " + j).exit_code == 0);
    CHECK(all_json(in) == all_json(b));
    CHECK(all_json(in) == all_json(j));
    CHECK(fs::file_size(b) < fs::file_size(in));
  }
}

TEST_CASE("replay accepts the binary format and gives the same statistics", "[binary][replay]") {
  auto d = temp_dir();
  auto b = (d / "s.sstb").string();
  REQUIRE(run_septsim("convert " + sample_trace() + " " + b).exit_code == 0);
  auto sa = (d / "a.json").string(), sb = (d / "b.json").string();
  REQUIRE(run_septsim("replay " + sample_trace() + " -q --stats " + sa).exit_code == 0);
  REQUIRE(run_septsim("replay " + b + " -q --stats " + sb).exit_code == 0);
  auto ja = nlohmann::json::parse(slurp(sa)), jb = nlohmann::json::parse(slurp(sb));
  CHECK(ja["stats"] == jb["stats"]);
}

TEST_CASE("truncated and corrupt binary traces give clear errors", "[binary][badinput]") {
  auto d = temp_dir();
  auto b = (d / "s.sstb").string();
  REQUIRE(run_septsim("convert " + sample_trace() + " " + b).exit_code == 0);
  std::string bytes = slurp(b);
  REQUIRE(bytes.size() > 64);
  auto read_all = [](const std::string& path) {
    BinaryTraceReader r(path);
    Event e;
    while (r.next(e)) {
    }
  };
  // No end block.
  CHECK_THROWS_WITH(read_all(write_bytes(bytes.substr(0, bytes.size() - 16))), Catch::Contains("truncated") && Catch::Contains("no end block"));
  // Cut inside a block.
  CHECK_THROWS_WITH(read_all(write_bytes(bytes.substr(0, 40))), Catch::Contains("truncated"));
  // Cut inside the header.
  CHECK_THROWS_WITH(read_all(write_bytes(bytes.substr(0, 10))), Catch::Contains("truncated"));
  // A flipped payload byte.
  std::string bad = bytes;
  bad[40] = char(bad[40] ^ 0x20);
  CHECK_THROWS_WITH(read_all(write_bytes(bad)), Catch::Contains("checksum mismatch in block 1"));
  // Another version.
  bad = bytes;
  bad[8] = 3;
  CHECK_THROWS_WITH(read_all(write_bytes(bad)), Catch::Contains("unsupported binary trace version 3 (this reader reads 1 and 2)"));
  // The CLI names the file and exits 2.
  auto r = run_septsim("replay " + write_bytes(bytes.substr(0, bytes.size() - 16)));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("t.sstb") != std::string::npos);
}

TEST_CASE("septsim gen is deterministic for a seed and replays", "[gen]") {
  auto d = temp_dir();
  auto a = (d / "a.jsonl").string(), b = (d / "b.jsonl").string(), c = (d / "c.jsonl").string();
  for (const char* g : {"random", "seq", "dirty-log-migration"}) {
    INFO(g);
    std::string opts = std::string(g) + " --vcpus 2 --size 64M --count 2000 ";
    auto r = run_septsim("gen " + opts + "--seed 7 -o " + a);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(run_septsim("gen " + opts + "--seed 7 -o " + b).exit_code == 0);
    REQUIRE(run_septsim("gen " + opts + "--seed 8 -o " + c).exit_code == 0);
    CHECK(slurp(a) == slurp(b));
    if (std::string(g) != "seq") CHECK(slurp(a) != slurp(c));
  }
  auto r = run_septsim("gen random --size 64M --count 5000 -o " + a);
  REQUIRE(r.exit_code == 0);
  auto rr = run_septsim("replay " + a + " -q --check");
  INFO(rr.err);
  CHECK(rr.exit_code == 0);
  auto bad = run_septsim("gen teleport -o " + a);
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("unknown generator 'teleport'") != std::string::npos);
}

namespace {

std::string every_event() { return std::string(SEPTSIM_SOURCE_DIR) + "/tests/traces/data/every_event.jsonl"; }

// The event lines of a JSON Lines file (past the header).
std::string body(const std::string& path) {
  std::string t = slurp(path);
  return t.substr(t.find('\n') + 1);
}

}  // namespace

TEST_CASE("septsim convert round-trips every event type through both formats", "[binary][convert]") {
  // The file holds each type once, written as the JSON Lines writer writes it.
  std::set<EventType> types;
  auto src = open_event_source(every_event());
  Event e;
  while (src->next(e)) types.insert(e.type);
  CHECK(types.size() == size_t(EventType::NxRecoveryTick) + 1);

  auto d = temp_dir();
  auto b = (d / "x.sstb").string(), j = (d / "x.jsonl").string(), jj = (d / "y.jsonl").string();
  auto r = run_septsim("convert " + every_event() + " " + b);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(run_septsim("convert " + b + " " + j).exit_code == 0);
  REQUIRE(run_septsim("convert " + every_event() + " " + jj).exit_code == 0);
  CHECK(body(j) == body(every_event()));
  CHECK(body(jj) == body(every_event()));
  CHECK(all_json(b) == all_json(every_event()));
}

TEST_CASE("binary version 1 files still read, and TD events are not version 1", "[binary]") {
  auto d = temp_dir();
  auto b = (d / "s.sstb").string();
  const std::string vm = sample_vm0_trace();
  REQUIRE(run_septsim("convert " + vm + " " + b).exit_code == 0);
  std::string bytes = slurp(b);
  CHECK(bytes[8] == 2);
  bytes[8] = 1;  // the sample's normal VM has no TD event: its bytes are a valid version 1 file
  CHECK(all_json(write_bytes(bytes)) == all_json(vm));

  auto td = (d / "td.sstb").string();
  REQUIRE(run_septsim("convert " + every_event() + " " + td).exit_code == 0);
  std::string tdb = slurp(td);
  tdb[8] = 1;
  auto read_all = [](const std::string& path) {
    BinaryTraceReader r(path);
    Event e;
    while (r.next(e)) {
    }
  };
  CHECK_THROWS_WITH(read_all(write_bytes(tdb)), Catch::Contains("t.sstb:1: field 'type': corrupt binary trace: unknown field bits"));
}
