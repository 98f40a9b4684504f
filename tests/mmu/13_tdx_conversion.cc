// Private <-> shared conversion of a TD's memory (KVM_SET_MEMORY_ATTRIBUTES
// and MapGPA), the removal sequence it drives, and KVM_EXIT_MEMORY_FAULT.
#include <catch2/catch.hpp>

#include "mmu/tdx_vm.h"
#include "seam/sept_entry.h"
#include "seam/tdx_module.h"
#include "tests/mmu/mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

constexpr Gpa kShared = 1ull << 47;

struct Conv {
  // `huge`: mmu.tdx_huge_pages = rfc-v1 (a 2M ACCEPT maps 2M); else the merged kernel's 4K.
  explicit Conv(bool dynamic = false, bool huge = false)
      : vm({{"host.mem_gib", "8"},
            {"seam.dynamic_pamt", dynamic ? "true" : "false"},
            {"mmu.tdx_huge_pages", huge ? "rfc-v1" : "off"}},
           8 * GiB),
        tdx(unique_tdx_name().c_str(), vm.cfg, vm.mem, vm.stats) {
    vm.kvm->create_memslot(slot(0, 0, 64 * MiB, HostBacking::Thp2M));
    vm.kvm->create_td(tdx, TdxVmParams{}, {nullptr});
    vm.kvm->td_finalize();
    for (Gpa g : {0x300000ull, 0x301000ull}) {
      u64 st = 0;
      vm.kvm->td_accept(0, g, TdxLevel{0}, &st);
      REQUIRE(st == seam::TDX_SUCCESS);
    }
  }
  TdxVm& td() { return *vm.kvm->tdx_vm(); }
  // The guest ACCEPTs at `tdx_level` (1: 2M), which faults the page in;
  // returns the frame the mirror maps.
  Hpa accept(Gpa gpa, int tdx_level) {
    u64 st = 0;
    vm.kvm->td_accept(0, gpa, TdxLevel{tdx_level}, &st);
    REQUIRE(st == seam::TDX_SUCCESS);
    return vm.kvm->private_mapping(gpa)->hpa;
  }
  void fault(Gpa gpa) { vm.kvm->handle_ept_violation(vm.vcpu, gpa, ept::access_qual(AccessType::Write)); }
  seam::septe::SeptState state(Gpa gpa) {
    return seam::septe::state_or_free(vm.mem.read64(td().td()->sept->walk(gpa, 0).entry_hpa));
  }
  u64 stat(const char* n) { return vm.stat(n); }

  Vm vm;
  seam::TdxModule tdx;
};

}  // namespace

TEST_CASE("private -> shared removes the page: BLOCK, TRACK, kick, REMOVE, WBINVD", "[tdx]") {
  for (bool dynamic : {false, true}) {
    INFO("dynamic PAMT " << dynamic);
    Conv c(dynamic);
    const Hpa hpa = c.vm.kvm->private_mapping(0x300000)->hpa;
    const u64 calls = c.stat("kvm.tdx.seamcalls");
    c.vm.kvm->set_memory_attributes(0x300000, kPageSize, false);
    CHECK(!c.vm.kvm->private_mapping(0x300000));
    CHECK(c.vm.kvm->private_mapping(0x301000).has_value());
    CHECK(c.stat("kvm.tdx.private_removed") == 1);
    CHECK(c.stat("kvm.tdx.kicks") == 1);
    // BLOCK, TRACK, VP.ENTER, REMOVE, WBINVD (+ PAMT.REMOVE only when the region empties: it does not).
    CHECK(c.stat("kvm.tdx.seamcalls") - calls == 5);
    CHECK(c.state(0x300000) == seam::septe::SeptState::FREE);
    CHECK(c.tdx.pamt().get(hpa, PG_LEVEL_4K).pt == seam::PageType::PT_NDA);
    CHECK(!c.td().bugged());
    c.vm.require_clean();

    // The guest touching it as private now is a KVM_EXIT_MEMORY_FAULT; as shared it is not.
    c.fault(0x300000);
    CHECK(c.stat("kvm.tdx.memory_fault_exits") == 1);
    CHECK(!c.vm.kvm->private_mapping(0x300000));
    c.fault(kShared | 0x300000);
    CHECK(c.stat("kvm.tdx.memory_fault_exits") == 1);
    // A shared access to memory still private is one.
    c.fault(kShared | 0x301000);
    CHECK(c.stat("kvm.tdx.memory_fault_exits") == 2);

    // MapGPA back to private: the next private fault AUGs a fresh PENDING page.
    c.vm.kvm->map_gpa(0, 0x300000, kPageSize);
    c.fault(0x300000);
    REQUIRE(c.vm.kvm->private_mapping(0x300000).has_value());
    CHECK(c.state(0x300000) == seam::septe::SeptState::PENDING);
    c.vm.require_clean();
    c.vm.kvm->td_teardown();
    c.vm.require_clean();
    CHECK(c.tdx.pamt().pair_bytes() == 0);
  }
}

