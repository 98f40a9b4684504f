// The TD rules of the invariant checker, each broken on purpose.
#include <catch2/catch.hpp>

#include "mmu/tdx_vm.h"
#include "seam/sept_entry.h"
#include "seam/tdx_module.h"
#include "tests/mmu/mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

bool has(const std::vector<std::string>& v, const std::string& rule) {
  const std::string prefix = "rule " + rule + ":";
  for (const auto& s : v)
    if (s.rfind(prefix, 0) == 0) return true;
  return false;
}

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
    vm.kvm->td_accept(0, 0x300000, 0, &st);
    REQUIRE(st == seam::TDX_SUCCESS);
  }
  TdxVm& td() { return *vm.kvm->tdx_vm(); }
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

TEST_CASE("rule 15: a private page the Secure EPT does not map the same way is caught", "[tdx]") {
  Booted b;
  PrivatePage& p = b.td().private_pages().at(0x300);
  const Hpa real = p.hpa;
  p.hpa = real + 0x1000000;
  auto v = b.vm.violations();
  CHECK(has(v, "15"));
  CHECK(has(v, "16"));  // and the real leaf is no longer the VM's
  INFO(v.front());
  CHECK(v.front().find("0x300000") != std::string::npos);
  p.hpa = real;
  b.vm.require_clean();
  // A leaf the module blocked behind KVM's back.
  const Hpa e = b.sept_leaf(0x300000);
  const u64 old = b.vm.mem.read64(e);
  b.vm.mem.write64(e, seam::septe::make_leaf(seam::septe::SeptState::BLOCKED, real));
  CHECK(has(b.vm.violations(), "15"));
  b.vm.mem.write64(e, old);
  b.vm.require_clean();
}

TEST_CASE("rule 16: a private page dropped from the VM while the Secure EPT maps it is caught", "[tdx]") {
  Booted b;
  const PrivatePage saved = b.td().private_pages().at(0x100);
  b.td().private_pages().erase(0x100);
  auto v = b.vm.violations();
  REQUIRE(has(v, "16"));
  CHECK(v.front().find("0x100000") != std::string::npos);
  b.td().private_pages()[0x100] = saved;
  b.vm.require_clean();
}

TEST_CASE("content: a mapped private page whose content changes without removal is caught", "[tdx]") {
  Booted b;
  const Hpa hpa = b.td().private_pages().at(0x100).hpa;
  CHECK(b.vm.mem.tag(hpa >> kPageShift) == 0x77);
  b.vm.mem.set_tag(hpa >> kPageShift, 0x78);
  auto v = b.vm.violations();
  REQUIRE(has(v, "content"));
  CHECK(v.front().find("0x77") != std::string::npos);
}

TEST_CASE("pamt: a private page whose PAMT entry is not its TD's is caught", "[tdx]") {
  Booted b;
  b.td().private_pages().at(0x300).level = PG_LEVEL_2M;  // the 2M entry is NDA
  auto v = b.vm.violations();
  CHECK(has(v, "pamt"));
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
  REQUIRE(!b.td().sept_tables().empty());
  const Hpa table = b.td().sept_tables().begin()->second;
  // Pretend the page went back to the host: its PAMT entry is cleared behind the TD's back.
  auto& pamt = const_cast<seam::Pamt&>(b.tdx.pamt());
  const seam::PamtEntry saved = pamt.get(table, PG_LEVEL_4K);
  pamt.set(table, PG_LEVEL_4K, seam::PamtEntry{});
  CHECK(has(b.vm.violations(), "18"));
  pamt.set(table, PG_LEVEL_4K, saved);
  b.vm.require_clean();
}
