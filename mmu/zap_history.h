// What a memslot flush (kvm_arch_flush_shadow_memslot on DELETE or MOVE)
// threw away, so that the cost of getting it back can be counted: leaf
// SPTEs the guest faults in again (refaults) and page-table pages the fault
// path allocates again at the same level and gfn (rebuilt pages). Only what a
// flush zapped is remembered; zaps for other reasons do not count.
#pragma once
#include <map>
#include <set>
#include <utility>

#include "model/stats.h"

namespace septsim::mmu {

class ZapHistory {
 public:
  explicit ZapHistory(model::StatsRegistry& r);

  // Between begin_flush and end_flush, removals are recorded.
  void begin_flush() { recording_ = true; }
  void end_flush(Cycles cycles);

  // A present leaf for [gfn, gfn + pages(level)) was zapped.
  void leaf_zapped(Gfn gfn, int level);
  // A present leaf was installed: a refault if it covers a recorded zap.
  void leaf_installed(Gfn gfn, int level);
  // A page-table page (not a root) was freed / allocated by the fault path.
  void table_freed(Gfn gfn, int level);
  void table_allocated(Gfn gfn, int level);

 private:
  bool recording_ = false;
  // Zapped gfn ranges, merged: first gfn -> end gfn (exclusive). A fast zap
  // of a large VM stays a few entries.
  std::map<Gfn, Gfn> zapped_leaves_;
  std::set<std::pair<int, Gfn>> freed_tables_;  // (level, gfn)
  u64& flushes_;
  u64& zapped_sptes_;
  u64& zapped_pages_;
  u64& refaults_;
  u64& rebuilt_pages_;
  u64& cycles_;
};

}  // namespace septsim::mmu
