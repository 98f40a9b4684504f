// The JSON Lines reader decodes every field through its description
// (FieldDesc::in, traces/event_desc.h): a bad value of any field of any event
// type is reported on that field and that line, and so is a missing required
// field.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <fstream>
#include <set>
#include <vector>

#include "cli_util.h"
#include "traces/event_desc.h"
#include "traces/reader.h"

using namespace septsim;
using namespace septsim::traces;
using namespace septsim::test;
using ojson = nlohmann::ordered_json;

namespace {

// One valid line of each event type, each valid after the lines before it:
// the repository's every_event.jsonl, then L1's nested events and the TD's
// vcpu_migrate (neither is in the binary format, which every_event.jsonl
// also feeds).
std::vector<std::string> valid_lines() {
  std::vector<std::string> lines;
  std::ifstream in(std::string(SEPTSIM_SOURCE_DIR) + "/tests/traces/data/every_event.jsonl");
  std::string l;
  std::getline(in, l);  // the header
  while (std::getline(in, l)) lines.push_back(l);
  for (const char* nested : {R"({"type":"nested_vmentry","vcpu":0,"eptp":"0x10105e"})",
                             R"({"type":"l2_access","vcpu":1,"gpa":"0x1000","op":"r","count":2,"stride":"4K"})",
                             R"({"type":"l1_ept_write","vcpu":0,"eptp":"0x10105e","gpa":"0x3000"})",
                             R"({"type":"l1_invept","vcpu":0,"kind":"single","eptp":"0x10105e"})",
                             R"({"type":"vcpu_migrate","vcpu":0,"lp":1})"})
    lines.push_back(nested);
  return lines;
}

// A value of the wrong JSON kind for a field of kind `k`.
ojson wrong_kind(FieldKind k) {
  switch (k) {
    case FieldKind::Bool: return "yes";
    case FieldKind::Text:
    case FieldKind::Choice:
    case FieldKind::Status:
    case FieldKind::Registers: return 7;
    case FieldKind::Flags: return "dirty_log";
    default: return true;  // the numbers
  }
}

struct Failure {
  u64 line = 0;
  std::string field, what;
};

// Reads the trace of `lines` (after the header) to the end or its first error.
Failure read_failure(const std::vector<std::string>& lines) {
  auto p = (temp_dir() / "t.jsonl").string();
  {
    std::ofstream out(p, std::ios::binary);
    out << R"({"format":"septsim-trace","version":1})" << "\n";
    for (const std::string& l : lines) out << l << "\n";
  }
  try {
    TraceReader r(p);
    for (Event e; r.next(e);) {
    }
  } catch (const TraceError& e) {
    return {e.line(), e.field(), e.what()};
  }
  return {};
}

}  // namespace

TEST_CASE("a value of the wrong kind in any field of any event type is reported on that field", "[reader][desc]") {
  const std::vector<std::string> lines = valid_lines();
  REQUIRE(read_failure(lines).what.empty());
  std::set<EventType> seen;
  size_t fields = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const ojson event = ojson::parse(lines[i]);
    const EventDesc* d = event_desc_by_name(event["type"].get<std::string>());
    REQUIRE(d);
    if (!seen.insert(d->type).second) continue;
    std::vector<std::string> trace(lines.begin(), lines.begin() + std::ptrdiff_t(i) + 1);
    for (const FieldDesc& f : d->fields) {
      INFO(lines[i] << " field " << f.name);
      ojson bad = event;
      // Only one of a one-of pair (access gpa | gva) is on a line.
      if (f.need == Need::OneOf)
        for (const FieldDesc& other : d->fields)
          if (other.need == Need::OneOf && other.name != f.name) bad.erase(std::string(other.name));
      bad[std::string(f.name)] = wrong_kind(f.kind);
      trace.back() = bad.dump();
      Failure e = read_failure(trace);
      CHECK(e.line == i + 2);
      CHECK(e.field == f.name);
      CHECK_THAT(e.what, Catch::Contains("field '" + std::string(f.name) + "': "));
      ++fields;
    }
  }
  CHECK(seen.size() == kNumEventTypes);
  CHECK(fields > 100);
}

TEST_CASE("a missing required field of any event type is reported on that field", "[reader][desc]") {
  const std::vector<std::string> lines = valid_lines();
  std::set<EventType> seen;
  size_t required = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const ojson event = ojson::parse(lines[i]);
    const EventDesc* d = event_desc_by_name(event["type"].get<std::string>());
    if (!seen.insert(d->type).second) continue;
    std::vector<std::string> trace(lines.begin(), lines.begin() + std::ptrdiff_t(i) + 1);
    for (const FieldDesc& f : d->fields) {
      if (f.need != Need::Required) continue;
      INFO(lines[i] << " field " << f.name);
      ojson bad = event;
      bad.erase(std::string(f.name));
      trace.back() = bad.dump();
      Failure e = read_failure(trace);
      CHECK(e.line == i + 2);
      CHECK(e.field == f.name);
      CHECK_THAT(e.what, Catch::Contains("missing required field of "));
      ++required;
    }
  }
  CHECK(required > 40);
}
