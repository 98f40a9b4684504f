// `septsim import lackey`: valgrind lackey logs as guest-linear access
// streams with a guest paging model mapping each page on first touch. Golden
// counts are hand-counted from tests/data/lackey/hello.lackey (its README).
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "cli_util.h"
#include "collect_sink.h"
#include "traces/guest_paging_model.h"
#include "traces/lackey_import.h"
#include "traces/reader.h"

using namespace septsim;
using namespace septsim::traces;
using namespace septsim::test;

namespace {

std::string hello() { return std::string(SEPTSIM_SOURCE_DIR) + "/tests/data/lackey/hello.lackey"; }

std::string write_log(const std::string& body) {
  auto p = temp_dir() / "t.lackey";
  std::ofstream(p) << body;
  return p.string();
}

// The access events as "op addr count stride" lines, for readable diffs.
std::vector<std::string> accesses(const Collect& c) {
  std::vector<std::string> out;
  for (const auto& e : c.of(EventType::Access)) {
    char buf[80];
    std::snprintf(buf, sizeof buf, "%c %llx %llu %llu", "rwx"[int(e.access)], (unsigned long long)e.addr,
                  (unsigned long long)e.count, (unsigned long long)e.stride);
    out.push_back(buf);
  }
  return out;
}

}  // namespace

TEST_CASE("lackey lines are counted by kind and the banner and program output skipped", "[lackey]") {
  Collect c;
  auto r = import_lackey(hello(), c);
  CHECK(r.lines == 47);
  CHECK(r.fetches == 13);
  CHECK(r.loads == 5);
  CHECK(r.stores == 9);
  CHECK(r.modifies == 2);
  CHECK(r.noise_lines == 18);
  CHECK(r.first_noise_line == 1);
  CHECK(r.accesses == 32);
  CHECK(r.guest_pages == 6);
  CHECK(r.guest_tables == 5);
  CHECK(r.access_events == c.of(EventType::Access).size());
}

TEST_CASE("a lackey import starts with the VM, its memslot, the page-table pool and CR3", "[lackey]") {
  Collect c;
  import_lackey(hello(), c);
  REQUIRE(c.events.size() > 4);
  CHECK(c.events[0].type == EventType::VmCreate);
  CHECK(c.events[0].vcpus == 1);
  const Event& slot = c.events[1];
  CHECK(slot.type == EventType::MemslotAdd);
  CHECK(slot.slot.gpa == 0);
  CHECK(slot.slot.size == u64{4} << 30);
  CHECK(slot.slot.backing == mmu::HostBacking::Thp2M);
  // The top 1/64 of guest memory holds the tables: the root, then the pool.
  const Event& pool = c.events[2];
  CHECK(pool.type == EventType::GuestPtPool);
  CHECK(pool.gpa == (u64{4} << 30) - (u64{64} << 20) + kPageSize);
  CHECK(pool.gpa + pool.size == u64{4} << 30);
  const Event& cr3 = c.events[3];
  CHECK(cr3.type == EventType::SetCr3);
  CHECK(cr3.cr3 == pool.gpa - kPageSize);
  CHECK(cr3.vcpu == 0);
}

TEST_CASE("each guest page is mapped once, just before its first access", "[lackey]") {
  Collect c;
  import_lackey(hello(), c);
  std::set<u64> mapped;
  u64 next_gpa = 0;
  for (const auto& e : c.events) {
    if (e.type == EventType::GuestMap) {
      CHECK(e.size == kPageSize);
      CHECK(e.page_level == PG_LEVEL_4K);
      CHECK(mapped.insert(e.gva).second);
      CHECK(e.gpa == next_gpa);  // sequential placement: frames in touch order
      next_gpa += kPageSize;
    } else if (e.type == EventType::Access) {
      CHECK(e.is_gva);
      for (u64 i = 0; i < e.count; ++i) CHECK(mapped.count((e.addr + i * e.stride) & ~(kPageSize - 1)));
    }
  }
  CHECK(mapped == std::set<u64>{0x0401a000, 0x0401b000, 0x04032000, 0x04033000, 0x04034000, 0x1fff000000});
}

TEST_CASE("fetches execute, M is a read then a write, a crossing access touches both pages, runs merge", "[lackey]") {
  Collect c;
  import_lackey(hello(), c);
  std::vector<std::string> want = {
      "x 401ab70 2 3",    "w 1fff000628 1 0", "x 401b770 1 0", "w 1fff000620 1 0", "x 401b771 2 7",
      "w 1fff000618 1 0", "w 1fff000610 1 0", "w 1fff000608 1 0", "w 1fff000600 1 0", "x 401b77f 1 0",
      "r 4033e06 1 0",    "w 4033e06 1 0",    "x 401b784 1 0",  "w 4033ad0 1 0",    "x 401b789 1 0",
      "w 4032a80 1 0",    "x 401b78d 1 0",    "r 4032e40 4 8",  "x 401b790 1 0",    "w 4033ffc 1 0",
      "w 4034000 1 0",    "x 401b792 1 0",    "r 4034010 1 0",  "x 401b794 1 0",    "r 4032e58 1 0",
      "w 4032e58 1 0",    "x 401b796 1 0"};
  CHECK(accesses(c) == want);
}

