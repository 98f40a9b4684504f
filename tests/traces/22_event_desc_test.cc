// One description per event type (traces/event_desc.h): it agrees with the
// published JSON Schema, and both readers take their limits from it.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <filesystem>
#include <set>

#include "cli_util.h"
#include "traces/binary_trace.h"
#include "traces/event_desc.h"
#include "traces/event_source.h"
#include "traces/jsonl_writer.h"
#include "traces/reader.h"

using namespace septsim;
using namespace septsim::traces;
using namespace septsim::test;

namespace {

std::string read_error(const std::string& path) {
  try {
    auto src = open_event_source(path);
    Event e;
    while (src->next(e)) {
    }
  } catch (const TraceError& e) {
    return e.what();
  }
  return "";
}

// A binary trace of `events` (written with the binary writer).
std::string binary_trace(const std::vector<Event>& events) {
  auto p = (temp_dir() / "t.sstb").string();
  BinaryTraceWriter w(p);
  for (const Event& e : events) w.put(e);
  w.finish();
  return p;
}

Event vm_create(u32 vcpus) {
  Event e;
  e.type = EventType::VmCreate;
  e.vcpus = vcpus;
  return e;
}

}  // namespace

TEST_CASE("every event type's description lists exactly the fields docs/trace-schema.json allows", "[desc]") {
  auto schema = nlohmann::json::parse(slurp(std::string(SEPTSIM_SOURCE_DIR) + "/docs/trace-schema.json"));
  const auto& defs = schema.at("$defs");
  std::set<std::string> schema_types;
  for (const auto& ref : defs.at("event").at("oneOf")) {
    std::string r = ref.at("$ref");
    schema_types.insert(r.substr(r.rfind('/') + 1));
  }
  std::set<std::string> desc_types;
  for (const EventDesc& d : kEventDescs) desc_types.insert(std::string(d.name));
  CHECK(desc_types == schema_types);
  for (const EventDesc& d : kEventDescs) {
    INFO(d.name);
    REQUIRE(defs.contains(std::string(d.name)));
    const auto& def = defs.at(std::string(d.name));
    std::set<std::string> schema_fields, schema_required;
    for (const auto& [k, v] : def.at("properties").items())
      if (k != "type" && k != "vm") schema_fields.insert(k);
    for (const auto& k : def.at("required"))
      if (k != "type") schema_required.insert(k);
    std::set<std::string> fields, required;
    for (const FieldDesc& f : d.fields) {
      fields.insert(std::string(f.name));
      if (f.need == Need::Required) required.insert(std::string(f.name));
    }
    CHECK(fields == schema_fields);
    CHECK(required == schema_required);
  }
}

TEST_CASE("the description's scopes are the vocabulary's: host-wide, per-vCPU and TD-VM events", "[desc]") {
  // docs/trace-format.md, "Event order" and "Several VMs".
  for (EventType t : {EventType::Phase, EventType::Marker, EventType::TdCreate, EventType::Seamcall, EventType::Tdcall,
                      EventType::TdVcpu})
    CHECK_FALSE(vm_scoped(t));
  for (EventType t : {EventType::Access, EventType::SetCr3, EventType::Invept, EventType::Invvpid, EventType::Invlpg,
                      EventType::Invpcid})
    CHECK(vcpu_ordered(t));
  CHECK_FALSE(vcpu_ordered(EventType::Accept));  // names a vCPU, but runs VM-wide
  CHECK(names_vm_vcpu(EventType::Accept));
  CHECK(names_vm_vcpu(EventType::MapGpa));
  CHECK_FALSE(names_vm_vcpu(EventType::KvmDecision));  // its vcpu is optional
  CHECK_FALSE(names_vm_vcpu(EventType::Tdcall));       // a TD's vCPU
  CHECK(event_desc(EventType::TdFinalize).needs_td_vm);
  CHECK_FALSE(event_desc(EventType::NxRecoveryTick).needs_td_vm);
  CHECK(binary_event_types(1) == u32(EventType::HostUnmap) + 1);
  CHECK(binary_event_types(2) == u32(EventType::NxRecoveryTick) + 1);
}

TEST_CASE("the JSON and binary readers reject an out-of-range vcpus with the same message", "[desc][binary]") {
  auto json = write_trace("{\"type\":\"vm_create\",\"vcpus\":300}\n");
  auto bin = binary_trace({vm_create(300)});
  const std::string want = "field 'vcpus': 300 is out of range (1..256)";
  CHECK_THAT(read_error(json), Catch::Contains(want));
  CHECK_THAT(read_error(bin), Catch::Contains(want));
}

TEST_CASE("a binary trace keeps nx_recovery_tick of a normal VM, as the JSON reader does", "[desc][binary]") {
  // Before the description the binary validator took every type from
  // td_init_mem_region on for a TD-VM event, nx_recovery_tick included.
  auto json = write_trace("{\"type\":\"vm_create\",\"vcpus\":1}\n{\"type\":\"nx_recovery_tick\"}\n");
  CHECK(read_error(json).empty());
  Event tick;
  tick.type = EventType::NxRecoveryTick;
  auto bin = binary_trace({vm_create(1), tick});
  CHECK(read_error(bin).empty());
}

