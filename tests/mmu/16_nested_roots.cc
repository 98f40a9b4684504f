// Shadow-EPT roots and prev_roots (mmu.c: kvm_mmu_new_pgd, cached_root_find_and_keep_current): the LRU rotation of
// cached_root_find_and_keep_current, INVEPT single-context freeing the
// roots of its EPTP (upstream) or keeping them for a sync before reuse (the
// RFC), and root_count references (rule 5).
#include "mmu/nested_mmu.h"
#include "mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

// EPTP of L2 guest n: WB, 4-level walk, A/D on, EPT12 root at (n + 1) MiB.
u64 eptp(unsigned n) { return ((n + 1) << 20) | (3 << 3) | (1 << 6) | 6; }

struct Nested {
  explicit Nested(std::initializer_list<std::pair<const char*, const char*>> overrides = {}, u32 vcpus = 1) {
    for (const auto& [k, v] : overrides) cfg.set(k, v);
    timing = model::Timing::from(cfg);
    mmu = std::make_unique<NestedMmu>(cfg, timing, stats, vcpus);
  }
  u64 stat(const char* name) const { return stats.value(name); }
  // The EPTPs of vCPU 0's current root and prev_roots, 0 for an invalid entry.
  std::vector<u64> cache(u32 vcpu = 0) const {
    const GuestMmu& m = mmu->guest_mmu(vcpu);
    std::vector<u64> v{m.root.hpa ? m.root.pgd : 0};
    for (const auto& p : m.prev_roots) v.push_back(p.hpa ? p.pgd : 0);
    return v;
  }
  void require_clean() const {
    auto v = mmu->check_invariants();
    INFO((v.empty() ? std::string() : v.front()));
    REQUIRE(v.empty());
  }
  model::Config cfg;
  model::Timing timing;
  model::StatsRegistry stats;
  std::unique_ptr<NestedMmu> mmu;
};

}  // namespace

TEST_CASE("A nested entry with a new EPTP builds a root, the same EPTP reuses it", "[mmu][nested]") {
  Nested n;
  n.mmu->nested_vmentry(0, eptp(0));
  REQUIRE(n.stat("nested.root_builds") == 1);
  REQUIRE(n.cache() == std::vector<u64>{eptp(0), 0, 0, 0});
  n.mmu->nested_vmentry(0, eptp(0));
  REQUIRE(n.stat("nested.root_current_hits") == 1);
  REQUIRE(n.stat("nested.root_builds") == 1);
  n.require_clean();
}

TEST_CASE("prev_roots is an LRU: a hit moves the old current to prev_roots[0]", "[mmu][nested]") {
  Nested n;
  for (unsigned g : {0, 1, 2, 3}) n.mmu->nested_vmentry(0, eptp(g));
  // Most recent first: 3 current, then 2, 1, 0.
  REQUIRE(n.cache() == std::vector<u64>{eptp(3), eptp(2), eptp(1), eptp(0)});
  n.mmu->nested_vmentry(0, eptp(1));  // hit at prev_roots[1]
  REQUIRE(n.stat("nested.prev_roots_hits") == 1);
  REQUIRE(n.cache() == std::vector<u64>{eptp(1), eptp(3), eptp(2), eptp(0)});
  // A miss frees the least recently used root (0) and builds a new one.
  n.mmu->nested_vmentry(0, eptp(4));
  REQUIRE(n.cache() == std::vector<u64>{eptp(4), eptp(1), eptp(3), eptp(2)});
  REQUIRE(n.stat("nested.roots_freed") == 1);
  REQUIRE(n.mmu->live_roots() == 4);
  n.mmu->nested_vmentry(0, eptp(0));
  REQUIRE(n.stat("nested.root_rebuilds") == 1);
  n.require_clean();
}

TEST_CASE("mmu.prev_roots sets how many roots a vCPU caches", "[mmu][nested]") {
  Nested n({{"mmu.prev_roots", "1"}});
  for (int round = 0; round < 3; ++round)
    for (unsigned g : {0, 1, 2}) n.mmu->nested_vmentry(0, eptp(g));
  // Three L2s round-robin over one cached root: every switch misses.
  REQUIRE(n.stat("nested.prev_roots_hits") == 0);
  REQUIRE(n.stat("nested.root_builds") == 9);
  Nested wide({{"mmu.prev_roots", "2"}});
  for (int round = 0; round < 3; ++round)
    for (unsigned g : {0, 1, 2}) wide.mmu->nested_vmentry(0, eptp(g));
  REQUIRE(wide.stat("nested.prev_roots_hits") == 6);
  REQUIRE(wide.stat("nested.root_builds") == 3);
}