TEST_CASE("with instruction fetches dropped only the data accesses remain", "[lackey]") {
  Collect c;
  LackeyImportOptions o;
  o.ifetch = false;
  auto r = import_lackey(hello(), c, o);
  CHECK(r.fetches == 13);  // still counted
  CHECK(r.accesses == 32 - 13);
  CHECK(r.guest_pages == 4);  // the two code pages are never touched
  for (const auto& e : c.of(EventType::Access)) CHECK(e.access != AccessType::Fetch);
}

TEST_CASE("2M and 1G guest pages: fewer pages and tables, leaves at PD and PDPT", "[lackey]") {
  LackeyImportOptions o;
  o.paging.page_level = PG_LEVEL_2M;
  Collect c2;
  auto r2 = import_lackey(hello(), c2, o);
  CHECK(r2.guest_pages == 2);   // 2M regions 0x20 and 0xfff8
  CHECK(r2.guest_tables == 3);  // PDPT + 2 PDs
  for (const auto& m : c2.of(EventType::GuestMap)) {
    CHECK(m.page_level == PG_LEVEL_2M);
    CHECK(m.gva % (2u << 20) == 0);
  }
  o.paging.page_level = PG_LEVEL_1G;
  Collect c1;
  auto r1 = import_lackey(hello(), c1, o);
  CHECK(r1.guest_pages == 2);   // 1G regions 0 and 127
  CHECK(r1.guest_tables == 1);  // the PDPT
}

TEST_CASE("fragmented placement: a seeded shuffle of distinct frames, the same for the same seed", "[lackey]") {
  auto gpas = [](u64 seed) {
    LackeyImportOptions o;
    o.paging.placement = GuestPlacement::Fragmented;
    o.paging.seed = seed;
    Collect c;
    import_lackey(hello(), c, o);
    std::vector<u64> out;
    for (const auto& m : c.of(EventType::GuestMap)) out.push_back(m.gpa);
    return out;
  };
  auto a = gpas(7);
  CHECK(a == gpas(7));
  CHECK(a != gpas(8));
  REQUIRE(a.size() == 6);
  CHECK(std::set<u64>(a.begin(), a.end()).size() == 6);
  for (u64 g : a) CHECK(g < (u64{4} << 30) - (u64{64} << 20));  // below the page-table area
  CHECK(a != std::vector<u64>{0, 0x1000, 0x2000, 0x3000, 0x4000, 0x5000});
}

TEST_CASE("the frame permutation maps 0..n-1 one-to-one onto 0..n-1 for any n", "[lackey]") {
  for (u64 n : {1u, 2u, 3u, 1000u, 4096u}) {
    FramePermutation p(n, 42);
    std::set<u64> seen;
    for (u64 i = 0; i < n; ++i) {
      u64 f = p(i);
      CHECK(f < n);
      seen.insert(f);
    }
    CHECK(seen.size() == n);
  }
}

TEST_CASE("malformed lackey access lines are errors naming file, line and field", "[lackey]") {
  auto error_of = [](const std::string& body) {
    Collect c;
    try {
      import_lackey(write_log(body), c);
    } catch (const TraceError& e) {
      return std::to_string(e.line()) + " " + e.field() + ": " + e.message();
    }
    return std::string("no error");
  };
  CHECK(error_of("==1== x\nI  0401ab70,3\n L zz,8\n") == "3 addr: expected a hex address, got \"zz,8\"");
  CHECK(error_of(" S 1fff000628\n") == "1 size: expected ',SIZE' after the address, got \"\"");
  CHECK(error_of(" S 1fff000628,0\n") == "1 size: an access of 0 bytes");
  CHECK(error_of(" S 1fff000628,8x\n") == "1 size: unexpected text after the size: \"x\"");
  CHECK(error_of("I  11112222333344445,1\n") == "1 addr: more than 16 hex digits");
  CHECK(error_of("I  0401ab70,3\n S 1fff00") == "2 size: truncated last line: expected ',SIZE' after the address, got \"\"");
  CHECK(error_of(" L 0000800000000000,8\n") == "1 addr: 0x800000000000 is not canonical under 4-level guest paging");
  CHECK(error_of("==1== only a banner\n\n") ==
        "0 : no lackey access line (\"I  ADDR,SIZE\", \" L ADDR,SIZE\"...) in 2 lines: expected the log of valgrind "
        "--tool=lackey --trace-mem=yes");
}

