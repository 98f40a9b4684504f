// The TD rules of the invariant checker, each broken on purpose.
#include <catch2/catch.hpp>

#include <optional>

#include "mmu/spte.h"
#include "mmu/tdx_vm.h"
#include "seam/sept_entry.h"
#include "seam/tdx_module.h"
#include "tests/mmu/mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

// The first violation of `rule`, "" if none.
std::string line(const std::vector<std::string>& v, const std::string& rule) {
  const std::string prefix = "rule " + rule + ":";
  for (const auto& s : v)
    if (s.rfind(prefix, 0) == 0) return s;
  return "";
}

bool has(const std::vector<std::string>& v, const std::string& rule) { return !line(v, rule).empty(); }

// A finalized TD with an image page at 1 MiB and an accepted AUG page at 3 MiB.
struct Booted {
  explicit Booted(bool dynamic = false)
      : vm({{"host.mem_gib", "8"}, {"seam.dynamic_pamt", dynamic ? "true" : "false"}}, 8 * GiB),
        tdx(unique_tdx_name().c_str(), vm.cfg, vm.mem, vm.stats) {
    vm.kvm->create_memslot(slot(0, 0, 64 * MiB, HostBacking::Page4K));
    vm.kvm->create_td(tdx, TdxVmParams{}, {nullptr});
    vm.kvm->td_init_mem_region(0x100000, kPageSize, 0x77, true);
    vm.kvm->td_finalize();
    u64 st = 0;
    vm.kvm->td_accept(0, 0x300000, TdxLevel{0}, &st);
    REQUIRE(st == seam::TDX_SUCCESS);
  }
  TdxVm& td() { return *vm.kvm->tdx_vm(); }
  // The violations seen while the mirror leaf of `gpa` holds `value` (or the
  // old value plus `delta`); the leaf is restored afterwards.
  std::vector<std::string> with_mirror_leaf(Gpa gpa, std::optional<u64> value, u64 delta = 0) {
    const Hpa sptep = vm.kvm->private_mapping(gpa)->sptep;
    const u64 old = vm.mem.read64(sptep);
    vm.mem.write64(sptep, value ? *value : old + delta);
    auto v = vm.violations();
    vm.mem.write64(sptep, old);
    vm.require_clean();
    return v;
  }
  Hpa sept_leaf(Gpa gpa) { return td().td()->sept->walk_to_leaf(gpa).entry_hpa; }

  Vm vm;
  seam::TdxModule tdx;
};

}  // namespace

TEST_CASE("a booted TD and its teardown satisfy every TD rule", "[tdx]") {
  for (bool dynamic : {false, true}) {
    Booted b(dynamic);
    b.vm.require_clean();
    b.vm.kvm->td_teardown();
    b.vm.require_clean();
  }
}

TEST_CASE("rule 15: a mirror leaf the Secure EPT does not map the same way is caught", "[tdx]") {
  Booted b;
  const PrivateMapping m = *b.vm.kvm->private_mapping(0x300000);
  auto v = b.with_mirror_leaf(0x300000, std::nullopt, 0x1000000);  // another pfn, behind KVM's back
  CHECK(has(v, "15"));
  CHECK(has(v, "16"));  // and the real leaf is no longer the VM's
  CHECK(line(v, "15").find("0x300000") != std::string::npos);
  // A leaf the module blocked behind KVM's back.
  const Hpa e = b.sept_leaf(0x300000);
  const u64 old = b.vm.mem.read64(e);
  b.vm.mem.write64(e, seam::septe::make_leaf(seam::septe::SeptState::BLOCKED, m.hpa));
  CHECK(has(b.vm.violations(), "15"));
  b.vm.mem.write64(e, old);
  b.vm.require_clean();
  // A Secure-EPT table entry that no longer points at the mirror table's external_spt.
  const Hpa nl = b.td().td()->sept->walk(0x300000, 1).entry_hpa;
  const u64 nl_old = b.vm.mem.read64(nl);
  REQUIRE(seam::septe::hpa_of(nl_old) == m.external_spt);
  b.vm.mem.write64(nl, nl_old + 0x1000);
  v = b.vm.violations();
  CHECK(line(v, "15").find("mirror table for gpa 0x200000 level 1") != std::string::npos);
  b.vm.mem.write64(nl, nl_old);
  b.vm.require_clean();
}

TEST_CASE("rule 16: a private page dropped from the mirror while the Secure EPT maps it is caught", "[tdx]") {
  Booted b;
  auto v = b.with_mirror_leaf(0x100000, SHADOW_NONPRESENT_VALUE);
  REQUIRE(has(v, "16"));
  CHECK(line(v, "16").find("0x100000") != std::string::npos);
}

TEST_CASE("rule 9: a mirror entry left FROZEN after its hook is caught", "[tdx]") {
  Booted b;
  auto v = b.with_mirror_leaf(0x300000, FROZEN_SPTE);
  CHECK(has(v, "9"));
  CHECK(has(v, "16"));  // the Secure EPT still maps what the mirror no longer shows
}

TEST_CASE("rule 19: a finalized TD with premapped pages never PAGE.ADDed is caught", "[tdx]") {
  Booted b;
  b.td().nr_premapped() = 1;
  auto v = b.vm.violations();
  REQUIRE(has(v, "19"));
  CHECK(line(v, "19").find("nr_premapped 1") != std::string::npos);
  b.td().nr_premapped() = 0;
  b.vm.require_clean();
}

