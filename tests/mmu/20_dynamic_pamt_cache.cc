// Dynamic PAMT page pairs for the TD hooks under mmu_lock (docs/design.md,
// docs/invariants.md rule 21): a private fault tops up its PAMT cache
// before the lock, the map path takes a pair from it for a 2 MiB region's
// first page (PAMT.ADD), the last page's removal returns it to the host
// (PAMT.REMOVE), and at teardown PAMT memory is back to zero.
#include <catch2/catch.hpp>
#include <set>

#include "mmu/spte.h"
#include "mmu/tdx_vm.h"
#include "seam/tdx_module.h"
#include "tests/mmu/mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

// Dynamic PAMT v6 (tdx_topup_external_cache): PT64_ROOT_MAX_LEVEL pairs,
// whatever the TD's EPT depth (the root needs none, the guest page one).
constexpr size_t kCachePages = 2 * PT64_ROOT_MAX_LEVEL;
// mmu.tdx_dpamt_series=rfc-v5: a pair for the guest page and one per table
// level below the root of a 4-level EPT.
constexpr size_t kRfcV5CachePages = 2 * 4;

struct DpamtTd {
  // `huge`: mmu.tdx_huge_pages (rfc-v1 for the DEMOTE/PROMOTE tests).
  explicit DpamtTd(const char* cache_mode = "vcpu", const char* huge = "off", const char* series = "v6")
      : vm({{"host.mem_gib", "8"},
            {"seam.dynamic_pamt", "true"},
            {"mmu.tdx_pamt_cache", cache_mode},
            {"mmu.tdx_huge_pages", huge},
            {"mmu.tdx_dpamt_series", series}},
           8 * GiB),
        tdx(unique_tdx_name().c_str(), vm.cfg, vm.mem, vm.stats) {
    vm.kvm->create_memslot(slot(0, 0, 64 * MiB, HostBacking::Thp2M));
    vm.kvm->create_td(tdx, TdxVmParams{}, {nullptr});
    vm.kvm->td_finalize();
  }
  void fault(Gpa gpa) { vm.kvm->handle_ept_violation(vm.vcpu, gpa, ept::access_qual(AccessType::Write)); }
  TdxVm& td() { return *vm.kvm->tdx_vm(); }
  // The guest ACCEPTs at 2M, which AUGs a 2M page; returns its frame.
  Hpa accept_2m(Gpa gpa) {
    u64 st = 0;
    vm.kvm->td_accept(0, gpa, TdxLevel{1}, &st);
    REQUIRE(st == seam::TDX_SUCCESS);
    const auto big = vm.kvm->private_mapping(gpa);
    REQUIRE((big && big->level == PG_LEVEL_2M));
    return big->hpa;
  }
  u64 stat(const char* name) const { return vm.stat(name); }

  Vm vm;
  seam::TdxModule tdx;
};

}  // namespace

TEST_CASE("a private fault takes the PAMT pair of a new 2M region from its cache, topped up before mmu_lock",
          "[tdx][dpamt]") {
  DpamtTd t;
  REQUIRE(t.td().cached_pamt_pages(0) == 0);
  const u64 adds = t.stat("kvm.tdx.pamt_add");
  t.fault(0x200000);  // a new 2M host page: its region needs a pair
  CHECK(t.stat("kvm.tdx.pamt_cache_topups") == 1);
  CHECK(t.td().cached_pamt_pages(0) == kCachePages - 2);
  CHECK(t.stat("kvm.tdx.pamt_cache_pages") == kCachePages - 2);
  CHECK(t.stat("kvm.tdx.pamt_add") == adds + 1);
  t.fault(0x201000);  // same region: the refcount goes 1 -> 2, no SEAMCALL, no pair
  CHECK(t.stat("kvm.tdx.pamt_cache_topups") == 2);
  CHECK(t.td().cached_pamt_pages(0) == kCachePages);
  CHECK(t.stat("kvm.tdx.pamt_add") == adds + 1);
  t.vm.require_clean();
}