TEST_CASE("MapGPA with the shared bit converts to shared", "[tdx]") {
  Conv c;
  c.vm.kvm->map_gpa(0, kShared | 0x300000, 2 * kPageSize);
  CHECK(c.td().mapped_private() == 0);
  CHECK(c.stat("kvm.tdx.private_removed") == 2);
  CHECK_THROWS_AS(c.vm.kvm->map_gpa(3, 0x300000, kPageSize), KvmError);
  CHECK_THROWS_AS(c.vm.kvm->set_memory_attributes(kShared, kPageSize, true), KvmError);
}

TEST_CASE("rfc-v1: converting a 4K piece of a private 2M page splits it (BLOCK, TRACK, DEMOTE) and removes only that piece",
          "[tdx]") {
  Conv c(false, true);
  u64 st = 0;
  c.vm.kvm->td_accept(0, 0x600000, TdxLevel{1}, &st);
  REQUIRE(st == seam::TDX_SUCCESS);
  REQUIRE(c.vm.kvm->private_mapping(0x600000));
  REQUIRE(c.vm.kvm->private_mapping(0x600000)->level == PG_LEVEL_2M);
  const Hpa base = c.vm.kvm->private_mapping(0x600000)->hpa;
  const u64 demotes = c.stat("seam.calls.tdh_mem_page_demote");
  c.vm.kvm->set_memory_attributes(0x601000, kPageSize, false);
  CHECK(c.stat("seam.calls.tdh_mem_page_demote") - demotes == 1);
  CHECK(!c.vm.kvm->private_mapping(0x601000));
  CHECK(c.stat("kvm.tdx.private_removed") == 1);
  // The other 511 pieces stay: same frames, now 4K, still accepted.
  for (Gpa g : {0x600000ull, 0x602000ull, 0x7ff000ull}) {
    INFO(g);
    const auto m = c.vm.kvm->private_mapping(g);
    REQUIRE(m);
    CHECK(m->level == PG_LEVEL_4K);
    CHECK(m->hpa == base + (g - 0x600000));
    CHECK(c.state(g) == seam::septe::SeptState::MAPPED);
  }
  CHECK(c.td().mapped_private() == 2 + 511);  // 0x300000, 0x301000 and the rest of the 2M page
  c.vm.require_clean();
  // The whole 2M range converts; back to private, but a mixed range maps at 4K only.
  c.vm.kvm->set_memory_attributes(0x600000, 2 * MiB, false);
  CHECK(!c.vm.kvm->private_mapping(0x600000));
  c.vm.require_clean();
  c.vm.kvm->set_memory_attributes(0x600000, 2 * MiB - kPageSize, true);
  c.vm.kvm->td_accept(0, 0x600000, TdxLevel{1}, &st);
  // The Secure EPT keeps the 4K table; the operand is the level the walk
  // reached (tdg_mem_page_accept.c, TDX module 1.5).
  CHECK(st == seam::with_operand(seam::TDX_PAGE_SIZE_MISMATCH, 1));
  c.vm.kvm->td_accept(0, 0x600000, TdxLevel{0}, &st);
  CHECK(st == seam::TDX_SUCCESS);
  REQUIRE(c.vm.kvm->private_mapping(0x600000));
  CHECK(c.vm.kvm->private_mapping(0x600000)->level == PG_LEVEL_4K);
  c.vm.require_clean();
}