TEST_CASE("rule 19: finalize is refused while nr_premapped is not 0", "[tdx]") {
  Vm vm({{"host.mem_gib", "8"}}, 8 * GiB);
  seam::TdxModule tdx(unique_tdx_name().c_str(), vm.cfg, vm.mem, vm.stats);
  vm.kvm->create_memslot(slot(0, 0, 64 * MiB, HostBacking::Page4K));
  vm.kvm->create_td(tdx, TdxVmParams{}, {nullptr});
  vm.kvm->tdx_vm()->nr_premapped() = 2;
  CHECK_THROWS_AS(vm.kvm->td_finalize(), KvmError);
  vm.kvm->tdx_vm()->nr_premapped() = 0;
  vm.kvm->td_finalize();
  CHECK(vm.kvm->tdx_vm()->finalized());
}

TEST_CASE("rule 22: a mirror leaf left for a gfn converted to shared is caught", "[tdx]") {
  Booted b;
  const PrivateMapping m = *b.vm.kvm->private_mapping(0x300000);
  const u64 spte = b.vm.mem.read64(m.sptep);
  b.vm.kvm->set_memory_attributes(0x300000, kPageSize, false);
  b.vm.require_clean();
  // What a shared-filtered zap that missed the mirror would leave.
  b.vm.mem.write64(m.sptep, spte);
  auto v = b.vm.violations();
  REQUIRE(has(v, "22"));
  CHECK(line(v, "22").find("mirror leaf for a shared gfn") != std::string::npos);
}

TEST_CASE("rule 22: a shared leaf left for a gfn converted to private is caught", "[tdx]") {
  Booted b;
  constexpr Gpa kShared = 1ull << 47;
  b.vm.kvm->set_memory_attributes(0x400000, kPageSize, false);
  b.vm.enter();  // loads the direct root
  b.vm.kvm->handle_ept_violation(b.vm.vcpu, kShared | 0x400000, ept::access_qual(AccessType::Write));
  const Hpa sptep = b.vm.lookup(kShared | 0x400000).sptep;
  const u64 spte = b.vm.mem.read64(sptep);
  REQUIRE(is_shadow_present_pte(spte));
  b.vm.kvm->set_memory_attributes(0x400000, kPageSize, true);
  b.vm.require_clean();
  b.vm.mem.write64(sptep, spte);  // the direct root kept its shared alias
  auto v = b.vm.violations();
  REQUIRE(has(v, "22"));
  CHECK(line(v, "22").find("shared leaf for a private gfn") != std::string::npos);
}

TEST_CASE("content: a mapped private page whose content changes without removal is caught", "[tdx]") {
  Booted b;
  const Hpa hpa = b.vm.kvm->private_mapping(0x100000)->hpa;
  CHECK(b.vm.mem.tag(hpa >> kPageShift) == 0x77);
  b.vm.mem.set_tag(hpa >> kPageShift, 0x78);
  auto v = b.vm.violations();
  REQUIRE(has(v, "content"));
  CHECK(line(v, "content").find("region at gpa 0x0 ") != std::string::npos);
  b.vm.mem.set_tag(hpa >> kPageShift, 0x77);
  b.vm.require_clean();
}

TEST_CASE("pamt: a private page whose PAMT entry is not its TD's is caught", "[tdx]") {
  Booted b;
  const Hpa hpa = b.vm.kvm->private_mapping(0x300000)->hpa;
  auto& pamt = const_cast<seam::Pamt&>(b.tdx.pamt());
  const seam::PamtEntry saved = pamt.get(hpa, PG_LEVEL_4K);
  pamt.set(hpa, PG_LEVEL_4K, seam::PamtEntry{});
  CHECK(has(b.vm.violations(), "pamt"));
  pamt.set(hpa, PG_LEVEL_4K, saved);
  b.vm.require_clean();
}

TEST_CASE("pamt-zero: Dynamic PAMT memory left with no TD is caught", "[tdx]") {
  Booted b(true);
  b.vm.kvm->td_teardown();
  b.vm.require_clean();
  // A PAMT pair installed for nobody after the TD is gone.
  const Hpa region = b.vm.mem.alloc(PG_LEVEL_2M) << kPageShift;
  seam::SeamcallTxn t;
  t.in.rax = seam::leaf_rax(seam::Leaf::TDH_PHYMEM_PAMT_ADD);
  t.in.rcx = region | 1;
  t.in.rdx = b.vm.mem.alloc() << kPageShift;
  t.in.r8 = b.vm.mem.alloc() << kPageShift;
  t.start = 1ull << 40;
  b.tdx.transport(t);
  REQUIRE(t.status() == seam::TDX_SUCCESS);
  CHECK(has(b.vm.violations(), "pamt-zero"));
}

TEST_CASE("rule 18: a Secure-EPT table page that left the TD while it lives is caught", "[tdx]") {
  Booted b;
  const Hpa table = b.vm.kvm->private_mapping(0x300000)->external_spt;
  REQUIRE(table != 0);
  // Pretend the page went back to the host: its PAMT entry is cleared behind the TD's back.
  auto& pamt = const_cast<seam::Pamt&>(b.tdx.pamt());
  const seam::PamtEntry saved = pamt.get(table, PG_LEVEL_4K);
  pamt.set(table, PG_LEVEL_4K, seam::PamtEntry{});
  CHECK(has(b.vm.violations(), "18"));
  pamt.set(table, PG_LEVEL_4K, saved);
  b.vm.require_clean();
}
