// The ftrace / trace-cmd text importer against real KVM recordings
// (tests/data/kvm-shadow, golden values from their meta.json / stats.json)
// and hand-written lines in the other formats it must read.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "collect_sink.h"
#include "traces/ftrace_import.h"
#include "traces/reader.h"

using namespace septsim;
using namespace septsim::traces;
using namespace septsim::test;

namespace {

std::string data(const std::string& name) { return std::string(SEPTSIM_SOURCE_DIR) + "/tests/data/kvm-shadow/" + name; }

nlohmann::json load(const std::string& path) { return nlohmann::json::parse(slurp(path)); }

std::string write_text(const std::string& body) {
  auto p = temp_dir() / "t.trace";
  std::ofstream(p) << body;
  return p.string();
}

}  // namespace

TEST_CASE("event counts of the real recordings equal their meta.json", "[import]") {
  for (const char* name : {"seq", "random", "memslot-churn"}) {
    INFO(name);
    Collect c;
    auto r = import_ftrace(data(std::string(name) + ".trace"), c);
    auto meta = load(data(std::string(name) + ".meta.json"));
    std::map<std::string, u64> want = meta["event_counts"].get<std::map<std::string, u64>>();
    CHECK(r.event_counts == want);
    CHECK(r.event_lines == meta["trace_event_lines"].get<u64>());
    CHECK(r.malformed_lines == 0);
    CHECK(r.unknown_events.empty());
    CHECK(r.host_mmu == "shadow");
    // One map decision per kvm_mmu_spte_requested.
    CHECK(c.decisions(DecisionKind::Map) == want["kvm_mmu_spte_requested"]);
    CHECK(c.decisions(DecisionKind::ZapAllFast) == (want.count("kvm_mmu_zap_all_fast") ? want["kvm_mmu_zap_all_fast"] : 0));
    CHECK(c.count(EventType::Marker) == want["tracing_mark_write"]);
  }
}

TEST_CASE("the fault stream has one access per page fault KVM counted", "[import]") {
  // random has 2 vCPUs: a fault whose walk another CPU's MMU-notifier unmap
  // interrupts (line 1374 cuts the walk of 0x4f762000) is still one fault.
  for (const char* name : {"seq", "memslot-churn", "random"}) {
    INFO(name);
    Collect c;
    auto r = import_ftrace(data(std::string(name) + ".trace"), c);
    auto stats = load(data(std::string(name) + ".stats.json"));
    u64 pf_taken = 0;
    for (const auto& v : stats["vcpu_stats"]) pf_taken += v["pf_taken"].get<u64>();
    CHECK(r.faults == pf_taken);
    CHECK(c.count(EventType::Access) == pf_taken);
    CHECK(r.vcpus == stats["config"]["vcpus"].get<u32>());
  }
  Collect c;
  auto r = import_ftrace(data("random.trace"), c);
  CHECK(r.host_unmaps > 0);
}

TEST_CASE("memslots and phases come from the kvmrec markers", "[import]") {
  Collect c;
  import_ftrace(data("seq.trace"), c);
  auto stats = load(data("seq.stats.json"));
  REQUIRE(c.events.size() > 4);
  CHECK(c.events[0].type == EventType::VmCreate);
  std::vector<Event> slots;
  for (const auto& e : c.events)
    if (e.type == EventType::MemslotAdd) slots.push_back(e);
  REQUIRE(slots.size() == stats["memslots"].size());
  for (size_t i = 0; i < slots.size(); ++i) {
    CHECK(slots[i].slot.gpa == stats["memslots"][i]["gpa"].get<u64>());
    CHECK(slots[i].slot.size == stats["memslots"][i]["size"].get<u64>());
    CHECK(slots[i].slot.userspace_addr == stats["memslots"][i]["hva"].get<u64>());
    CHECK((slots[i].slot.backing == mmu::HostBacking::Thp2M) == (stats["memslots"][i]["thp"] == "on"));
  }
  std::vector<std::string> phases;
  for (const auto& e : c.events)
    if (e.type == EventType::Phase) phases.push_back(e.name);
  CHECK(phases == std::vector<std::string>{"write-4k"});
  // The first fault is the code page fetch, mapped 4K; the data faults are 2M writes.
  const Event* first = nullptr;
  for (const auto& e : c.events)
    if (e.type == EventType::Access && !first) first = &e;
  REQUIRE(first);
  CHECK(first->addr == stats["guest_layout"]["code_gpa"].get<u64>());
  CHECK(first->access == AccessType::Fetch);
}

