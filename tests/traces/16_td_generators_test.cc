// `septsim gen td-boot` and `septsim gen conversions`: TD traces from the TD
// VM events that replay with every invariant intact.
#include <catch2/catch.hpp>

#include "cli_util.h"
#include "collect_sink.h"
#include "traces/generators.h"

using namespace septsim;
using namespace septsim::traces;
using namespace septsim::test;

namespace {

Collect generated(const std::string& name, u32 vcpus, u64 seed, u64 count = 50) {
  GenOptions o;
  o.vcpus = vcpus;
  o.size = 8u << 20;
  o.seed = seed;
  o.count = count;
  Collect c;
  generate(name, o, c);
  return c;
}

size_t count_if(const Collect& c, EventType t, const std::function<bool(const Event&)>& pred) {
  size_t n = 0;
  for (const auto& e : c.of(t)) n += pred(e);
  return n;
}

constexpr Gpa kSharedBit = Gpa{1} << 47;

}  // namespace

TEST_CASE("generated TD traces replay with septsim replay --check, exit 0", "[gen][cli]") {
  for (const char* name : {"td-boot", "conversions"})
    for (unsigned vcpus : {1u, 3u}) {
      INFO(name << " with " << vcpus << " vCPUs");
      auto dir = temp_dir();
      std::string out = (dir / "t.jsonl").string();
      REQUIRE(run_septsim(std::string("gen ") + name + " -o " + out + " --size 8M --count 40 --seed 5 --vcpus " +
                          std::to_string(vcpus))
                  .exit_code == 0);
      auto r = run_septsim("replay " + out + " --check -q");
      INFO(r.err);
      CHECK(r.exit_code == 0);
      CHECK(r.err.empty());
    }
}

TEST_CASE("td-boot: measured image, finalize, 2M and 4K accepts by every vCPU, teardown last", "[gen]") {
  Collect c = generated("td-boot", 2, 1);
  REQUIRE(!c.events.empty());
  CHECK(c.events[0].type == EventType::VmCreate);
  CHECK(c.events[0].tdx_vm);
  auto image = c.of(EventType::TdInitMemRegion);
  REQUIRE(image.size() == 1);
  CHECK(image[0].measure);
  CHECK(c.count(EventType::TdFinalize) == 1);
  // 8M: the three 2M regions after the image's are accepted, split over both vCPUs.
  size_t huge = count_if(c, EventType::Accept, [](const Event& e) { return e.tdx.level == 1; });
  size_t small_regions = count_if(c, EventType::Accept, [](const Event& e) { return e.tdx.level == 0 && e.gpa % (2u << 20) == 0; });
  CHECK(huge + small_regions == 3);
  CHECK(count_if(c, EventType::Accept, [](const Event& e) { return e.vcpu == 1; }) > 0);
  CHECK(c.events.back().type == EventType::TdTeardown);
  auto phases = c.of(EventType::Phase);
  REQUIRE(phases.size() == 2);
  CHECK(phases[0].name == "boot");
  CHECK(phases[1].name == "run");
}

TEST_CASE("conversions: MapGPA both ways, memory attributes both ways, COUNT rounds", "[gen]") {
  Collect c = generated("conversions", 2, 3, 40);
  CHECK(c.events[0].tdx.dynamic_pamt);
  size_t to_shared = count_if(c, EventType::MapGpa, [](const Event& e) { return (e.gpa & kSharedBit) != 0; });
  size_t to_private = count_if(c, EventType::MapGpa, [](const Event& e) { return (e.gpa & kSharedBit) == 0; });
  size_t attr_shared = count_if(c, EventType::SetMemoryAttributes, [](const Event& e) { return !e.make_private; });
  size_t attr_private = count_if(c, EventType::SetMemoryAttributes, [](const Event& e) { return e.make_private; });
  CHECK(to_shared == to_private);
  CHECK(attr_shared == attr_private);
  CHECK(to_shared + attr_shared == 40);
  CHECK(to_shared > 0);
  CHECK(attr_shared > 0);
  // The shared alias is used between the two conversions.
  CHECK(count_if(c, EventType::Access, [](const Event& e) { return (e.addr & kSharedBit) != 0; }) == 2 * to_shared + attr_shared);
}

TEST_CASE("TD generators: the same seed gives the same trace, another seed another", "[gen]") {
  for (const char* name : {"td-boot", "conversions"}) {
    INFO(name);
    auto lines = [&](u64 seed) {
      std::vector<std::string> out;
      for (const auto& e : generated(name, 2, seed).events)
        out.push_back(std::to_string(int(e.type)) + " " + std::to_string(e.gpa) + " " + std::to_string(e.addr));
      return out;
    };
    CHECK(lines(9) == lines(9));
    CHECK(lines(9) != lines(10));
  }
}

TEST_CASE("TD generators refuse a size with no room after the image's 2M region", "[gen]") {
  GenOptions o;
  o.size = 2u << 20;
  Collect c;
  CHECK_THROWS_WITH(generate("td-boot", o, c), Catch::Contains("--size of a TD must be 4M"));
}