TEST_CASE("rfc-v1 with Dynamic PAMT, a split's DEMOTE gets its R12/R13 pair from the VM's cache and the 4K pieces hold it",
          "[tdx][dpamt]") {
  Conv c(true, true);
  const Hpa base = c.accept(0x600000, 1);
  REQUIRE(!c.tdx.pamt().has_pair(base));  // a 2M page needs no PAMT_4K
  const u64 removes = c.stat("kvm.tdx.pamt_remove");
  c.vm.kvm->set_memory_attributes(0x601000, kPageSize, false);
  CHECK(c.stat("seam.calls.tdh_mem_page_demote") == 1);
  REQUIRE(c.tdx.pamt().has_pair(base));
  CHECK(c.tdx.pamt().pair(base)->page_count == 511);  // DEMOTE gave 512, REMOVE took one
  // Topped up before mmu_lock to the fill level, one pair taken.
  CHECK(c.td().cached_pamt_pages(c.td().vm_cache()) == 2 * PT64_ROOT_MAX_LEVEL - 2);  // v6's fill level
  CHECK(c.stat("kvm.tdx.pamt_remove") == removes);  // the other 511 pieces hold the pair
  CHECK(c.td().pamt_holders(base) == 511);
  REQUIRE(c.vm.kvm->private_mapping(0x7ff000));
  CHECK(c.vm.kvm->private_mapping(0x7ff000)->level == PG_LEVEL_4K);
  CHECK(!c.td().bugged());
  c.vm.require_clean();
  // The rest of the 2M range: the last piece's put removes the pair.
  c.vm.kvm->set_memory_attributes(0x600000, 2 * MiB, false);
  CHECK(c.stat("kvm.tdx.pamt_remove") == removes + 1);
  CHECK(!c.tdx.pamt().has_pair(base));
  c.vm.require_clean();
  c.vm.kvm->td_teardown();
  c.vm.require_clean();
  CHECK(c.tdx.pamt().pair_bytes() == 0);
}

TEST_CASE("rfc-v1 with Dynamic PAMT, a range cutting two private 2M pages splits both with one top-up", "[tdx][dpamt]") {
  Conv c(true, true);
  for (Gpa g : {0x600000ull, 0x800000ull}) c.accept(g, 1);
  const u64 topups = c.stat("kvm.tdx.pamt_cache_topups");
  c.vm.kvm->set_memory_attributes(0x7ff000, 2 * kPageSize, false);
  CHECK(c.stat("seam.calls.tdh_mem_page_demote") == 2);
  CHECK(c.stat("kvm.tdx.pamt_cache_topups") == topups + 1);
  // Dynamic PAMT v6 fills 2 x PT64_ROOT_MAX_LEVEL pages; two DEMOTE pairs
  // leave; the new tables' regions already hold pairs.
  CHECK(c.td().cached_pamt_pages(c.td().vm_cache()) == 2 * PT64_ROOT_MAX_LEVEL - 4);
  CHECK(c.stat("kvm.tdx.private_removed") == 2);
  CHECK(c.vm.kvm->private_mapping(0x7fe000));
  CHECK(c.vm.kvm->private_mapping(0x801000));
  c.vm.require_clean();  // no rule 21: the fill level covers both pairs
}

TEST_CASE("rfc-v1: after PROMOTE hands the pair back, promoted_pamt forgets the region's holders and caches the pair",
          "[tdx][dpamt]") {
  Conv c(true, true);
  const Hpa base = c.accept(0x600000, 1);
  // Split, and the converted piece back at the same frame: 512 equal children.
  c.vm.kvm->set_memory_attributes(0x601000, kPageSize, false);
  c.vm.kvm->set_memory_attributes(0x601000, kPageSize, true);
  REQUIRE(c.accept(0x601000, 0) == base + kPageSize);
  REQUIRE(c.td().pamt_holders(base) == 512);
  // The merge path's SEAMCALLs (written elsewhere): BLOCK the table entry, TRACK, kick, PROMOTE.
  const seam::TdHandle& h = c.td().handle();
  Cycles now = c.vm.kvm->latest_time();
  auto seamcall = [&](seam::Leaf leaf, seam::SeamcallRegs& regs) {
    const seam::Status s = c.tdx.seamcall(leaf, regs, 0, now);
    now += 100000;
    return s;
  };
  seam::SeamcallRegs r;
  r.rcx = seam::page_info(0x600000, 1), r.rdx = h.tdr;
  REQUIRE(seamcall(seam::Leaf::TDH_MEM_RANGE_BLOCK, r) == seam::TDX_SUCCESS);
  r = {};
  r.rcx = h.tdr;
  REQUIRE(seamcall(seam::Leaf::TDH_MEM_TRACK, r) == seam::TDX_SUCCESS);
  mmu::KvmOp exits;
  exits.start = now;
  c.td().td_exit(exits, 0);
  r = {};
  r.rcx = seam::page_info(0x600000, 1), r.rdx = h.tdr;
  REQUIRE(seamcall(seam::Leaf::TDH_MEM_PAGE_PROMOTE, r) == seam::TDX_SUCCESS);
  REQUIRE(!c.tdx.pamt().has_pair(base));
  REQUIRE((r.r12 && r.r13));  // the pair DEMOTE installed
  const size_t cached = c.td().cached_pamt_pages(c.td().vm_cache());  // 6: the split took a pair
  const u64 cache_pages = c.stat("kvm.tdx.pamt_cache_pages");
  c.td().promoted_pamt(c.td().vm_cache(), base, r.r12, r.r13);
  CHECK(c.td().pamt_holders(base) == 0);
  CHECK(c.td().cached_pamt_pages(c.td().vm_cache()) == cached + 2);
  CHECK(c.stat("kvm.tdx.pamt_cache_pages") == cache_pages + 2);
  CHECK(c.stat("seam.calls.tdh_phymem_pamt_remove") == 0);  // forgotten, not removed
}