// The dirtylog workload of kvmrec (its vmm's A_DIRTY_ON, A_DIRTY_GET,
// A_DIRTY_OFF act on the data slot only): each action marker becomes the
// dirty_log event KVM saw, so the model stops mapping 2M while KVM does.
TEST_CASE("kvmrec's dirty-log action markers become dirty_log events on the data slot", "[import]") {
  const std::string mark = "             vmm-7   [001] ...1.  10.000001: tracing_mark_write: kvmrec: ";
  const std::string path = write_text(
      mark + "start workload=dirtylog mem_mib=128 vcpus=1 thp=on pid=7 slot0(sys) gpa=0x0 size=0x200000 "
             "hva=0x7f0000000000 slot1(data) gpa=0x40000000 size=0x8000000 hva=0x7f1000000000\n" +
      mark + "begin action dirty-log-enable\n" + mark + "begin action dirty-log-get-1\n" + mark +
      "begin action dirty-log-get-2\n" + mark + "begin action dirty-log-disable\n");
  Collect c;
  import_ftrace(path, c);
  std::vector<std::pair<u32, DirtyLogOp>> got;
  for (const auto& e : c.events)
    if (e.type == EventType::DirtyLog) got.emplace_back(e.slot.id, e.dirty_op);
  CHECK(got == std::vector<std::pair<u32, DirtyLogOp>>{{1, DirtyLogOp::Enable},
                                                       {1, DirtyLogOp::Get},
                                                       {1, DirtyLogOp::Get},
                                                       {1, DirtyLogOp::Disable}});
}

TEST_CASE("the backing option overrides the data slots' host backing", "[import]") {
  Collect c;
  FtraceImportOptions o;
  o.backing = mmu::HostBacking::Page4K;
  import_ftrace(data("seq.trace"), c, o);
  for (const auto& e : c.events)
    if (e.type == EventType::MemslotAdd) CHECK(e.slot.backing == mmu::HostBacking::Page4K);
}

TEST_CASE("ftrace lines: task names with spaces and dashes, trace-cmd report without flags", "[import]") {
  FtraceRecord r;
  REQUIRE(parse_ftrace_line("   CPU 0/KVM-1234    [003] d..1.  100.000001: kvm_page_fault: vcpu 0 rip 0x1 address 0x40000000 error_code 0x182", r));
  CHECK(r.task == "CPU 0/KVM");
  CHECK(r.pid == 1234);
  CHECK(r.cpu == 3);
  CHECK(r.flags == "d..1.");
  CHECK(r.ts_ns == 100000001000ull);
  CHECK(r.event == "kvm_page_fault");
  REQUIRE(parse_ftrace_line("qemu-system-x86-99 [000] 5.123456789: kvm_mmu_spte_requested: gfn 40000 pfn 1 level 2 ", r));
  CHECK(r.task == "qemu-system-x86");
  CHECK(r.pid == 99);
  CHECK(r.flags.empty());
  CHECK(r.ts_ns == 5123456789ull);
  CHECK(r.body == "gfn 40000 pfn 1 level 2");
  CHECK_FALSE(parse_ftrace_line("# tracer: nop", r));
  CHECK_FALSE(parse_ftrace_line("", r));
  CHECK_FALSE(parse_ftrace_line("cpus=2", r));
  CHECK_FALSE(parse_ftrace_line("vmm-12 [001] .... notatime: x: y", r));
}

