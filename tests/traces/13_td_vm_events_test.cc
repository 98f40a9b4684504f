// Reading the TD VM events: vm_create "vm_type":"tdx", td_init_mem_region,
// td_finalize, td_teardown, accept; and writing them back as JSONL.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "traces/jsonl_writer.h"
#include "traces/reader.h"

using namespace septsim;
using namespace septsim::traces;

namespace {

const std::string kHdr = "{\"format\":\"septsim-trace\",\"version\":1}\n";
const std::string kTdVm = "{\"type\":\"vm_create\",\"vcpus\":2,\"vm_type\":\"tdx\"}\n";

// Reads `content`; returns the events, or sets *err to what() with the path replaced by FILE.
std::vector<Event> read(const std::string& content, std::string* err = nullptr) {
  static int n = 0;
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("septsim-tdvm-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".jsonl"))
                               .string();
  std::ofstream(path, std::ios::binary) << content;
  std::vector<Event> out;
  try {
    TraceReader r(path);
    Event e;
    while (r.next(e)) out.push_back(e);
  } catch (const TraceError& e) {
    std::string w = e.what();
    if (w.rfind(path, 0) == 0) w.replace(0, path.size(), "FILE");
    if (err) *err = w;
  }
  std::filesystem::remove(path);
  return out;
}

std::string error_of(const std::string& content) {
  std::string err;
  read(content, &err);
  return err;
}

}  // namespace

TEST_CASE("vm_create with vm_type tdx and the TD events decode", "[tdx]") {
  auto ev = read(kHdr + "{\"type\":\"vm_create\",\"vcpus\":2,\"vm_type\":\"tdx\",\"gpaw\":52,\"dynamic_pamt\":true}\n" +
                 "{\"type\":\"td_init_mem_region\",\"gpa\":\"0x100000\",\"size\":\"64K\",\"measure\":true,\"tag\":\"0x10\"}\n"
                 "{\"type\":\"td_finalize\"}\n"
                 "{\"type\":\"accept\",\"vcpu\":1,\"gpa\":\"0x200000\",\"level\":1}\n"
                 "{\"type\":\"td_teardown\"}\n");
  REQUIRE(ev.size() == 5);
  CHECK(ev[0].tdx_vm);
  CHECK(ev[0].tdx.gpaw == 52);
  CHECK(ev[0].tdx.ept_levels == 5);
  CHECK(ev[0].tdx.dynamic_pamt);
  CHECK(ev[1].type == EventType::TdInitMemRegion);
  CHECK(ev[1].gpa == 0x100000);
  CHECK(ev[1].size == 0x10000);
  CHECK(ev[1].measure);
  CHECK(ev[1].tag == 0x10);
  CHECK(ev[2].type == EventType::TdFinalize);
  CHECK(ev[3].type == EventType::Accept);
  CHECK(ev[3].vcpu == 1);
  CHECK(ev[3].tdx.level == 1);
  CHECK(ev[4].type == EventType::TdTeardown);
  CHECK(event_to_json(ev[0]) == R"({"type":"vm_create","vcpus":2,"vm_type":"tdx","gpaw":52,"levels":5,"dynamic_pamt":true})");
  CHECK(event_to_json(ev[1]) == R"({"type":"td_init_mem_region","gpa":"0x100000","size":"0x10000","measure":true,"tag":"0x10"})");
  CHECK(event_to_json(ev[3]) == R"({"type":"accept","vcpu":1,"gpa":"0x200000","level":1})");
}

TEST_CASE("TD event errors name the line and the field", "[tdx]") {
  CHECK(error_of(kHdr + "{\"type\":\"vm_create\",\"vcpus\":1,\"vm_type\":\"sev\"}\n") ==
        "FILE:2: field 'vm_type': unknown value \"sev\" (expected one of: default, tdx, native)");
  CHECK(error_of(kHdr + "{\"type\":\"vm_create\",\"vcpus\":1,\"gpaw\":48}\n") ==
        "FILE:2: field 'gpaw': only a TD VM (\"vm_type\":\"tdx\") takes it");
  CHECK(error_of(kHdr + "{\"type\":\"vm_create\",\"vcpus\":1}\n{\"type\":\"td_finalize\"}\n") ==
        "FILE:3: field 'type': needs a TD VM: vm_create must say \"vm_type\":\"tdx\"");
  CHECK(error_of(kHdr + kTdVm + "{\"type\":\"accept\",\"vcpu\":0,\"gpa\":\"0x1000\",\"level\":1}\n") ==
        "FILE:3: field 'gpa': 0x1000 is not 2 MiB aligned");
  CHECK(error_of(kHdr + kTdVm + "{\"type\":\"accept\",\"vcpu\":0,\"gpa\":\"0x1000\",\"level\":2}\n") ==
        "FILE:3: field 'level': ACCEPT takes TDX level 0 (4K) or 1 (2M), got 2");
  CHECK(error_of(kHdr + kTdVm + "{\"type\":\"accept\",\"vcpu\":2,\"gpa\":\"0x1000\"}\n").rfind("FILE:3: field 'vcpu': ", 0) == 0);
  CHECK(error_of(kHdr + kTdVm + "{\"type\":\"td_init_mem_region\",\"gpa\":\"0x1000\",\"size\":0}\n").rfind(
            "FILE:3: field 'size': ", 0) == 0);
}
