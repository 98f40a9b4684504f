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

TEST_CASE("the PAMT.ADD and PAMT.REMOVE guesses stay below the bound the Dynamic PAMT lock statistics put on them") {
  // Rick Edgecombe, "Re: [PATCHv2 00/12] TDX: Enable Dynamic PAMT", kvm@
  // 2025-08-11: 701 + 53 contentions of the global lock held across one
  // PAMT.ADD or PAMT.REMOVE, 2 ms of wait in all. A waiter waits at least the
  // rest of the hold it finds, whose mean is at least half the mean hold, so
  // the mean hold is at most twice the mean wait.
  const double wait_ns_per_contention = 2e6 / (701 + 53);
  const Cycles bound = cycles_of_ns(2 * wait_ns_per_contention);  // 12732
  CHECK(default_latency(seam::Leaf::TDH_PHYMEM_PAMT_ADD) < bound);
  CHECK(default_latency(seam::Leaf::TDH_PHYMEM_PAMT_REMOVE) < bound);
}
