// The hardware walker reads the Secure EPT like any EPT: private GPAs through
// the SEPT root, shared ones through the shared EPTP (3.2, 8).
#include <catch2/catch.hpp>

#include "tests/model/walk/walk_env.h"
#include "tests/seam/seam_env.h"

using namespace septsim;
using namespace septsim::seamtest;


TEST_CASE("a private GPA is mapped only after AUG + ACCEPT, PENDING and BLOCKED are EPT violations", "[seam]") {
  SeamEnv env;
  REQUIRE(env.finalize() == TDX_SUCCESS);
  env.tables_for(kGpa, 0);
  REQUIRE(env.aug(kGpa, 0) == TDX_SUCCESS);
  const Td& td = env.state();
  // Copy the SEPT into the walker's memory is not needed: build the walker on env.mem.
  model::Config cfg;
  model::StatsRegistry stats;
  model::Timing timing = model::Timing::from(cfg);
  model::HostMemoryTarget target(walktest::unique_name("sept_mem").c_str(), env.mem, timing);
  model::PageWalker walker(walktest::unique_name("sept_walker").c_str(), cfg, timing, stats, "s");
  walker.mem.bind(target.socket);
  walktest::complete_binding(target, walker.mem);
  const ept::Eptp secure{td.sept->root(), td.ept_levels, false};
  const walktest::Ept shared(env.mem, 4);
  auto go = [&](Gpa gpa) {
    model::WalkRequest req;
    req.addr = gpa;
    req.eptp = shared.eptp();
    req.ctx.eptp = req.eptp.encode();
    req.secure_eptp = &secure;
    req.shared_bit = td.shared_bit();
    return walker.walk(req);
  };
  model::WalkResult r = go(kGpa);
  CHECK(r.outcome == model::WalkOutcome::EptViolation);  // PENDING
  CHECK(r.ept_refs == 4);
  REQUIRE(env.enter(0) == TDX_SUCCESS);
  REQUIRE(env.accept(0, kGpa, 0) == TDX_SUCCESS);
  r = go(kGpa + 0x123);
  REQUIRE(r.outcome == model::WalkOutcome::Ok);
  const Hpa page = septe::hpa_of(env.mem.read64(td.sept->walk(kGpa, 0).entry_hpa));
  CHECK(r.t.frame == page);
  CHECK(r.t.perms == 7);
  CHECK(go(kGpa + 0x1000).outcome == model::WalkOutcome::EptViolation);  // FREE
  REQUIRE(env.block(kGpa, 0) == TDX_SUCCESS);
  CHECK(go(kGpa).outcome == model::WalkOutcome::EptViolation);  // BLOCKED
  // A shared GPA walks the (empty) shared EPT, not the SEPT.
  r = go(kGpa | (1ull << 47));
  CHECK(r.outcome == model::WalkOutcome::EptViolation);
  CHECK(r.ept_refs == 1);
}