TEST_CASE("a binary trace names the slot range of the description", "[desc][binary]") {
  Event del;
  del.type = EventType::MemslotDelete;
  del.slot.id = 40000;
  auto bin = binary_trace({vm_create(1), del});
  CHECK_THAT(read_error(bin), Catch::Contains("field 'slot': 40000 is out of range (0..32763)"));
}

TEST_CASE("every event type the description gives a binary version round-trips through .sstb", "[desc][binary]") {
  // tests/traces/data/every_event.jsonl: one event of each type the binary format carries.
  TraceReader in(std::string(SEPTSIM_SOURCE_DIR) + "/tests/traces/data/every_event.jsonl");
  std::vector<Event> events;
  std::set<EventType> types;
  for (Event e; in.next(e);) events.push_back(e), types.insert(e.type);
  for (const EventDesc& d : kEventDescs)
    if (d.binary_version) CHECK(types.count(d.type));
  auto bin = binary_trace(events);
  auto src = open_event_source(bin);
  size_t i = 0;
  for (Event e; src->next(e); ++i) {
    REQUIRE(i < events.size());
    CHECK(event_to_json(e) == event_to_json(events[i]));
  }
  CHECK(i == events.size());
}

TEST_CASE("an event type without a binary version is refused by the binary writer, naming it", "[desc][binary]") {
  auto p = (temp_dir() / "t.sstb").string();
  BinaryTraceWriter w(p);
  w.put(vm_create(1));
  for (const EventDesc& d : kEventDescs) {
    if (d.binary_version) continue;
    Event e;
    e.type = d.type;
    e.vcpu = 0;
    CHECK_THROWS_WITH(w.put(e), Catch::Contains(std::string(d.name) + " events have no binary encoding"));
  }
}

// The JSON Lines writer takes each field from the event type's description
// (FieldDesc::write). Every trace in the repository that the reader accepts
// (and a generated nested-EPT trace) is written and read back: the same events (and the same bytes the binary
// writer, which does not use the JSON writer, makes of them), and writing
// them again gives the same lines.
TEST_CASE("the JSON Lines writer gives back every repository trace as the reader read it", "[desc][jsonl]") {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const char* dir : {"tests", "traces/samples"})
    for (const auto& f : fs::recursive_directory_iterator(fs::path(SEPTSIM_SOURCE_DIR) / dir))
      if (f.path().extension() == ".jsonl") files.push_back(f.path());
  std::sort(files.begin(), files.end());
  // No trace file has L1's nested events: the generator's.
  files.push_back(temp_dir() / "nested.jsonl");
  REQUIRE(run_septsim("gen nested-ept --count 20 -o " + files.back().string()).exit_code == 0);
  auto read_all = [](const std::string& path) {
    std::vector<Event> v;
    TraceReader in(path);
    for (Event e; in.next(e);) v.push_back(e);
    return v;
  };
  auto binary = [](const std::vector<Event>& events, const std::string& name) {
    auto p = (temp_dir() / name).string();
    BinaryTraceWriter w(p);
    for (const Event& e : events) w.put(e);
    w.finish();
    return slurp(p);
  };
  size_t traces = 0, with_binary = 0;
  std::set<EventType> types;
  for (const fs::path& f : files) {
    INFO(f.string());
    std::vector<Event> first;
    try {
      first = read_all(f.string());
    } catch (const TraceError&) {
      continue;  // a bad-input test's trace
    }
    ++traces;
    auto out = (temp_dir() / "rt.jsonl").string();
    {
      JsonlWriter w(out);
      for (const Event& e : first) w.put(e);
      w.finish();
    }
    std::vector<Event> second = read_all(out);
    REQUIRE(second.size() == first.size());
    // Written again, the read-back events give the same bytes.
    auto again = (temp_dir() / "rt2.jsonl").string();
    {
      JsonlWriter w(again);
      for (const Event& e : second) w.put(e);
      w.finish();
    }
    CHECK(slurp(again) == slurp(out));
    bool all_binary = true;
    for (size_t i = 0; i < first.size(); ++i) {
      CHECK(event_to_json(second[i]) == event_to_json(first[i]));
      types.insert(first[i].type);
      all_binary &= event_desc(first[i].type).binary_version != 0;
    }
    if (all_binary) {
      ++with_binary;
      CHECK(binary(first, "a.sstb") == binary(second, "b.sstb"));
    }
  }
  CHECK(traces >= 30);
  // every_event.jsonl is as the writer writes it: read and written back, byte for byte.
  const fs::path every = fs::path(SEPTSIM_SOURCE_DIR) / "tests/traces/data/every_event.jsonl";
  auto out = (temp_dir() / "every.jsonl").string();
  {
    TraceReader in(every.string());
    JsonlWriter w(out, in.header().description);
    for (Event e; in.next(e);) w.put(e);
    w.finish();
  }
  CHECK(slurp(out) == slurp(every));
  CHECK(with_binary >= 25);
  CHECK(types.size() == kNumEventTypes);
}
