// The mirror root in the TDP MMU itself, against a recording ExternalSpt:
// the entry is FROZEN while a hook runs, a refused map leaves the old value,
// a refused removal keeps the leaf, present -> present changes are refused
// and recorded (docs/invariants.md rules 9, 17, 21), and walks that must not
// reach the mirror do not (rule 22).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "mmu/mmu_stats.h"
#include "mmu/tdp_mmu.h"
#include "model/config.h"
#include "model/stats.h"
#include "tests/mmu/mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

// Records each hook call with the value the mirror entry held during it.
struct RecordingExternal : ExternalSpt {
  explicit RecordingExternal(model::PhysMem& m) : mem(m) {}
  u32 topup_external_cache(KvmOp& op) override { return op.vcpu ? u32(op.vcpu->id()) : 0; }  // takes whole pages from mem
  Pfn take_external_spt(u32, KvmOp&) override { return mem.alloc(); }
  void free_unlinked_external_spt(Pfn page, KvmOp&) override { mem.free(page); }
  // Named by what tdx_sept_set_private_spte would do with the change.
  bool set_external_spte(Gfn gfn, int level, u64, u64 new_spte, Pfn child, KvmOp&) override {
    if (!is_shadow_present_pte(new_spte)) return hook("remove", gfn, level);
    if (!is_last_spte(new_spte, level)) return child && hook("link", gfn, level);
    return hook("set", gfn, level);
  }
  bool split_external_spt(Gfn gfn, int level, u64, Pfn, KvmOp&) override { return hook("split", gfn, level); }
  bool free_external_spt(Gfn gfn, int level, Pfn page, KvmOp&) override {
    mem.free(page);
    return hook("free", gfn, level);
  }
  bool hook(const std::string& name, Gfn gfn, int level) {
    calls.push_back(name + " " + std::to_string(gfn.raw()) + " " + std::to_string(level));
    if (watch) seen_during_hook.push_back(mem.read64(watch));
    return name != refuse;
  }

  model::PhysMem& mem;
  std::vector<std::string> calls;
  Hpa watch = 0;  // an entry to read during each hook
  std::vector<u64> seen_during_hook;
  std::string refuse;  // the hook that fails
};

struct Mirror {
  Mirror()
      : mem(1 * GiB), stats_counters(stats), timing(model::Timing::from(cfg)), tdp(mem, timing, stats_counters, op),
        ext(mem) {
    tdp.set_external_spt(&ext);
    MmuPageRole role;
    role.level = 4;
    role.direct = 1;
    role.access = ACC_ALL;
    role.is_mirror = 1;
    root = tdp.alloc_root(role);
  }
  ~Mirror() { tdp.set_external_spt(nullptr); }
  int map(Gfn gfn, Pfn pfn, int level = PG_LEVEL_4K) {
    KvmPageFault f(gfn_to_gpa(gfn), PFERR_WRITE_MASK | PFERR_PRIVATE_ACCESS);
    f.pfn = pfn;
    f.map_writable = true;
    f.goal_level = f.req_level = level;
    bool flush = false;
    return tdp.map(*root, f, &flush);
  }
  // Host-physical address of the deepest mirror entry for gfn.
  Hpa sptep(Gfn gfn) {
    Hpa hpa = 0;
    for (TdpIter it(mem, *root, PG_LEVEL_4K, gfn); it.valid && it.gfn <= gfn; it.next()) hpa = it.sptep_hpa();
    return hpa;
  }

  model::Config cfg;
  model::PhysMem mem;
  model::StatsRegistry stats;
  MmuStats stats_counters;
  model::Timing timing;
  KvmOp op;
  TdpMmu tdp;
  RecordingExternal ext;
  MmuPage* root = nullptr;
};

}  // namespace

TEST_CASE("a mirror fault links each table and then the leaf through set_external_spte",
          "[mirror]") {
  Mirror m;
  const Pfn page = m.mem.alloc();
  REQUIRE(m.map(Gfn{0x300}, page) == RET_PF_FIXED);
  CHECK(m.ext.calls == std::vector<std::string>{"link 0 4", "link 0 3", "link 512 2", "set 768 1"});
  REQUIRE(m.map(Gfn{0x300}, page) == RET_PF_SPURIOUS);  // never present -> present
  CHECK(m.ext.calls.size() == 4);
  CHECK(m.tdp.mirror_bugs().empty());
}

TEST_CASE("the mirror entry is FROZEN while its hook runs and restored when the hook refuses", "[mirror]") {
  Mirror m;
  REQUIRE(m.map(Gfn{0x300}, m.mem.alloc()) == RET_PF_FIXED);
  const Hpa e = m.sptep(Gfn{0x301});
  REQUIRE(e != 0);
  REQUIRE(m.mem.read64(e) == SHADOW_NONPRESENT_VALUE);
  m.ext.watch = e;
  m.ext.refuse = "set";
  CHECK(m.map(Gfn{0x301}, m.mem.alloc()) == RET_PF_RETRY);
  CHECK(m.ext.seen_during_hook == std::vector<u64>{FROZEN_SPTE});
  CHECK(m.mem.read64(e) == SHADOW_NONPRESENT_VALUE);  // the old value, not FROZEN
  m.ext.refuse.clear();
  const Pfn page = m.mem.alloc();
  REQUIRE(m.map(Gfn{0x301}, page) == RET_PF_FIXED);
  CHECK(spte_to_pfn(m.mem.read64(e)) == page);
}