TEST_CASE("A role change (A/D bit) is a different root for the same EPT12", "[mmu][nested]") {
  Nested n;
  n.mmu->nested_vmentry(0, eptp(0));
  n.mmu->nested_vmentry(0, eptp(0) & ~u64{1 << 6});
  REQUIRE(n.stat("nested.root_builds") == 2);
  REQUIRE(n.mmu->live_roots() == 2);
}

TEST_CASE("vCPUs entering the same EPTP share one root with two references", "[mmu][nested]") {
  Nested n({}, 2);
  n.mmu->nested_vmentry(0, eptp(0));
  n.mmu->nested_vmentry(1, eptp(0));
  REQUIRE(n.stat("nested.root_builds") == 1);
  REQUIRE(n.stat("nested.root_shared") == 1);
  REQUIRE(n.mmu->guest_mmu(0).root.hpa->root_count == 2);
  n.require_clean();
}

TEST_CASE("L2 accesses fault once per page and build the shadow pages on the way", "[mmu][nested]") {
  Nested n;
  n.mmu->nested_vmentry(0, eptp(0));
  n.mmu->l2_access(0, 0x1000, 3, 0x1000);
  REQUIRE(n.stat("nested.faults") == 3);
  REQUIRE(n.stat("nested.shadow_pages") == 4);  // root, PDPT, PD, PT
  n.mmu->l2_access(0, 0x1000, 3, 0x1000);
  REQUIRE(n.stat("nested.faults") == 3);
  REQUIRE(n.stat("nested.l2_accesses") == 6);
}

TEST_CASE("Upstream INVEPT single-context frees that EPTP's roots, using it again refaults", "[mmu][nested]") {
  Nested n({{"mmu.nested.invept", "free"}});
  n.mmu->nested_vmentry(0, eptp(0));
  n.mmu->l2_access(0, 0, 8, 0x1000);
  n.mmu->nested_vmentry(0, eptp(1));
  n.mmu->handle_invept(0, false, eptp(0));
  REQUIRE(n.cache() == std::vector<u64>{eptp(1), 0, 0, 0});
  REQUIRE(n.stat("nested.roots_freed") == 1);
  n.mmu->nested_vmentry(0, eptp(0));
  REQUIRE(n.stat("nested.root_rebuilds") == 1);
  n.mmu->l2_access(0, 0, 8, 0x1000);
  REQUIRE(n.stat("nested.refaults") == 8);
  REQUIRE(n.stat("nested.syncs") == 0);
  n.require_clean();
}

TEST_CASE("INVEPT of the current EPTP frees the current root: L2 needs a new entry", "[mmu][nested]") {
  Nested n;
  n.mmu->nested_vmentry(0, eptp(0));
  n.mmu->handle_invept(0, false, eptp(0));
  REQUIRE_THROWS_AS(n.mmu->l2_access(0, 0, 1, 0), KvmError);
  n.mmu->nested_vmentry(0, eptp(0));
  REQUIRE(n.stat("nested.root_rebuilds") == 1);
}

TEST_CASE("keep-sync INVEPT keeps the root and syncs only its unsync pages before reuse", "[mmu][nested]") {
  Nested n({{"mmu.nested.invept", "keep-sync"}});
  n.mmu->nested_vmentry(0, eptp(0));
  n.mmu->l2_access(0, 0, 1024, 0x1000);  // two leaf shadow pages (4 MiB)
  n.mmu->nested_vmentry(0, eptp(1));
  // L1 changes the mapping of two pages of the first 2 MiB, then INVEPTs.
  n.mmu->l1_ept_write(0, eptp(0), 0x3000);
  n.mmu->l1_ept_write(0, eptp(0), 0x5000);
  REQUIRE(n.stat("nested.unsync_marks") == 1);
  n.mmu->handle_invept(0, false, eptp(0));
  REQUIRE(n.stat("nested.roots_freed") == 0);
  n.mmu->nested_vmentry(0, eptp(0));
  REQUIRE(n.stat("nested.prev_roots_hits") == 1);
  REQUIRE(n.stat("nested.syncs") == 1);
  REQUIRE(n.stat("nested.synced_pages") == 1);
  // Only the two changed entries fault again.
  n.mmu->l2_access(0, 0, 1024, 0x1000);
  REQUIRE(n.stat("nested.refaults") == 2);
  n.require_clean();
}

