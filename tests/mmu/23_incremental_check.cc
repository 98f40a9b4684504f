// --check between full sweeps (docs/invariants.md, "How --check runs"): the
// MMU notes in a CheckLog which gfn ranges it changed, and the incremental
// check looks only there. What it sees there it reports exactly as the full
// sweep does; what changed behind the MMU's back is left to the full sweep.
// Also the rules added with it: kvm-bug (a refused SEAMCALL where KVM would
// KVM_BUG_ON) and pamt-refcount (Dynamic PAMT refcounts match the TD's pages).
#include <algorithm>

#include "mmu/check_log.h"
#include "mmu/spte.h"
#include "mmu/tdx_vm.h"
#include "mmu_test_util.h"
#include "model/hex.h"
#include "seam/sept_entry.h"
#include "seam/tdx_module.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

bool has(const std::vector<std::string>& v, const std::string& text) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return s.find(text) != std::string::npos; });
}

// A memslot of 4K pages with 0x5000 mapped, the log attached from the start.
struct Logged {
  CheckLog log;  // outlives the VM, which writes to it until destroyed
  Vm vm;
  Logged() {
    vm.kvm->set_check_log(&log);
    vm.kvm->create_memslot(slot(0, 0, 2 * MiB));
    vm.access(0x5000, AccessType::Write);
  }
};

}  // namespace

TEST_CASE("a fault notes the gfn of the leaf it installs in the check log", "[mmu][check]") {
  Logged l;
  // The fault linked the tables down to the 4K leaf for gfn 5: the leaf's
  // own range is in the log.
  CHECK(std::any_of(l.log.ranges.begin(), l.log.ranges.end(),
                    [](const auto& r) { return r.first <= Gfn{5} && Gfn{5} < r.first + r.second; }));
  CHECK_FALSE(l.log.tlb_may_be_stale);  // nothing lost a right
  l.log.clear();
  l.vm.kvm->zap_gfn_range(0x5000, kPageSize);
  REQUIRE(l.log.ranges.size() == 1);
  CHECK(l.log.ranges[0] == std::pair<Gfn, u64>{5, 1});
  CHECK(l.log.tlb_may_be_stale);  // a present leaf went away
}

TEST_CASE("an incremental check reports a broken leaf in a changed range as the full sweep does", "[mmu][check]") {
  Logged l;
  l.log.clear();
  REQUIRE(l.vm.kvm->check_invariants_incremental(l.log).empty());
  // A leaf for gfn 7 that the host does not back with pfn 0x12345, written
  // where the MMU would have noted it.
  const Hpa leaf_table = l.vm.lookup(0x5000).sptep & ~0xfffull;
  l.vm.mem.write64(leaf_table + 7 * 8, make_spte(PG_LEVEL_4K, 0x12345, true, true));
  l.log.touch(Gfn{7}, 1);
  const auto inc = l.vm.kvm->check_invariants_incremental(l.log);
  const auto full = l.vm.kvm->check_invariants();
  REQUIRE(has_rule(inc, 8));
  // The same line as the full sweep's, so the replay reports it once.
  for (const auto& v : inc) CHECK(std::find(full.begin(), full.end(), v) != full.end());
  // Rule 12 (pages_4k against the tables) counts the whole state: full sweeps only.
  CHECK(has_rule(full, 12));
  CHECK_FALSE(has_rule(inc, 12));
}

TEST_CASE("a leaf broken outside the changed ranges is left to the full sweep", "[mmu][check]") {
  Logged l;
  l.log.clear();
  const Hpa leaf_table = l.vm.lookup(0x5000).sptep & ~0xfffull;
  l.vm.mem.write64(leaf_table + 7 * 8, make_spte(PG_LEVEL_4K, 0x12345, true, true));
  l.log.touch(Gfn{9}, 1);  // some other change
  CHECK_FALSE(has_rule(l.vm.kvm->check_invariants_incremental(l.log), 8));
  CHECK(has_rule(l.vm.kvm->check_invariants(), 8));
}

namespace {

constexpr Gpa kPage = 0x300000;

// A finalized TD with two accepted private 4K pages at 0x300000 and 0x301000.
struct Td {
  CheckLog log;
  Vm vm;
  seam::TdxModule tdx;
  explicit Td(bool dynamic = false)
      : vm({{"host.mem_gib", "8"}, {"seam.dynamic_pamt", dynamic ? "true" : "false"}}, 8 * GiB),
        tdx(unique_tdx_name().c_str(), vm.cfg, vm.mem, vm.stats) {
    vm.kvm->set_check_log(&log);
    vm.kvm->create_memslot(slot(0, 0, 64 * MiB, HostBacking::Thp2M));
    vm.kvm->create_td(tdx, TdxVmParams{}, {nullptr});
    vm.kvm->td_finalize();
    for (Gpa g : {kPage, Gpa{kPage + kPageSize}}) {
      u64 st = 0;
      vm.kvm->td_accept(0, g, TdxLevel{0}, &st);
      REQUIRE(st == seam::TDX_SUCCESS);
    }
    vm.require_clean();
    log.clear();
  }
  TdxVm& td() { return *vm.kvm->tdx_vm(); }
};

}  // namespace