TEST_CASE("a refused mirror removal keeps the leaf, a successful one clears it", "[mirror]") {
  Mirror m;
  const Pfn page = m.mem.alloc();
  REQUIRE(m.map(Gfn{0x300}, page) == RET_PF_FIXED);
  const Hpa e = m.sptep(Gfn{0x300});
  const u64 leaf = m.mem.read64(e);
  m.ext.watch = e;
  m.ext.refuse = "remove";
  m.tdp.zap_leafs(Gfn{0x300}, Gfn{0x301}, false, KVM_MIRROR_ROOTS);
  CHECK(m.ext.seen_during_hook == std::vector<u64>{FROZEN_SPTE});
  CHECK(m.mem.read64(e) == leaf);
  m.ext.refuse.clear();
  m.tdp.zap_leafs(Gfn{0x300}, Gfn{0x301}, false, KVM_MIRROR_ROOTS);
  CHECK(m.mem.read64(e) == SHADOW_NONPRESENT_VALUE);
}

TEST_CASE("rule 17: a present -> present mirror change is refused and recorded", "[mirror]") {
  Mirror m;
  REQUIRE(m.map(Gfn{0x300}, m.mem.alloc()) == RET_PF_FIXED);
  // A 2M leaf over the 4K table (promotion on the fault path) is what KVM_BUG_ONs.
  const size_t calls = m.ext.calls.size();
  CHECK(m.map(Gfn{0x200}, m.mem.alloc(PG_LEVEL_2M), PG_LEVEL_2M) == RET_PF_RETRY);
  CHECK(m.ext.calls.size() == calls);  // no hook ran
  REQUIRE(m.tdp.mirror_bugs().size() == 1);
  CHECK(m.tdp.mirror_bugs()[0].find("present -> present") != std::string::npos);
}

TEST_CASE("rule 22: shared-filtered zaps and fast zap never touch the mirror root", "[mirror]") {
  Mirror m;
  REQUIRE(m.map(Gfn{0x300}, m.mem.alloc()) == RET_PF_FIXED);
  const size_t calls = m.ext.calls.size();
  m.tdp.zap_leafs(Gfn{0}, Gfn{1u << 20}, false, KVM_DIRECT_ROOTS);
  m.tdp.invalidate_roots();  // kvm_mmu_zap_all_fast: KVM_DIRECT_ROOTS
  m.tdp.zap_invalidated_roots();
  m.tdp.split_huge_pages(Gfn{0}, Gfn{1u << 20}, PG_LEVEL_4K);
  CHECK(m.ext.calls.size() == calls);
  CHECK(!m.root->role.invalid);
  CHECK(is_shadow_present_pte(m.mem.read64(m.sptep(Gfn{0x300}))));
}

TEST_CASE("tearing the mirror root down removes leaves first, then frees each external table", "[mirror]") {
  Mirror m;
  REQUIRE(m.map(Gfn{0x300}, m.mem.alloc()) == RET_PF_FIXED);
  m.ext.calls.clear();
  m.tdp.invalidate_roots(KVM_MIRROR_ROOTS);
  m.tdp.zap_invalidated_roots();
  m.tdp.put_root(m.root);
  CHECK(m.ext.calls == std::vector<std::string>{"remove 768 1", "free 512 1", "free 0 2", "free 0 3"});
  CHECK(m.tdp.roots().empty());
}

TEST_CASE("a mirror huge leaf splits through split_external_spt into 512 leaves of the same frames", "[mirror]") {
  Mirror m;
  const Pfn huge = m.mem.alloc(PG_LEVEL_2M);
  REQUIRE(m.map(Gfn{0x200}, huge, PG_LEVEL_2M) == RET_PF_FIXED);
  const Hpa e = m.sptep(Gfn{0x200});
  const u64 leaf = m.mem.read64(e);
  m.ext.calls.clear();
  m.ext.watch = e;
  m.ext.refuse = "split";
  CHECK(!m.tdp.split_mirror_huge_page(Gfn{0x3ff}, 0));
  CHECK(m.ext.seen_during_hook == std::vector<u64>{FROZEN_SPTE});
  CHECK(m.mem.read64(e) == leaf);  // refused: the huge leaf stays
  m.ext.refuse.clear();
  REQUIRE(m.tdp.split_mirror_huge_page(Gfn{0x3ff}, 0));
  CHECK(m.ext.calls == std::vector<std::string>{"split 512 2", "split 512 2"});
  CHECK(m.tdp.mirror_bugs().empty());
  for (Gfn g : {Gfn{0x200}, Gfn{0x2ff}, Gfn{0x3ff}}) {
    const u64 spte = m.mem.read64(m.sptep(g));
    CHECK(is_present_leaf(spte, PG_LEVEL_4K));
    CHECK(spte_to_pfn(spte) == huge + (g - Gfn{0x200}));
  }
}
