// Walker throughput (hidden; run with: test_model "[walkbench]").
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "walk_env.h"

using namespace septsim;
using namespace septsim::walktest;

TEST_CASE("Walker throughput", "[.][walkbench]") {
  Env env(4);
  Guest g(env.mem, env.ept, 4);
  constexpr Gva kV = 0x00007fabc0000000ull;
  constexpr unsigned kPages = 4096;
  for (unsigned i = 0; i < kPages; ++i) {
    g.map(kV + u64(i) * 0x1000, 0x80000000ull + u64(i) * 0x1000);
    env.ept.map(0x80000000ull + u64(i) * 0x1000, 0x4000000000ull + u64(i) * 0x1000);
  }
  auto run = [&](const char* what, bool cold, unsigned n) {
    WalkRequest req = env.gva_req(g, kV);
    u64 refs = 0;
    auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    for (unsigned i = 0; i < n; ++i) {
      if (cold) env.walker->psc().invalidate_all();
      req.addr = kV + u64(i % kPages) * 0x1000;
      refs += env.walker->walk(req).refs();
    }
    const double cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-10s %8.2f M walks/s (%.2f M per CPU second), %.1f refs/walk\n", what, n / s / 1e6, n / cpu / 1e6,
                double(refs) / n);
    return n / cpu;
  };
  run("warm-up", false, 200000);
  double cold = run("2D cold", true, 2000000);
  run("2D warm", false, 2000000);
  CHECK(cold > 0);
}
