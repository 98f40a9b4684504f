// PageWalker::prefetch (the vCPU's look-ahead) is host-side only: two walkers
// over identical memory make the same walks, one after running every stage
// of the look-ahead for the next accesses, the other without, and agree on
// every result, every counter and every paging-structure entry (A/D bits).
// Between two rounds the guest moves page directories and page tables and the
// EPT moves data, so that the look-ahead's memos of directories and tables
// are stale for the second round.
#include <catch2/catch.hpp>
#include <vector>

#include "walk_env.h"

using namespace septsim;
using namespace septsim::model;
using namespace septsim::walktest;

namespace {

constexpr Gva kBase = 0x00007f0000000000ull;
constexpr Gpa kData = 0x100000000ull;
constexpr unsigned kPages = 600;

// The i-th page: spread over 3 GiB of linear addresses, so that they use
// several page directories and about 300 page tables (the guest's tables
// must fit its 2 MiB region).
Gva page_gva(unsigned i) { return kBase + (u64(i % 3) << 30) + u64(i / 3) * ((1ull << 20) + kPageSize); }

struct Machine {
  Env env;
  Guest guest;
  std::vector<Gpa> gpa;  // the data GPA of each page
  explicit Machine() : env(4), guest(env.mem, env.ept, 4, 0x10000000, PG_LEVEL_2M) {
    for (unsigned i = 0; i < kPages; ++i) {
      gpa.push_back(kData + (u64(i % 2) << 30) + u64(i) * (5 * kPageSize));
      guest.map(page_gva(i), gpa[i]);
      env.ept.map(gpa[i], env.mem.alloc() << kPageShift);
    }
  }
  // The guest gives page i's GiB a new page directory (a copy of the old
  // one), gives page i a new page table (a copy too), and maps it elsewhere;
  // the EPT maps the data GPA to a new frame.
  void move(unsigned i) {
    const Gva v = page_gva(i);
    for (int level : {PG_LEVEL_2M, PG_LEVEL_4K}) {
      const Gpa old_table = guest.table_gpa(v, level);
      const Gpa fresh = guest.new_table();
      for (unsigned k = 0; k < 512; ++k)
        env.mem.write64(guest.table_hpa(fresh) + k * 8, env.mem.read64(guest.table_hpa(old_table) + k * 8));
      guest.set(v, level + 1, fresh | kGuestRw);
    }
    gpa[i] += 2 * kPageSize;
    guest.map(v, gpa[i]);
    env.ept.map(gpa[i], env.mem.alloc() << kPageShift);
  }
};

void check_same(const WalkResult& a, const WalkResult& b) {
  CHECK(a.outcome == b.outcome);
  CHECK(a.gpa == b.gpa);
  CHECK(a.t.frame == b.t.frame);
  CHECK(a.t.level == b.t.level);
  CHECK(a.t.perms == b.t.perms);
  CHECK(a.t.dirty == b.t.dirty);
  CHECK(a.guest_refs == b.guest_refs);
  CHECK(a.ept_refs == b.ept_refs);
  CHECK(a.cycles == b.cycles);
}

}  // namespace

TEST_CASE("The walker's look-ahead changes no walk, counter or entry, with stale memos too", "[walk]") {
  Machine ahead, plain;
  u64 prefetched = 0;
  auto round = [&](unsigned seed) {
    // Pages in a scattered order; the look-ahead runs all four stages for the
    // two accesses after the current one before the current one walks.
    std::vector<unsigned> order;
    for (unsigned k = 0; k < kPages; ++k) order.push_back((k * 263 + seed) % kPages);
    for (size_t k = 0; k < order.size(); ++k) {
      for (size_t j = k + 1; j < order.size() && j <= k + 2; ++j) {
        const WalkRequest next = ahead.env.gva_req(ahead.guest, page_gva(order[j]) + 8 * j, AccessType::Write);
        PageWalker::Lookahead la{j + 1, 0, 0};
        u8 ran = 0;
        for (u8 stage = 0; stage < 4 && la.stage == stage; ++stage) ahead.env.walker->prefetch(next, la), ran = u8(stage + 1);
        prefetched += ran == 4;
      }
      const AccessType type = k % 3 ? AccessType::Read : AccessType::Write;
      const Gva v = page_gva(order[k]) + 8 * k;
      check_same(ahead.env.walk_gva(ahead.guest, v, type), plain.env.walk_gva(plain.guest, v, type));
    }
  };
  round(1);
  for (unsigned i = 0; i < kPages; i += 11) ahead.move(i), plain.move(i);
  round(5);
  // All four stages ran for most look-aheads.
  CHECK(prefetched > kPages);
  CHECK(ahead.env.stats.to_json() == plain.env.stats.to_json());
  for (unsigned i = 0; i < kPages; ++i) {
    CAPTURE(i);
    for (int level = PG_LEVEL_4K; level <= 4; ++level)
      CHECK(ahead.guest.get(page_gva(i), level) == plain.guest.get(page_gva(i), level));
    for (int level = PG_LEVEL_4K; level <= 4; ++level)
      CHECK(ahead.env.ept.get(ahead.gpa[i], level) == plain.env.ept.get(plain.gpa[i], level));
  }
}