// Dynamic PAMT v6 (PATCH v6 09/11, arch/x86/kvm/vmx/tdx.c:
// tdx_sept_map_nonleaf_spte) gives an S-EPT page its pair just before
// SEPT.ADD; RFC v5 gave it when the page was allocated into the cache. A
// page topped up but not linked holds a reference only under rfc-v5.
TEST_CASE("mmu.tdx_dpamt_series: an S-EPT page gets its PAMT reference at SEPT.ADD (v6) or when cached (rfc-v5)",
          "[tdx][dpamt]") {
  for (const char* series : {"v6", "rfc-v5"}) {
    INFO(series);
    const bool v6 = std::string(series) == "v6";
    DpamtTd t("vcpu", "off", series);
    t.fault(0x200000);  // links the three tables below the root
    t.fault(0x201000);  // its top-up caches three more, which stay unlinked
    const auto& cached = t.td().external_spt_caches().at(0);
    REQUIRE(cached.size() == 3);
    const Hpa region = cached.front() & ~((Hpa{1} << 21) - 1);
    u32 cached_here = 0;
    for (Hpa hpa : cached) cached_here += (hpa & ~((Hpa{1} << 21) - 1)) == region;
    CHECK(t.td().pamt_holders(region) == t.tdx.pamt().used_4k_in_region(region) + (v6 ? 0 : cached_here));
    // Pair cache after the second top-up: full, whichever series.
    CHECK(t.td().cached_pamt_pages(0) == (v6 ? kCachePages : kRfcV5CachePages));
    t.vm.require_clean();
    t.vm.kvm->td_teardown();
    t.vm.require_clean();
    CHECK(t.tdx.pamt().pair_bytes() == 0);
  }
}

TEST_CASE("mmu.tdx_pamt_cache chooses per-vCPU caches or one per VM", "[tdx][dpamt]") {
  SECTION("vcpu: the faulting vCPU's cache") {
    DpamtTd t("vcpu");
    t.fault(0x200000);
    CHECK(t.td().cached_pamt_pages(0) == kCachePages - 2);
    CHECK(t.td().cached_pamt_pages(t.td().vm_cache()) == 0);
  }
  SECTION("vm: every vCPU draws on the VM's cache") {
    DpamtTd t("vm");
    t.fault(0x200000);
    CHECK(t.td().cached_pamt_pages(t.td().vm_cache()) == kCachePages - 2);
  }
  SECTION("kmem-cache: the pair caches hold only a DEMOTE's pair") {
    DpamtTd t("kmem-cache");
    t.fault(0x200000);
    CHECK(t.td().cached_pamt_pages(0) == 2);
    t.vm.require_clean();  // the guest page's pair came from guest_memfd's prepare hook: no rule 21
  }
  SECTION("anything else is a config error") { CHECK_THROWS_AS(DpamtTd("both"), model::ConfigError); }
}

// Kai Huang's review of the May 2025 Dynamic PAMT RFC: allocate S-EPT pages
// from a kmem_cache whose constructor installs the PAMT. Freed objects stay
// in the cache with their PAMT, so the memory outlives every TD; with the
// per-vCPU caches of the series the last put removes every pair.
TEST_CASE("kmem-cache keeps the S-EPT pages' PAMT pairs with no TD left, vcpu leaves nothing",
          "[tdx][dpamt][teardown]") {
  for (const char* mode : {"vcpu", "kmem-cache"}) {
    INFO(mode);
    DpamtTd t(mode);
    t.fault(0x200000);    // three tables (levels 3, 2, 1) from a cache of three
    t.fault(0x10000000);  // same 1G: one more level-1 table; the cache keeps two
    u64 st = 0;
    t.vm.kvm->td_accept(0, 0x200000, TdxLevel{0}, &st);
    REQUIRE(st == seam::TDX_SUCCESS);
    t.vm.kvm->td_teardown();
    CHECK(t.stat("seam.tds") == 0);
    if (std::string(mode) == "vcpu") {
      CHECK(t.stat("seam.pamt.pair_bytes") == 0);
      CHECK(t.stat("kvm.tdx.kmem_cache_pages") == 0);
    } else {
      // The four linked tables and the two never used went back to the kmem_cache.
      CHECK(t.td().kmem_cache_pages() == 6);
      CHECK(t.stat("kvm.tdx.kmem_cache_pages") == 6);
      std::set<u64> regions;
      for (Hpa hpa : t.td().kmem_cache()) regions.insert(hpa >> 21);
      CHECK(t.stat("seam.pamt.pairs") == regions.size());
      CHECK(t.stat("seam.pamt.pair_bytes") == regions.size() * 2 * kPageSize);
    }
    t.vm.require_clean();  // pamt-zero accepts exactly the kmem_cache's pairs
  }
}

