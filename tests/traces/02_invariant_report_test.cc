// The stale-TLB rule of --check: a TLB entry that outlives the EPT mapping it
// was filled from (a missing flush) is reported; a correct one is not.
#include <catch2/catch.hpp>

#include "mmu/kvm.h"
#include "model/vcpu.h"
#include "traces/invariant_report.h"

using namespace septsim;

namespace {

struct Vm {
  model::Config cfg;
  model::StatsRegistry stats;
  model::Timing timing = model::Timing::from(cfg);
  model::PhysMem mem{1ull << 34};
  mmu::Kvm kvm{cfg, timing, mem, stats};
  std::unique_ptr<model::Vcpu> vcpu;
  Vm() {
    static int n = 0;
    vcpu = std::make_unique<model::Vcpu>(("stale_vcpu" + std::to_string(n++)).c_str(), 0, cfg, timing, stats, kvm);
    kvm.add_vcpu(*vcpu);
    kvm.create_memslot({0, 0, 1ull << 30, 0, mmu::HostBacking::Page4K, 0});
    kvm.service_requests(*vcpu, 0);  // loads the root, as before the first VM entry
    REQUIRE(vcpu->eptp().root != 0);
  }
  // Maps `gpa` through the real fault path and returns the HPA it got.
  Hpa map(Gpa gpa) {
    kvm.handle_ept_violation(*vcpu, gpa, ept::qual::kWrite);
    return kvm.host_hpa_for_gpa(gpa);
  }
  void cache(Gpa gpa, Hpa frame, u8 perms) {
    model::Translation t;
    t.frame = frame, t.level = 1, t.perms = perms, t.dirty = true;
    vcpu->tlb().fill(model::TranslationKind::GuestPhysical, vcpu->context(), gpa, t);
  }
};

}  // namespace

TEST_CASE("a TLB entry that matches the EPT is not stale", "[invariants]") {
  Vm vm;
  Hpa hpa = vm.map(0x5000);
  vm.cache(0x5000, hpa, model::kPermRead | model::kPermWrite | model::kPermExec);
  CHECK(traces::InvariantReport::stale_tlb_entries(*vm.vcpu, vm.mem).empty());
}

TEST_CASE("a TLB entry for a GPA the EPT no longer maps is stale", "[invariants]") {
  Vm vm;
  Hpa hpa = vm.map(0x5000);
  vm.cache(0x7000, hpa, model::kPermRead);  // never mapped
  auto v = traces::InvariantReport::stale_tlb_entries(*vm.vcpu, vm.mem);
  REQUIRE(v.size() == 1);
  CHECK(v[0].find("stale-tlb") != std::string::npos);
  CHECK(v[0].find("gpa 0x7000") != std::string::npos);
}

TEST_CASE("a TLB entry pointing at another frame is stale", "[invariants]") {
  Vm vm;
  Hpa hpa = vm.map(0x5000);
  vm.cache(0x5000, hpa + 0x1000, model::kPermRead);
  CHECK(traces::InvariantReport::stale_tlb_entries(*vm.vcpu, vm.mem).size() == 1);
}

TEST_CASE("a writable TLB entry over a write-protected EPT leaf is stale", "[invariants]") {
  Vm vm;
  Hpa hpa = vm.map(0x5000);
  vm.cache(0x5000, hpa, model::kPermRead | model::kPermWrite);
  // Dirty logging write-protects the leaf; the MMU flushes, so nothing is stale...
  vm.kvm.set_memslot_flags(0, mmu::KVM_MEM_LOG_DIRTY_PAGES);
  CHECK(traces::InvariantReport::stale_tlb_entries(*vm.vcpu, vm.mem).empty());
  // ...but the same writable entry put back without a flush is caught.
  vm.cache(0x5000, hpa, model::kPermRead | model::kPermWrite);
  CHECK(traces::InvariantReport::stale_tlb_entries(*vm.vcpu, vm.mem).size() == 1);
}