TEST_CASE("guest memory or the page-table area running out is an error at the access", "[lackey]") {
  LackeyImportOptions o;
  o.paging.mem_size = 4u << 20;  // 2M of tables, one 2M data frame
  o.paging.page_level = PG_LEVEL_2M;
  Collect c;
  try {
    import_lackey(write_log(" L 0,8\n L 200000,8\n"), c, o);
    FAIL("no error");
  } catch (const TraceError& e) {
    CHECK(e.line() == 2);
    CHECK(e.field() == "addr");
    CHECK(e.message() == "guest memory full: all 1 data pages are mapped; raise --mem");
  }
  o.paging.page_level = PG_LEVEL_1G;
  CHECK_THROWS_AS(import_lackey(hello(), c, o), std::invalid_argument);
}

namespace {

// Imports `log` with `import_args`, replays it with `replay_args` and returns
// the total counters.
nlohmann::json import_and_replay(const std::string& log, const std::string& import_args, const std::string& replay_args) {
  auto dir = temp_dir();
  std::string trace = (dir / "t.jsonl").string(), stats = (dir / "s.json").string();
  auto imp = run_septsim("import lackey " + log + " -o " + trace + " " + import_args);
  REQUIRE(imp.exit_code == 0);
  auto rep = run_septsim("replay " + trace + " --check -q --stats " + stats + " " + replay_args);
  INFO(rep.err);
  REQUIRE(rep.exit_code == 0);
  return nlohmann::json::parse(slurp(stats))["stats"]["total"]["counters"];
}

}  // namespace

TEST_CASE("an imported lackey log replays: one EPT violation per guest-physical 4K page touched", "[lackey][cli]") {
  // 4K host backing: each data page (6) and each guest table (the root and 5
  // below it) is its own EPT leaf, faulted in by the first walk that needs it.
  auto c = import_and_replay(hello(), "--backing 4k", "");
  CHECK(c["vcpu0.walk.ept_violations"] == 12);
  CHECK(c["kvm.pages_4k"] == 12);
  // Completed walks: the first access to each of the 6 pages, plus the write
  // after the M's read of 0x04033e06 (its TLB entry has D clear).
  CHECK(c["vcpu0.walk.walks_2d"] == 12 + 7);
}

TEST_CASE("a cold first access costs (n+1)(m+1)-1 = 24 references once its EPT violations are fixed", "[lackey][cli]") {
  // No paging-structure caches, 4K EPT leaves, one fetch. The walks (the 2D
  // walk's (n+1)(m+1)-1 references; the guest tables are root R, PDPT, PD, PT, the data page at GPA 0):
  //   1: EPT walk of R stops at the empty EPT PML4E           1 EPT ref, violation
  //   2: R (4) + PML4E, then the PDPT's nested walk (4)         8 + 1 guest, violation
  //   3: + PDPTE, the PD's nested walk                         12 + 2, violation
  //   4: + PDE, the PT's nested walk                           16 + 3, violation
  //   5: + PTE, the data page's walk stops at its EPT PDPTE    18 + 4, violation (GPA 0 is in another 1G than R)
  //   6: complete                                              20 + 4 = 24
  std::string pwc_off;
  for (const char* k : {"guest.pml4", "guest.pdpt", "guest.pd", "ept.pml4", "ept.pdpt", "ept.pd"})
    pwc_off += std::string(" --set pwc.") + k + ".entries=0";
  auto c = import_and_replay(write_log("I  0401ab70,3\n"), "--backing 4k", pwc_off);
  CHECK(c["vcpu0.walk.walks_2d"] == 6);
  CHECK(c["vcpu0.walk.ept_violations"] == 5);
  CHECK(c["vcpu0.walk.refs.ept"] == 1 + 8 + 12 + 16 + 18 + 20);
  CHECK(c["vcpu0.walk.refs.guest"] == 0 + 1 + 2 + 3 + 4 + 4);
}

TEST_CASE("septsim import lackey: same output for the same input, exit 2 and no output on bad input", "[lackey][cli]") {
  auto dir = temp_dir();
  std::string a = (dir / "a.jsonl").string(), b = (dir / "b.sstb").string(), c = (dir / "c.jsonl").string();
  auto r = run_septsim("import lackey " + hello() + " -o " + a + " --placement fragmented --seed 3 --page-size 2m");
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("13 fetches, 5 loads, 9 stores, 2 modifies") != std::string::npos);
  REQUIRE(run_septsim("import lackey " + hello() + " -o " + b + " --placement fragmented --seed 3 --page-size 2m").exit_code == 0);
  REQUIRE(run_septsim("convert " + b + " " + c).exit_code == 0);
  CHECK(slurp(a).substr(slurp(a).find('\n')) == slurp(c).substr(slurp(c).find('\n')));  // past the header

  auto bad = run_septsim("import lackey " + write_log("I  0401ab70,3\n L 12,q\n") + " -o " + c);
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("t.lackey:2: field 'size': expected a decimal size") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(c));
  auto opt = run_septsim("import lackey " + hello() + " -o " + c + " --page-size 4m");
  CHECK(opt.exit_code == 2);
  CHECK(opt.err.find("--page-size must be one of 4k, 2m, 1g, not '4m'") != std::string::npos);
}
