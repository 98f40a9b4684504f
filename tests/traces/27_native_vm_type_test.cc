// "vm_type":"native" in vm_create: the trace itself says its guest-linear
// accesses are a bare-metal program's, replayed with 1D walks of the guest
// tables (as config guest.native does), and the binary format keeps it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_util.h"

using namespace septsim::test;

namespace {

// VM 0 (one vCPU reading 8 pages of a 4-level guest mapping) with `vm_type`
// spliced in, beside a default VM 1 that does nothing (the stats file lists
// the VMs and their types when there are several).
std::string trace(const std::string& vm_type_field) {
  return write_trace("{\"type\":\"vm_create\",\"vcpus\":1" + vm_type_field + "}\n" +
                     R"({"type":"vm_create","vm":1,"vcpus":1}
{"type":"memslot_add","slot":0,"gpa":"0x0","size":"0x2000000","backing":"4k"}
{"type":"guest_pt_pool","gpa":"0x1000000","size":"0x1000000"}
{"type":"guest_map","cr3":"0x1000000","gva":"0x0","gpa":"0x0","size":"0x800000","page":"4k"}
{"type":"set_cr3","vcpu":0,"cr3":"0x1000000"}
{"type":"access","vcpu":0,"gva":"0x0","op":"r","count":8,"stride":"4K"}
)");
}

nlohmann::json replay(const std::string& path, const std::string& extra = "") {
  auto stats = temp_dir() / "s.json";
  auto r = run_septsim("replay " + path + " --check -q --stats " + stats.string() + " " + extra);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(slurp(stats));
}

unsigned long long counter(const nlohmann::json& j, const std::string& name) {
  return j["stats"]["total"]["counters"].value(name, 0ull);
}

}  // namespace

TEST_CASE("a trace whose vm_create says native replays 1D walks with no EPT references", "[replay][native]") {
  const auto native = replay(trace(R"(,"vm_type":"native")"));
  const auto virt = replay(trace(""));
  CHECK(native["vms"][0]["vm_type"] == "native");
  CHECK(native["vms"][1]["vm_type"] == "default");  // the other VM follows the config
  CHECK(virt["vms"][0]["vm_type"] == "default");
  // The same accesses miss the same TLBs: as many walks either way, native
  // ones 1D (SDM 4.5: one reference per guest level, no EPT), the others 2D.
  CHECK(counter(native, "vcpu0.walk.walks_native") == counter(virt, "vcpu0.walk.walks_2d"));
  CHECK(counter(native, "vcpu0.walk.walks_2d") == 0);
  CHECK(counter(native, "vcpu0.walk.refs.ept") == 0);
  CHECK(counter(virt, "vcpu0.walk.refs.ept") > 0);
  CHECK(counter(native, "vcpu0.walk.refs.guest") == counter(virt, "vcpu0.walk.refs.guest"));
}

TEST_CASE("vm_type native in the trace gives what config guest.native gives", "[replay][native]") {
  const auto by_trace = replay(trace(R"(,"vm_type":"native")"));
  const auto by_config = replay(trace(""), "--set guest.native=true");
  for (const char* c : {"vcpu0.walk.walks_native", "vcpu0.walk.refs.guest", "vcpu0.walk.refs.ept", "vcpu0.cycles"})
    CHECK(counter(by_trace, c) == counter(by_config, c));
}

TEST_CASE("vm_type native survives the binary format and back", "[replay][native][binary]") {
  const std::string in = trace(R"(,"vm_type":"native")");
  const auto d = temp_dir();
  const std::string b = (d / "n.sstb").string(), j = (d / "n.jsonl").string();
  REQUIRE(run_septsim("convert " + in + " " + b).exit_code == 0);
  REQUIRE(run_septsim("convert " + b + " " + j).exit_code == 0);
  CHECK(slurp(j).find(R"("vm_type":"native")") != std::string::npos);
  CHECK(replay(b)["vms"][0]["vm_type"] == "native");
}

TEST_CASE("a native VM refuses the TD-only fields", "[replay][native]") {
  auto r = run_septsim("replay " + write_trace(R"({"type":"vm_create","vcpus":1,"vm_type":"native","gpaw":48}
)") + " -q");
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("only a TD VM") != std::string::npos);
}