TEST_CASE("a failed removal bugs the VM and keeps the page recorded", "[tdx]") {
  Conv c;
  // Something blocked the leaf behind KVM's back: BLOCK fails.
  const Hpa entry = c.td().td()->sept->walk(0x300000, 0).entry_hpa;
  const Hpa hpa = c.vm.kvm->private_mapping(0x300000)->hpa;
  c.vm.mem.write64(entry, seam::septe::make_leaf(seam::septe::SeptState::BLOCKED, hpa));
  c.vm.kvm->set_memory_attributes(0x300000, kPageSize, false);
  CHECK(c.td().bugged());
  CHECK(c.vm.kvm->private_mapping(0x300000).has_value());
  CHECK(c.stat("kvm.tdx.private_removed") == 0);
}

TEST_CASE("a shared fault maps the direct root at the shared alias, backed by the memslot", "[tdx]") {
  Conv c;
  c.vm.kvm->set_memory_attributes(0x800000, 2 * MiB, false);
  c.vm.enter();
  c.fault(kShared | 0x800000);
  CHECK(c.stat("kvm.tdx.memory_fault_exits") == 0);
  // A uniformly shared, THP-backed 2M frame maps huge in the direct root.
  EptLookup w = c.vm.lookup(kShared | 0x800000);
  REQUIRE(w.present);
  CHECK(w.level == PG_LEVEL_2M);
  CHECK((ept::entry_addr(w.spte)) == (c.vm.kvm->host_hpa_for_gpa(0x800000) & ~(2 * MiB - 1)));
  // Mixed: one private 4K page in the next 2M frame keeps its shared part 4K.
  c.vm.kvm->set_memory_attributes(0xa00000, 2 * MiB - kPageSize, false);
  c.fault(kShared | 0xa00000);
  w = c.vm.lookup(kShared | 0xa00000);
  REQUIRE(w.present);
  CHECK(w.level == PG_LEVEL_4K);
  c.vm.require_clean();
  // Back to private: the shared alias is zapped from the direct root.
  c.vm.kvm->set_memory_attributes(0x800000, 2 * MiB, true);
  CHECK(!c.vm.lookup(kShared | 0x800000).present);
  c.vm.require_clean();
}

TEST_CASE("deleting a TD's memslot removes its private pages through the mirror, fast zap leaves the mirror root",
          "[tdx]") {
  Conv c;
  c.vm.kvm->create_memslot(slot(1, 128 * MiB, 2 * MiB, HostBacking::Page4K));
  c.fault(128 * MiB);
  REQUIRE(c.vm.kvm->private_mapping(128 * MiB));
  const u64 removed = c.stat("kvm.tdx.private_removed");
  c.vm.kvm->delete_memslot(1);  // kvm_mmu_zap_all_fast for the direct roots
  CHECK(c.stat("kvm.tdx.private_removed") - removed == 1);
  CHECK(!c.vm.kvm->private_mapping(128 * MiB));
  CHECK(c.vm.kvm->private_mapping(0x300000).has_value());  // slot 0's pages stay
  CHECK(c.state(128 * MiB) == seam::septe::SeptState::FREE);
  c.vm.require_clean();
}