TEST_CASE("rule 21: a PAMT pair needed under mmu_lock from an empty cache is reported", "[tdx][dpamt]") {
  DpamtTd t;
  t.fault(0x200000);  // the tables exist now
  t.vm.require_clean();
  // The VM's cache was never topped up; a 4K page from another 2M host region.
  const Hpa fresh = t.vm.kvm->host_hpa_for_gpa(0x400000);
  KvmOp c;  // an operation of the VMM (its hooks draw on the VM's caches)
  c.start = t.vm.kvm->latest_time();
  // The set hook's AUG as a fault would call it, drawing on the VM's cache.
  t.td().set_external_spte(Gfn{0x201}, PG_LEVEL_4K, SHADOW_NONPRESENT_VALUE, fresh | SPTE_MMU_PRESENT_MASK, 0, c);
  CHECK(has_rule(t.vm.violations(), 21));
}

TEST_CASE("rfc-v1: DEMOTE's R12/R13 pair comes from the cache, PROMOTE's goes back to it and a dry cache is reported", "[tdx][dpamt]") {
  DpamtTd t("vcpu", "rfc-v1");
  t.fault(0x200000);  // cache 0 holds kCachePages - 2
  const auto [r12, r13] = t.td().take_pamt_pair(0);
  CHECK(r12 != r13);
  CHECK(t.td().cached_pamt_pages(0) == kCachePages - 4);
  t.td().return_pamt_pair(0, r12, r13);
  CHECK(t.td().cached_pamt_pages(0) == kCachePages - 2);
  CHECK(t.stat("kvm.tdx.pamt_cache_pages") == kCachePages - 2);
  t.vm.require_clean();
  // The VM's cache was never topped up (per-vCPU mode).
  const auto [a, b] = t.td().take_pamt_pair(t.td().vm_cache());
  t.td().return_pamt_pair(t.td().vm_cache(), a, b);
  CHECK(has_rule(t.vm.violations(), 21));
}

TEST_CASE("rfc-v1: rule 21: a DEMOTE whose PAMT pair cache is empty under mmu_lock is reported", "[tdx][dpamt]") {
  DpamtTd t("vcpu", "rfc-v1");
  const Hpa big = t.accept_2m(0x600000);
  t.vm.require_clean();
  // The split hook as the conversion would call it, but drawing on the VM's
  // cache that nobody topped up (per-vCPU mode): the pair is allocated
  // under the lock.
  KvmOp c;  // an operation of the VMM (its hooks draw on the VM's caches)
  c.start = t.vm.kvm->latest_time();
  t.td().topup_external_spt_cache(0, c);
  const Pfn table = t.td().take_external_spt(0, c);
  REQUIRE(t.td().cached_pamt_pages(t.td().vm_cache()) == 0);
  CHECK(t.td().split_external_spt(Gfn{0x600}, PG_LEVEL_2M, big, table, c));
  CHECK(t.tdx.pamt().has_pair(big));  // the model goes on
  CHECK(has_rule(t.vm.violations(), 21));
}

TEST_CASE("rfc-v1: a DEMOTE the module refuses gives its R12/R13 pair back to the cache and bugs the VM", "[tdx][dpamt]") {
  DpamtTd t("vcpu", "rfc-v1");
  const Hpa big = t.accept_2m(0x600000);
  const u32 vm_cache = t.td().vm_cache();
  t.td().topup_pamt_cache(vm_cache);
  const size_t cached = t.td().cached_pamt_pages(vm_cache);
  REQUIRE(cached == kCachePages);
  const u64 pages = t.stat("kvm.tdx.pamt_cache_pages");
  KvmOp c;  // an operation of the VMM (its hooks draw on the VM's caches)
  c.start = t.vm.kvm->latest_time();
  // DEMOTE's new table is the TDR, a page the module already owns.
  CHECK_FALSE(t.td().split_external_spt(Gfn{0x600}, PG_LEVEL_2M, big, t.td().handle().tdr >> kPageShift, c));
  CHECK(t.td().last_error().rfind("TDH.MEM.PAGE.DEMOTE", 0) == 0);
  CHECK(t.td().bugged());
  CHECK(t.td().cached_pamt_pages(vm_cache) == cached);
  CHECK(t.stat("kvm.tdx.pamt_cache_pages") == pages);
  CHECK(t.td().pamt_holders(big) == 0);
  CHECK(!t.tdx.pamt().has_pair(big));
  CHECK(!has_rule(t.vm.violations(), 21));
}

