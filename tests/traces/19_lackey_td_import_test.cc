// `septsim import lackey --vm-type tdx`: the program inside a TD. The guest
// accepts every private page (data and page tables) before its first touch,
// 2M where the backing allows, converts a shared range by MapGPA, the TD is
// finalized before the first access and torn down after the last, and the
// result replays with --check clean. --warmup starts a measured phase.
#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cli_util.h"
#include "collect_sink.h"
#include "replay_util.h"
#include "traces/lackey_import.h"

using namespace septsim;
using namespace septsim::traces;
using namespace septsim::test;

namespace {

std::string hello() { return std::string(SEPTSIM_SOURCE_DIR) + "/tests/data/lackey/hello.lackey"; }

LackeyImportOptions td_options(bool accept_2m, mmu::HostBacking backing = mmu::HostBacking::Thp2M) {
  LackeyImportOptions o;
  o.paging.mem_size = u64{64} << 20;
  o.paging.backing = backing;
  o.td.enabled = true;
  o.td.accept_2m = accept_2m;
  return o;
}

constexpr Gpa kShared = Gpa{1} << 47;

// Every guest_map's page (data) and every page-table page the replayer will
// write is covered by an accept that comes before it, at the unit `unit`.
void check_accepted_before_use(const Collect& c, u64 unit) {
  std::set<Gpa> accepted;
  Gpa cr3 = 0;
  u64 tables = 0;
  for (const auto& e : c.events) {
    if (e.type == EventType::SetCr3) cr3 = e.cr3;
    if (e.type == EventType::Accept) {
      CHECK(e.tdx.level == (unit == kPageSize ? 0 : 1));
      CHECK(e.gpa % unit == 0);
      CHECK(accepted.insert(e.gpa).second);  // each unit once
    }
    if (e.type == EventType::GuestMap && !(e.gpa & kShared)) {
      INFO("guest_map gpa " << e.gpa);
      CHECK(accepted.count(e.gpa & ~(unit - 1)) == 1);
      CHECK(accepted.count(cr3 & ~(unit - 1)) == 1);  // the root, written by the first map
      ++tables;
    }
  }
  CHECK(tables > 0);
}

}  // namespace

TEST_CASE("a TD import finalizes the TD before the program and tears it down after", "[lackey][tdx]") {
  Collect c;
  auto r = import_lackey(hello(), c, td_options(true));
  REQUIRE(c.events.size() > 6);
  CHECK(c.events[0].type == EventType::VmCreate);
  CHECK(c.events[0].tdx_vm);
  CHECK(c.events[0].tdx.gpaw == 48);
  CHECK(c.events[1].type == EventType::MemslotAdd);
  CHECK(c.events[2].type == EventType::TdFinalize);
  size_t first_access = 0;
  for (size_t i = 0; i < c.events.size() && !first_access; ++i)
    if (c.events[i].type == EventType::Access || c.events[i].type == EventType::SetCr3) first_access = i;
  CHECK(first_access > 2);
  CHECK(c.events.back().type == EventType::TdTeardown);
  CHECK(c.count(EventType::TdTeardown) == 1);
  CHECK(r.accesses == 32);  // the same program as in a VM
}

TEST_CASE("with 2M-backed memory the TD guest accepts 2 MiB regions before their first touch", "[lackey][tdx]") {
  Collect c;
  auto r = import_lackey(hello(), c, td_options(true));
  check_accepted_before_use(c, u64{2} << 20);
  // hello's data pages all sit in the first 2 MiB; the tables in the top region.
  CHECK(r.accepts_2m == 2);
  CHECK(r.accepts_4k == 0);
}

TEST_CASE("4K acceptance, or 4K host backing, accepts page by page: data pages and page tables", "[lackey][tdx]") {
  for (auto [accept_2m, backing] : {std::pair{false, mmu::HostBacking::Thp2M}, std::pair{true, mmu::HostBacking::Page4K}}) {
    Collect c;
    auto r = import_lackey(hello(), c, td_options(accept_2m, backing));
    check_accepted_before_use(c, kPageSize);
    CHECK(r.accepts_2m == 0);
    // 6 data pages, the root and 5 tables below it.
    CHECK(r.accepts_4k == 6 + 1 + 5);
  }
}

TEST_CASE("a shared range is converted by MapGPA and mapped at shared GPAs, never accepted", "[lackey][tdx]") {
  auto o = td_options(false);
  o.td.shared_gva = 0x1fff000000;  // hello's stack page
  o.td.shared_size = 0x1000;
  Collect c;
  auto r = import_lackey(hello(), c, o);
  CHECK(r.shared_pages == 1);
  auto maps = c.of(EventType::MapGpa);
  REQUIRE(maps.size() == 1);
  CHECK((maps[0].gpa & kShared) != 0);
  bool mapped_shared = false;
  for (size_t i = 0; i < c.events.size(); ++i)
    if (c.events[i].type == EventType::GuestMap && c.events[i].gva == 0x1fff000000) {
      CHECK(c.events[i].gpa == maps[0].gpa);
      CHECK(c.events[i - 1].type == EventType::MapGpa);  // converted right before its mapping
      mapped_shared = true;
    }
  CHECK(mapped_shared);
  for (const auto& a : c.of(EventType::Accept)) CHECK(a.gpa != (maps[0].gpa & ~kShared));
}

TEST_CASE("import lackey --warmup N puts a measured phase after N accesses", "[lackey]") {
  LackeyImportOptions o;
  o.warmup = 10;
  Collect c;
  auto r = import_lackey(hello(), c, o);
  CHECK(r.measured_phase);
  u64 before = 0;
  bool seen = false;
  for (const auto& e : c.events) {
    if (e.type == EventType::Phase) {
      CHECK(e.name == "measured");
      seen = true;
    }
    if (e.type == EventType::Access && !seen) before += e.count;
  }
  CHECK(seen);
  CHECK(before == 10);
  LackeyImportOptions beyond;
  beyond.warmup = 1000;
  Collect none;
  CHECK_FALSE(import_lackey(hello(), none, beyond).measured_phase);
  CHECK(none.count(EventType::Phase) == 0);
}

TEST_CASE("a program imported into a TD replays with every invariant holding and the TDX block filled",
          "[lackey][tdx]") {
  auto d = temp_dir();
  for (const char* accept : {"2m", "4k"}) {
    INFO(accept);
    auto t = (d / (std::string("td-") + accept + ".jsonl")).string();
    auto i = run_septsim("import lackey " + hello() + " -o " + t + " --mem 64M --vm-type tdx --accept " + accept +
                         " --shared 0x1fff000000:4K --warmup 10");
    INFO(i.err);
    REQUIRE(i.exit_code == 0);
    CHECK(i.err.find("TD: ") != std::string::npos);
    auto j = replay_checked(t);
    REQUIRE(j["stats"]["phases"].size() == 2);
    CHECK(j["stats"]["phases"][1]["name"] == "measured");
    const auto& der = j["stats"]["total"]["derived"];
    CHECK(der["accesses"] == 32);
    CHECK(der["tdx.seamcalls.tdh_mem_page_aug"].get<u64>() > 0);
    CHECK(der["tdx.tdcalls"].get<u64>() > 0);
    CHECK(der["tdx.seamcalls.tdh_phymem_page_reclaim"].get<u64>() > 0);  // torn down
    CHECK(j["stats"]["total"]["counters"]["vcpu0.guest_page_faults"] == 0);
  }
  auto bad = run_septsim("import lackey " + hello() + " -o " + (d / "x.jsonl").string() + " --shared 0x1000:4K");
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--shared needs --vm-type tdx") != std::string::npos);
}
