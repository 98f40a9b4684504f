// The trace_marker vocabulary (docs/markers.md): markers any VMM can write
// become memslot, dirty-log, TD and phase events; kvmrec's forms map onto
// it; unknown markers are counted and listed.
#include <catch2/catch.hpp>
#include <fstream>

#include "cli_util.h"

using namespace septsim::test;

namespace {

// A recording in the tracefs `trace` text format with these markers, one
// fault per line given as "F GPA" (an EPT write, kvm_page_fault).
std::string recording(const std::vector<std::string>& items) {
  auto p = (temp_dir() / "rec.trace").string();
  std::ofstream o(p);
  o << "# tracer: nop\n";
  int us = 0;
  for (const std::string& it : items) {
    char ts[32];
    std::snprintf(ts, sizeof ts, "5.%06d", ++us);
    if (it.rfind("F ", 0) == 0)
      o << "       vmm-7  [000] .....  " << ts << ": kvm_page_fault: vcpu 0 rip 0x1 address " << it.substr(2)
        << " error_code 0x182\n";
    else
      o << "       vmm-7  [000] ...1.  " << ts << ": tracing_mark_write: " << it << "\n";
  }
  return p;
}

struct Imported {
  CliResult cli;
  std::vector<std::string> events;  // without the header
};

Imported import(const std::string& in) {
  auto out = (temp_dir() / "out.jsonl").string();
  Imported r;
  r.cli = run_septsim("import ftrace " + in + " -o " + out);
  std::ifstream f(out);
  std::string l;
  std::getline(f, l);
  while (std::getline(f, l)) r.events.push_back(l);
  return r;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

}  // namespace

TEST_CASE("vocabulary markers become memslot, dirty-log and phase events", "[ftrace][markers]") {
  auto r = import(recording({
      "septsim: vm vcpus=1",
      "septsim: memslot add slot=1 gpa=0x40000000 size=256M hva=0x7f0000000000 backing=thp",
      "septsim: phase begin warm",
      "F 0x40001000",
      "septsim: dirty-log enable slot=1",
      "septsim: dirty-log get slot=1",
      "septsim: dirty-log clear slot=1 first=64 num=128",
      "septsim: dirty-log disable slot=1",
      "septsim: memslot move slot=1 gpa=0x80000000",
      "septsim: memslot delete slot=1",
      "septsim: memslot add slot=2 gpa=0x0 size=2M flags=dirty_log,readonly",
      "septsim: phase end warm",
  }));
  INFO(r.cli.err);
  REQUIRE(r.cli.exit_code == 0);
  const auto& e = r.events;
  CHECK(e.front() == R"({"type":"vm_create","vcpus":1})");
  CHECK(has(e, R"({"type":"memslot_add","slot":1,"gpa":"0x40000000","size":"0x10000000","backing":"thp","hva":"0x7f0000000000"})"));
  CHECK(has(e, R"({"type":"phase","name":"warm"})"));
  CHECK(has(e, R"({"type":"access","vcpu":0,"gpa":"0x40001000","op":"w","ts_ns":5000004000})"));
  CHECK(has(e, R"({"type":"dirty_log","slot":1,"op":"enable"})"));
  CHECK(has(e, R"({"type":"dirty_log","slot":1,"op":"get"})"));
  CHECK(has(e, R"({"type":"dirty_log","slot":1,"op":"clear","first_page":64,"num_pages":128})"));
  CHECK(has(e, R"({"type":"dirty_log","slot":1,"op":"disable"})"));
  CHECK(has(e, R"({"type":"memslot_move","slot":1,"gpa":"0x80000000"})"));
  CHECK(has(e, R"({"type":"memslot_delete","slot":1})"));
  CHECK(has(e, R"({"type":"memslot_add","slot":2,"gpa":"0x0","size":"0x200000","backing":"4k","flags":["dirty_log","readonly"]})"));
  CHECK_THAT(r.cli.err, !Catch::Contains("unknown marker"));
}

TEST_CASE("a TD's vocabulary markers make a TD VM with its life cycle and attribute conversions", "[ftrace][markers]") {
  auto r = import(recording({
      "septsim: vm vcpus=2 type=tdx",
      "septsim: memslot add slot=0 gpa=0x0 size=1G backing=4k",
      "septsim: td init-mem-region gpa=0x100000 size=64K measure",
      "septsim: td finalize",
      "septsim: attributes gpa=0x300000 size=4K shared",
      "septsim: td teardown terminate",
  }));
  INFO(r.cli.err);
  REQUIRE(r.cli.exit_code == 0);
  CHECK(r.events.front() == R"({"type":"vm_create","vcpus":2,"vm_type":"tdx","gpaw":48,"levels":4})");
  CHECK(has(r.events, R"({"type":"td_init_mem_region","gpa":"0x100000","size":"0x10000","measure":true})"));
  CHECK(has(r.events, R"({"type":"td_finalize"})"));
  CHECK(has(r.events, R"({"type":"set_memory_attributes","gpa":"0x300000","size":"0x1000","private":false})"));
  CHECK(has(r.events, R"({"type":"td_teardown","terminate":true})"));
}

TEST_CASE("kvmrec's action markers map onto the vocabulary's events", "[ftrace][markers]") {
  auto r = import(recording({
      "kvmrec: start workload=dirtylog mem_mib=128 vcpus=1 thp=on guest_pages=2m cpl=3 pid=7 slot0(sys) gpa=0x0 "
      "size=0x200000 hva=0x7f0000000000 slot1(data) gpa=0x40000000 size=0x8000000 hva=0x7f1000000000",
      "kvmrec: begin phase write-4k (op 1 stride 0x1000 frac 1/1)",
      "F 0x40000000",
      "kvmrec: end phase write-4k",
      "kvmrec: begin action dirty-log-enable",
      "kvmrec: begin action dirty-log-get-1",
      "kvmrec: dirty log dirty-log-get-1: 1 dirty 4K pages",
      "kvmrec: begin action dirty-log-disable",
      "kvmrec: begin action memslot-delete",
      "kvmrec: begin action memslot-add",
      "kvmrec: teardown",
      "kvmrec: exit",
  }));
  INFO(r.cli.err);
  REQUIRE(r.cli.exit_code == 0);
  CHECK(has(r.events, R"({"type":"phase","name":"write-4k"})"));
  CHECK(has(r.events, R"({"type":"dirty_log","slot":1,"op":"enable"})"));
  CHECK(has(r.events, R"({"type":"dirty_log","slot":1,"op":"get"})"));
  CHECK(has(r.events, R"({"type":"dirty_log","slot":1,"op":"disable"})"));
  CHECK(has(r.events, R"({"type":"memslot_delete","slot":1})"));
  CHECK(has(r.events, R"({"type":"phase","name":"dirty-log-get-1"})"));
  // Slot 0 is kvmrec's "sys" slot: no dirty logging there.
  CHECK_FALSE(has(r.events, R"({"type":"dirty_log","slot":0,"op":"enable"})"));
  CHECK_THAT(r.cli.err, !Catch::Contains("unknown marker"));
}

TEST_CASE("markers outside the vocabulary are counted and listed, and kept as markers", "[ftrace][markers]") {
  auto r = import(recording({
      "septsim: vm vcpus=1",
      "hello from the harness",
      "hello from the harness",
      "kvmrec: begin action balloon-inflate",
      "septsim: snapshot take",
  }));
  INFO(r.cli.err);
  REQUIRE(r.cli.exit_code == 0);
  CHECK_THAT(r.cli.err, Catch::Contains("4 markers outside the vocabulary"));
  CHECK_THAT(r.cli.err, Catch::Contains("unknown marker: \"hello from the harness\" x2"));
  CHECK_THAT(r.cli.err, Catch::Contains("unknown marker: \"kvmrec: begin action balloon-inflate\" x1"));
  CHECK_THAT(r.cli.err, Catch::Contains("unknown marker: \"septsim: snapshot take\" x1"));
  CHECK(has(r.events, R"({"type":"marker","text":"hello from the harness"})"));
  CHECK_FALSE(has(r.events, R"({"type":"phase","name":"balloon-inflate"})"));
}

TEST_CASE("a malformed vocabulary marker is bad input naming the file, line and field", "[ftrace][markers]") {
  auto in = recording({"septsim: vm vcpus=1", "septsim: memslot add slot=1 gpa=0x40000000"});
  auto r = import(in);
  CHECK(r.cli.exit_code != 0);
  CHECK_THAT(r.cli.err, Catch::Contains(in + ":3: field 'size'"));
  CHECK_THAT(r.cli.err, Catch::Contains("missing size="));
  auto r2 = import(recording({"septsim: vm vcpus=1", "septsim: dirty-log get slot=5"}));
  CHECK(r2.cli.exit_code != 0);
  CHECK_THAT(r2.cli.err, Catch::Contains("field 'slot': marker \"septsim: dirty-log get\": slot 5 was not added"));
  auto r3 = import(recording({"septsim: vm vcpus=1", "septsim: td finalize"}));
  CHECK(r3.cli.exit_code != 0);
  CHECK_THAT(r3.cli.err, Catch::Contains("needs a TD"));
}

TEST_CASE("write-protection without a dirty-log marker is reported as an inference", "[ftrace][markers]") {
  // kvm_tdp_mmu_spte_changed (arch/x86/kvm/mmu/mmutrace.h): a present 4K EPT
  // leaf (R|W|X = 7) that stays present without W (R|X = 5) is write-protected.
  auto text = (temp_dir() / "wp.trace").string();
  std::ofstream(text)
      << " CPU 0/KVM-10 [001] ..... 1.000001: kvm_page_fault: vcpu 0 rip 0x1 address 0x0000000000001000 error_code 0x182\n"
         " CPU 0/KVM-10 [001] ..... 1.000002: kvm_tdp_mmu_spte_changed: as id 0 gfn 1 level 1 old_spte 0 new_spte 600000001234f77\n"
         "       vmm-7  [000] ..... 1.000003: kvm_tdp_mmu_spte_changed: as id 0 gfn 1 level 1 old_spte 600000001234f77 new_spte 600000001234f75\n"
         "       vmm-7  [000] ..... 1.000004: kvm_tdp_mmu_spte_changed: as id 0 gfn 2 level 1 old_spte 600000001235f77 new_spte 0\n";
  auto r = import(text);
  INFO(r.cli.err);
  REQUIRE(r.cli.exit_code == 0);
  CHECK_THAT(r.cli.err, Catch::Contains("inferred: 1 present SPTEs write-protected"));
  CHECK_THAT(r.cli.err, Catch::Contains(text + ":3)"));
  // With the marker, nothing is inferred.
  auto marked = (temp_dir() / "wp2.trace").string();
  std::ofstream(marked) << "       vmm-7  [000] ...1. 0.500000: tracing_mark_write: septsim: memslot add slot=0 gpa=0x0 size=1G\n"
                           "       vmm-7  [000] ...1. 0.500001: tracing_mark_write: septsim: dirty-log enable slot=0\n"
                        << slurp(text);
  auto r2 = import(marked);
  REQUIRE(r2.cli.exit_code == 0);
  CHECK_THAT(r2.cli.err, !Catch::Contains("inferred:"));
}