TEST_CASE("Dynamic PAMT grows with private pages, shrinks as they go and is zero after teardown", "[tdx][dpamt]") {
  DpamtTd t;
  const u64 adds = t.stat("kvm.tdx.pamt_add"), removes = t.stat("kvm.tdx.pamt_remove");
  for (Gpa gpa : {0x200000, 0x201000, 0x400000, 0x600000}) t.fault(gpa);
  CHECK(t.stat("kvm.tdx.pamt_add") == adds + 3);  // three 2M host regions
  const u64 bytes = t.stat("seam.pamt.pair_bytes");
  // The region at 0x400000 loses its only page: PAMT.REMOVE, the pair goes home.
  t.vm.kvm->set_memory_attributes(0x400000, 2 * MiB, false);
  CHECK(t.stat("kvm.tdx.pamt_remove") == removes + 1);
  CHECK(t.stat("seam.pamt.pair_bytes") == bytes - 2 * kPageSize);
  // 0x200000 keeps one of its two pages: the refcount drops, the pair stays.
  t.vm.kvm->set_memory_attributes(0x201000, kPageSize, false);
  CHECK(t.stat("kvm.tdx.pamt_remove") == removes + 1);
  t.vm.require_clean();
  t.vm.kvm->td_teardown();
  CHECK(t.stat("seam.pamt.pair_bytes") == 0);
  CHECK(t.stat("kvm.tdx.pamt_cache_pages") == 0);
  CHECK(t.stat("kvm.tdx.pamt_add") == t.stat("kvm.tdx.pamt_remove"));
  t.vm.require_clean();
}

TEST_CASE("a PAMT pair still installed after teardown is reported as a leak", "[tdx][dpamt]") {
  DpamtTd t;
  t.fault(0x200000);
  t.vm.kvm->td_teardown();
  t.vm.require_clean();
  // Someone adds a pair and never removes it.
  seam::SeamcallRegs r;
  r.rcx = t.vm.kvm->host_hpa_for_gpa(0x800000) | 1;
  r.rdx = t.vm.mem.alloc() << kPageShift, r.r8 = t.vm.mem.alloc() << kPageShift;
  REQUIRE(t.tdx.seamcall(seam::Leaf::TDH_PHYMEM_PAMT_ADD, r) == seam::TDX_SUCCESS);
  bool leak = false;
  for (const auto& v : t.vm.violations()) leak |= v.find("pamt-zero") != std::string::npos;
  CHECK(leak);
}

namespace {

// Every SEAMCALL a vCPU's exit makes, with its time window.
struct CallTimes : seam::SeamcallObserver {
  struct Window {
    u16 leaf;
    unsigned initiator;
    Cycles start, end;
  };
  std::vector<Window> calls;
  void on_call(const seam::SeamcallOutcome& o) override {
    if (!o.tdcall) calls.push_back({o.leaf, o.initiator, o.start, o.start + o.cycles});
  }
};

}  // namespace

// One CPU runs one SEAMCALL at a time: the calls a fault handler makes on
// behalf of one vCPU (PAMT.ADD for the S-EPT pages and the guest page,
// SEPT.ADD, AUG) follow each other in simulated time. A PAMT.ADD timed from
// the wrong base would start after the AUG that follows it began.
TEST_CASE("a private fault's SEAMCALLs, PAMT.ADD included, run one after another on the vCPU's time",
          "[tdx][dpamt]") {
  DpamtTd t;
  u64 pamt_adds = 0;
  // (This harness does not advance the vCPU's clock between exits: each
  // fault is checked on its own.)
  for (Gpa gpa : {Gpa{0x200000}, Gpa{0x400000}}) {
    CallTimes rec;
    t.tdx.set_observer(&rec);
    t.fault(gpa);
    t.tdx.set_observer(nullptr);
    for (size_t i = 0; i < rec.calls.size(); ++i) {
      pamt_adds += rec.calls[i].leaf == u16(seam::Leaf::TDH_PHYMEM_PAMT_ADD);
      CHECK(rec.calls[i].initiator == 1);  // TD vCPU 0
      if (i > 0) {
        INFO("call " << i << " (leaf " << rec.calls[i].leaf << ") after leaf " << rec.calls[i - 1].leaf);
        CHECK(rec.calls[i].start >= rec.calls[i - 1].end);
      }
    }
  }
  CHECK(pamt_adds >= 2);  // each fault's 2M region is new
}
