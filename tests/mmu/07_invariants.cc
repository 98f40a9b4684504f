// check_invariants(): clean after real scenarios (the other files check
// that too), and each rule catches a deliberately corrupted state.
#include "mmu/spte.h"
#include "mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

// One 4K mapping at 0x5000 and one 2M mapping at 1G.
void populate(Vm& vm) {
  vm.kvm->create_memslot(slot(0, 0, 2 * MiB));
  vm.kvm->create_memslot(slot(1, 1 * GiB, 4 * MiB, HostBacking::Thp2M));
  vm.access(0x5000, AccessType::Write);
  vm.access(1 * GiB, AccessType::Write);
  vm.require_clean();
}

// Host-physical address of the level-2 entry (PDE) for gpa.
Hpa pde_of(const Vm& vm, Gpa gpa) {
  Hpa table = vm.vcpu.eptp().root;
  for (int level = 4; level > PG_LEVEL_2M; --level)
    table = ept::entry_addr(vm.mem.read64(table + pt_index(gpa, level) * 8));
  return table + pt_index(gpa, PG_LEVEL_2M) * 8;
}

}  // namespace

TEST_CASE("A bogus leaf written into a table breaks rules 8 and 12", "[mmu]") {
  Vm vm;
  populate(vm);
  Hpa leaf_table = vm.lookup(0x5000).sptep & ~0xfffull;
  vm.mem.write64(leaf_table + 7 * 8, make_spte(PG_LEVEL_4K, 0x12345, true, true));
  auto v = vm.violations();
  REQUIRE(has_rule(v, 8));   // gfn 7 is backed by no host page, pfn 0x12345 is not its
  REQUIRE(has_rule(v, 12));  // pages_4k says 1, the tables hold 2
  REQUIRE_FALSE(has_rule(v, 6));
}

TEST_CASE("An entry the CPU sees present without KVM's present bit breaks rule 6", "[mmu]") {
  Vm vm;
  populate(vm);
  Hpa leaf_table = vm.lookup(0x5000).sptep & ~0xfffull;
  vm.mem.write64(leaf_table + 9 * 8, ept::kRwx | shadow_memtype_wb | (0x777ull << 12));
  auto v = vm.violations();
  REQUIRE(has_rule(v, 6));
  REQUIRE(v.size() == 1);
}

TEST_CASE("W without MMU-writable breaks rule 7", "[mmu]") {
  Vm vm;
  populate(vm);
  EptLookup w = vm.lookup(0x5000);
  vm.mem.write64(w.sptep, w.spte & ~EPT_SPTE_MMU_WRITABLE);
  REQUIRE(has_rule(vm.violations(), 7));
}

TEST_CASE("A huge leaf over 4K host pages breaks rule 13", "[mmu]") {
  Vm vm;
  populate(vm);
  // Replace the table mapping [0, 2M) in the 4K slot by a 2M leaf built
  // from its one 4K leaf: the table becomes unreachable too (rule 1).
  vm.mem.write64(pde_of(vm, 0x5000), make_huge_spte(vm.lookup(0x5000).spte, PG_LEVEL_2M));
  auto v = vm.violations();
  REQUIRE(has_rule(v, 13));
  REQUIRE(has_rule(v, 1));
  REQUIRE(has_rule(v, 12));
}

TEST_CASE("A stale page counter breaks rule 12", "[mmu]") {
  Vm vm;
  populate(vm);
  ++vm.stats.gauge("kvm.pages_2m");
  auto v = vm.violations();
  REQUIRE(v.size() == 1);
  REQUIRE(v[0].rfind("rule 12: pages_2m is 2 but 1 present leaves", 0) == 0);
}

TEST_CASE("A leaf left behind outside every memslot breaks rule 8", "[mmu]") {
  Vm vm;
  populate(vm);
  // Slot 0 ends at 2M; a 2M leaf for [2M, 4M) maps no memslot.
  vm.mem.write64(pde_of(vm, 2 * MiB), make_huge_spte(vm.lookup(0x5000).spte, PG_LEVEL_2M));
  REQUIRE(has_rule(vm.violations(), 8));
}
