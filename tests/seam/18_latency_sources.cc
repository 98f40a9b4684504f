// The latency.seam.* defaults that rest on a published figure, each golden
// worked out here from that figure at the model's 2.4 GHz (docs/design.md,
// "SEAMCALL latencies"), not read back from model/config.cc.
#include <catch2/catch.hpp>

#include "model/config.h"
#include "seam/seam_timing.h"

using namespace septsim;

namespace {

constexpr double kCyclesPerNs = 2.4;

Cycles cycles_of_ns(double ns) { return Cycles(ns * kCyclesPerNs + 0.5); }

Cycles default_latency(seam::Leaf leaf) {
  const model::Config cfg;
  return seam::SeamTiming::from(cfg).of(u16(leaf));
}

}  // namespace

TEST_CASE("TDH.MR.EXTEND costs a sixteenth of the ~1 ms Sean Christopherson gives for measuring one 4 KiB page") {
  // "[PATCH v4 16/28] KVM: TDX: ADD pages to the TD image while populating
  // mirror EPT entries", kvm@ 2025-10-30: measuring a page takes typically 16
  // SEAMCALLs (one TDH.MR.EXTEND per 256 bytes) and "~1ms".
  const double calls_per_page = 4096.0 / 256.0;
  const double ns_per_call = 1e6 / calls_per_page;  // 62500 ns
  CHECK(default_latency(seam::Leaf::TDH_MR_EXTEND) == cycles_of_ns(ns_per_call));
}