TEST_CASE("Global INVEPT frees every cached root (upstream)", "[mmu][nested]") {
  Nested n;
  for (unsigned g : {0, 1, 2}) n.mmu->nested_vmentry(0, eptp(g));
  n.mmu->handle_invept(0, true, 0);
  REQUIRE(n.cache() == std::vector<u64>{0, 0, 0, 0});
  REQUIRE(n.mmu->live_roots() == 0);
  REQUIRE(n.stat("nested.invept_global") == 1);
  n.require_clean();
}

TEST_CASE("After INVEPT freed the current root, a switch finds cached roots without it", "[mmu][nested]") {
  Nested n;
  for (unsigned g : {0, 1, 2}) n.mmu->nested_vmentry(0, eptp(g));
  n.mmu->handle_invept(0, false, eptp(2));  // current freed: {-, 1, 0, -}
  n.mmu->nested_vmentry(0, eptp(0));        // cached_root_find_without_current: hit at 1, the rest bubble up
  REQUIRE(n.cache() == std::vector<u64>{eptp(0), eptp(1), 0, 0});
  REQUIRE(n.stat("nested.prev_roots_hits") == 1);
  n.require_clean();
}

TEST_CASE("Bad nested configuration and EPTPs are refused", "[mmu][nested]") {
  REQUIRE_THROWS_AS(Nested({{"mmu.nested.invept", "sometimes"}}), model::ConfigError);
  REQUIRE_THROWS_AS(Nested({{"mmu.prev_roots", "17"}}), model::ConfigError);
  Nested n;
  REQUIRE_THROWS_AS(n.mmu->nested_vmentry(0, 0x100000 | (3 << 3) | 5), KvmError);  // memory type 5
  REQUIRE_THROWS_AS(n.mmu->nested_vmentry(0, 0x100000 | (1 << 3) | 6), KvmError);  // walk length 2
  REQUIRE_THROWS_AS(n.mmu->nested_vmentry(3, eptp(0)), KvmError);
}

TEST_CASE("With a shadow-page budget a root without references stays in the hash and is found again",
          "[mmu][nested]") {
  Nested n({{"mmu.prev_roots", "1"}, {"mmu.nested.max_shadow_pages", "64"}});
  n.mmu->nested_vmentry(0, eptp(0));
  n.mmu->l2_access(0, 0, 8, 0x1000);
  n.mmu->nested_vmentry(0, eptp(1));
  n.mmu->nested_vmentry(0, eptp(2));  // root 0 falls out of the cache: root_count 0, kept
  REQUIRE(n.cache() == std::vector<u64>{eptp(2), eptp(1)});
  REQUIRE(n.mmu->live_roots() == 3);
  n.mmu->nested_vmentry(0, eptp(0));
  REQUIRE(n.stat("nested.root_unused_hits") == 1);
  REQUIRE(n.stat("nested.root_rebuilds") == 0);
  n.mmu->l2_access(0, 0, 8, 0x1000);
  REQUIRE(n.stat("nested.faults") == 8);  // the first 8 only
  n.require_clean();
}

TEST_CASE("The budget recycles the oldest unused root before allocating", "[mmu][nested]") {
  Nested n({{"mmu.prev_roots", "0"}, {"mmu.nested.max_shadow_pages", "2"}});
  for (unsigned g : {0, 1, 2}) n.mmu->nested_vmentry(0, eptp(g));  // building 2 recycles 0
  REQUIRE(n.stat("nested.roots_freed") == 1);
  n.mmu->nested_vmentry(0, eptp(1));  // still kept
  REQUIRE(n.stat("nested.root_unused_hits") == 1);
  n.mmu->nested_vmentry(0, eptp(0));  // recycled: built again, 2 goes
  REQUIRE(n.stat("nested.root_rebuilds") == 1);
  REQUIRE(n.stat("nested.roots_freed") == 2);
  REQUIRE(n.mmu->live_roots() == 2);
  n.require_clean();
}