TEST_CASE("TDP hosts: EPT qualifications and NPF error codes give the access type", "[import]") {
  auto t = write_text(
      "version = 6\ncpus=2\n"
      " CPU 0/KVM-10 [001] ..... 1.000000: kvm_page_fault: vcpu 0 rip 0xffff address 0x0000000000001000 error_code 0x182\n"
      " CPU 0/KVM-10 [001] ..... 1.000001: kvm_mmu_spte_requested: gfn 1 pfn 100 level 1\n"
      " CPU 0/KVM-10 [001] ..... 1.000002: kvm_tdp_mmu_spte_changed: as id 0 gfn 1 level 1 old_spte 5a0 new_spte 100b77\n"
      " CPU 0/KVM-10 [001] ..... 1.000003: kvm_mmu_set_spte: gfn 1 spte 100b77 (rwxu) level 1 at 1234\n"
      " CPU 1/KVM-11 [000] ..... 1.000004: kvm_page_fault: vcpu 1 rip 0xffff address 0x0000000000002000 error_code 0x184\n"
      " CPU 1/KVM-11 [000] ..... 1.000005: kvm_page_fault: vcpu 1 rip 0xffff address 0x0000000000003000 error_code 0x100000004\n"
      " CPU 1/KVM-11 [000] ..... 1.000006: kvm_page_fault: vcpu 1 rip 0xffff address 0x0000000000004000 error_code 0x100000006\n"
      " CPU 1/KVM-11 [000] ..... 1.000007: fast_page_fault: vcpu 1 gva 4000 error_code P|W sptep 00000000 old 0x0 new 1 spurious 0 fixed 1\n"
      " CPU 1/KVM-11 [000] ..... 1.000008: kvm_tdp_mmu_spte_changed: as id 0 gfn 1 level 1 old_spte 100b77 new_spte 5a0\n"
      " CPU 1/KVM-11 [000] ..... 1.000009: kvm_mmu_split_huge_page: gfn 200 spte 1 level 2 errno 0\n"
      " CPU 1/KVM-11 [000] ..... 1.000010: some_new_event: whatever\n"
      "garbage line\n");
  Collect c;
  auto r = import_ftrace(t, c);
  CHECK(r.host_mmu == "tdp");
  CHECK(r.vcpus == 2);
  CHECK(r.unknown_events == std::map<std::string, u64>{{"some_new_event", 1}});
  CHECK(r.malformed_lines == 1);
  std::vector<std::pair<int, AccessType>> acc;
  for (const auto& e : c.events)
    if (e.type == EventType::Access) acc.push_back({e.vcpu, e.access});
  CHECK(acc == std::vector<std::pair<int, AccessType>>{
                   {0, AccessType::Write}, {1, AccessType::Fetch}, {1, AccessType::Read}, {1, AccessType::Write}});
  CHECK(c.decisions(DecisionKind::Map) == 1);
  CHECK(c.decisions(DecisionKind::Prefetch) == 0);
  CHECK(c.decisions(DecisionKind::Fast) == 1);
  CHECK(c.decisions(DecisionKind::Zap) == 1);
  CHECK(c.decisions(DecisionKind::Split) == 1);
}

TEST_CASE("a file that is not ftrace text is an error naming the file", "[import]") {
  auto t = write_text("{\"format\":\"septsim-trace\",\"version\":1}\n{\"type\":\"vm_create\",\"vcpus\":1}\n");
  Collect c;
  CHECK_THROWS_WITH(import_ftrace(t, c), Catch::Contains(t + ":1:") && Catch::Contains("not ftrace text"));
  CHECK_THROWS_WITH(import_ftrace(t + ".missing", c), Catch::Contains("cannot open"));
}

TEST_CASE("septsim import ftrace writes a trace the reader accepts, deterministically", "[import][cli]") {
  auto d = temp_dir();
  auto a = (d / "a.jsonl").string(), b = (d / "b.jsonl").string();
  auto r = run_septsim("import ftrace " + data("random.trace") + " -o " + a);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("2 vCPUs") != std::string::npos);
  REQUIRE(run_septsim("import ftrace " + data("random.trace") + " -o " + b).exit_code == 0);
  CHECK(slurp(a) == slurp(b));
  TraceReader reader(a);
  Event e;
  u64 n = 0;
  while (reader.next(e)) ++n;
  // vm_create, 2 memslots, 1 phase, and what the import reported.
  CHECK(n == 1 + 2 + 1 + 281 + 202 + 66 + 6);
  auto bad = run_septsim("import ftrace " + d.string() + "/nope.trace -o " + (d / "c.jsonl").string());
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("nope.trace: cannot open") != std::string::npos);
}