TEST_CASE("a refused removal is rule kvm-bug naming the leaf, the status and the kernel function", "[tdx][check]") {
  Td t;
  // Something blocked the leaf behind KVM's back: KVM's own BLOCK is refused
  // and tdx_sept_remove_leaf_spte's TDX_BUG_ON fires (arch/x86/kvm/vmx/tdx.c).
  const Hpa entry = t.td().td()->sept->walk(kPage, 0).entry_hpa;
  const Hpa hpa = t.vm.kvm->private_mapping(kPage)->hpa;
  t.vm.mem.write64(entry, seam::septe::make_leaf(seam::septe::SeptState::BLOCKED, hpa));
  t.vm.kvm->set_memory_attributes(kPage, kPageSize, false);
  REQUIRE(t.td().bugged());
  REQUIRE(t.td().bug_reports().size() == 1);
  const std::string& bug = t.td().bug_reports()[0];
  CHECK(bug.starts_with("rule kvm-bug: TDH.MEM.RANGE.BLOCK at 0x300000 returned "));
  INFO(bug);
  // TDH.MEM.RANGE.BLOCK of a leaf already BLOCKED: the module's
  // TDX_GPA_RANGE_ALREADY_BLOCKED on the page_info operand (RCX).
  CHECK(bug.find("returned TDX_GPA_RANGE_ALREADY_BLOCKED|RCX(1)") != std::string::npos);
  CHECK(bug.find("tdx_sept_remove_leaf_spte") != std::string::npos);
  CHECK(t.vm.kvm->dead_reason().find("KVM_BUG_ON") != std::string::npos);
  // The incremental check after the conversion reports it, once.
  const auto inc = t.vm.kvm->check_invariants_incremental(t.log);
  CHECK(std::count(inc.begin(), inc.end(), bug) == 1);
  t.log.clear();
  CHECK(std::count_if(inc.begin(), inc.end(), [](const std::string& s) { return s.starts_with("rule kvm-bug"); }) == 1);
  CHECK_FALSE(has(t.vm.kvm->check_invariants_incremental(t.log), "rule kvm-bug"));
  // A full sweep still lists it (the report dedupes).
  CHECK(has(t.vm.kvm->check_invariants(), bug));
}

TEST_CASE("an incremental check after a conversion finds the TD's pages consistent", "[tdx][check]") {
  for (bool dynamic : {false, true}) {
    INFO("dynamic PAMT " << dynamic);
    Td t(dynamic);
    t.vm.kvm->set_memory_attributes(kPage, kPageSize, false);
    CHECK_FALSE(t.log.ranges.empty());
    CHECK(t.log.tlb_may_be_stale);  // BLOCK and REMOVE took the page away
    CHECK(t.vm.kvm->check_invariants_incremental(t.log).empty());
    CHECK(t.vm.violations().empty());
  }
}

TEST_CASE("pamt-refcount: a page removed behind KVM's back leaves its region's refcount above the TD's pages",
          "[tdx][dpamt][check]") {
  Td t(true);
  const Hpa hpa = t.vm.kvm->private_mapping(kPage)->hpa;
  const Hpa region = hpa & ~((Hpa{1} << 21) - 1);
  // Two private pages (and no Secure-EPT or control page: those come from
  // other regions) hold the region: the refcount is 2, as the module's PAMT says.
  REQUIRE(t.vm.kvm->private_mapping(kPage + kPageSize)->hpa >> 21 == hpa >> 21);
  CHECK(t.td().pamt_holders(region) == 2);
  CHECK(t.tdx.pamt().used_4k_in_region(region) == 2);
  // BLOCK, TRACK, REMOVE of 0x300000 as raw SEAMCALLs: the module frees the
  // page, KVM's refcount is never put.
  const seam::TdHandle& h = t.td().handle();
  Cycles now = t.vm.kvm->latest_time() + 1000000;
  auto seamcall = [&](seam::Leaf leaf, u64 rcx, u64 rdx) {
    seam::SeamcallRegs regs;
    regs.rcx = rcx, regs.rdx = rdx;
    const seam::Status s = t.tdx.seamcall(leaf, regs, 0, now);
    now += 100000;
    return s;
  };
  REQUIRE(seamcall(seam::Leaf::TDH_MEM_RANGE_BLOCK, seam::page_info(kPage, 0), h.tdr) == seam::TDX_SUCCESS);
  REQUIRE(seamcall(seam::Leaf::TDH_MEM_TRACK, h.tdr, 0) == seam::TDX_SUCCESS);
  mmu::KvmOp exits;
  exits.start = now;
  t.td().td_exit(exits, 0);
  REQUIRE(seamcall(seam::Leaf::TDH_MEM_PAGE_REMOVE, seam::page_info(kPage, 0), h.tdr) == seam::TDX_SUCCESS);
  const auto v = t.vm.violations();
  CHECK(has(v, "rule pamt-refcount: the 2M host region at " + hex(region) +
                   " has Dynamic PAMT refcount 2 but 1 of its 4K pages are the TD's and 0 wait in the Secure-EPT page "
                   "caches"));
  // The raw calls went around the MMU: only a full sweep (or a change KVM
  // makes in that region) can see it.
  CHECK_FALSE(has(t.vm.kvm->check_invariants_incremental(t.log), "pamt-refcount"));
  t.log.pamt_regions.push_back(hpa >> 21);
  CHECK(has(t.vm.kvm->check_invariants_incremental(t.log), "pamt-refcount"));
}
