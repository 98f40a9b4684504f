// ChampSim traces (64-byte input_instr records, ChampSim's
// inc/trace_instruction.h): a trace the test makes from a lackey log replays
// with the same access counts as the lackey import of that log.
#include <catch2/catch.hpp>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "compress_util.h"

using namespace septsim;
using namespace septsim::test;

namespace {

std::string hello() { return std::string(SEPTSIM_SOURCE_DIR) + "/tests/data/lackey/hello.lackey"; }

struct Operand {
  bool store;
  unsigned long long addr;
};

void put64(unsigned char* p, unsigned long long v) {
  for (int i = 0; i < 8; ++i) p[i] = (unsigned char)(v >> (8 * i));
}

// The ChampSim trace of a lackey log: one record per "I" line (ip = its
// address); each data access becomes one operand per 4 KiB page it covers
// (as the lackey import counts it), an M a load and a store. An instruction
// has room for 4 loads and 2 stores; operands beyond that go to the next
// instructions' free slots, so every access is kept (and counted) once.
std::string champsim_of_lackey(const std::string& log) {
  std::ifstream in(log);
  std::string out;
  std::deque<Operand> pending;
  std::vector<unsigned long long> ips;
  std::vector<std::vector<Operand>> ops;
  for (std::string l; std::getline(in, l);) {
    unsigned long long a = 0, size = 0;
    if (l.rfind("I  ", 0) == 0 && std::sscanf(l.c_str() + 3, "%llx,%llu", &a, &size) == 2) {
      ips.push_back(a);
      ops.emplace_back();
    } else if (l.size() > 3 && l[0] == ' ' && (l[1] == 'L' || l[1] == 'S' || l[1] == 'M') && l[2] == ' ' &&
               std::sscanf(l.c_str() + 3, "%llx,%llu", &a, &size) == 2) {
      REQUIRE(!ips.empty());  // data before the first instruction has no record to go in
      for (unsigned long long p = a >> 12; p <= (a + size - 1) >> 12; ++p) {
        unsigned long long at = p == a >> 12 ? a : p << 12;
        if (l[1] != 'S') ops.back().push_back({false, at});
        if (l[1] != 'L') ops.back().push_back({true, at});
      }
    }
  }
  for (size_t i = 0; i < ips.size(); ++i) {
    for (const Operand& o : ops[i]) pending.push_back(o);
    unsigned char r[64] = {};
    put64(r, ips[i]);
    int loads = 0, stores = 0;
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->store && stores < 2) put64(r + 16 + 8 * stores++, it->addr), it = pending.erase(it);
      else if (!it->store && loads < 4) put64(r + 32 + 8 * loads++, it->addr), it = pending.erase(it);
      else ++it;
    }
    out.append(reinterpret_cast<const char*>(r), 64);
  }
  REQUIRE(pending.empty());
  return out;
}

struct Run {
  CliResult import;
  nlohmann::json totals;
  std::map<std::string, unsigned long long> by_op;  // accesses of the imported trace by op (count included)
};

Run import_and_replay(const std::string& format, const std::string& in, const std::string& args = "") {
  auto d = temp_dir();
  std::string trace = (d / "t.jsonl").string(), stats = (d / "s.json").string();
  Run r;
  r.import = run_septsim("import " + format + " " + in + " -o " + trace + " " + args);
  INFO(r.import.err);
  REQUIRE(r.import.exit_code == 0);
  auto rep = run_septsim("replay " + trace + " --check -q --stats " + stats);
  INFO(rep.err);
  REQUIRE(rep.exit_code == 0);
  r.totals = nlohmann::json::parse(slurp(stats))["stats"]["total"];
  std::ifstream t(trace);
  for (std::string l; std::getline(t, l);) {
    auto j = nlohmann::json::parse(l);
    if (j.value("type", "") == "access") r.by_op[j["op"]] += j.value("count", 1ull);
  }
  return r;
}

std::string write_file(const std::string& name, const std::string& bytes) {
  auto p = (temp_dir() / name).string();
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

}  // namespace

TEST_CASE("a ChampSim trace made from a lackey log replays with the lackey import's access counts", "[champsim]") {
  std::string bytes = champsim_of_lackey(hello());
  // hello.lackey: 13 instructions (tests/data/lackey/README.md).
  REQUIRE(bytes.size() == 13 * 64);
  for (const std::string& args : {std::string(), std::string(" --vm-type tdx")}) {
    INFO(args);
    auto lackey = import_and_replay("lackey", hello(), args);
    auto champ = import_and_replay("champsim", write_file("hello.champsim", bytes), args);
    // 32 accesses (tests/data/lackey/README.md): 13 fetches; 7 reads (5 L, 2 M);
    // 12 writes (9 S, one crossing a page boundary, and 2 M).
    CHECK(lackey.totals["derived"]["accesses"] == 32);
    CHECK(champ.totals["derived"]["accesses"] == lackey.totals["derived"]["accesses"]);
    CHECK(lackey.by_op == std::map<std::string, unsigned long long>{{"r", 7}, {"w", 12}, {"x", 13}});
    CHECK(champ.by_op == lackey.by_op);
    for (const char* c : {"vcpu0.accesses_gva", "kvm.pages_4k", "kvm.pages_2m"}) {
      INFO(c);
      CHECK(champ.totals["counters"].value(c, -1) == lackey.totals["counters"].value(c, -1));
    }
    CHECK_THAT(champ.import.err, Catch::Contains("imported 13 records: 13 instructions, 7 loads, 12 stores; 32 accesses"));
  }
}

TEST_CASE("ChampSim traces are read compressed as ChampSim reads them (xz, gzip)", "[champsim]") {
  std::string bytes = champsim_of_lackey(hello());
  auto plain = import_and_replay("champsim", write_file("t.champsim", bytes));
  auto xz = import_and_replay("champsim", write_file("t.champsim.xz", xz_bytes(bytes)));
  auto gz = import_and_replay("champsim", write_file("t.champsim.gz", gzip_bytes(bytes)));
  CHECK(xz.totals["counters"] == plain.totals["counters"]);
  CHECK(gz.totals["counters"] == plain.totals["counters"]);
}

TEST_CASE("a ChampSim trace that is not whole records, or not ChampSim at all, is bad input naming the record",
          "[champsim]") {
  std::string bytes = champsim_of_lackey(hello());
  auto out = (temp_dir() / "x.jsonl").string();
  auto cut = write_file("cut.champsim", bytes.substr(0, 64 * 3 + 10));
  auto r = run_septsim("import champsim " + cut + " -o " + out);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(cut + ":4: truncated record: 10 bytes after the last whole 64-byte"));
  CHECK_FALSE(std::filesystem::exists(out));
  std::string text = "I  0401ab70,3\n S 1fff000628,8\n I  0401ab73,5\n I  0401b770,1\n";
  text.resize(64 * 2, ' ');
  auto notchamp = write_file("lackey-as.champsim", text);
  auto r2 = run_septsim("import champsim " + notchamp + " -o " + out);
  CHECK(r2.exit_code == 2);
  CHECK_THAT(r2.err, Catch::Contains(notchamp + ":1: field 'is_branch'"));
  auto empty = write_file("empty.champsim", "");
  CHECK(run_septsim("import champsim " + empty + " -o " + out).exit_code == 2);
}
