// mmu.tdx_merge_policy = C (seed study 004, docs/studies.md 1): BLOCK instead
// of zap. When dirty logging stops, every ready split range of the slot is
// BLOCKed under one TRACK and kick; the next private fault in a blocked range
// PROMOTEs it under the fault's read mmu_lock (no TRACK is left to do).
#include <vector>

#include "mmu/kvm_impl.h"
#include "mmu/tdx_merge_policy.h"

namespace septsim::mmu {

namespace {

class C final : public TdxMergePolicy {
 public:
  const char* name() const override { return "C"; }

  void dirty_logging_stopped(Kvm::Impl& k, const Memslot& slot) override {
    if (!k.td || k.td->torn_down() || k.split_ranges.empty()) return;
    const Cycles before = k.op.spent;
    std::vector<Gfn> ready;
    for (const auto& [base, range] : k.split_ranges.by_gfn())
      if (base >= slot.base_gfn && base < slot.end_gfn() && !range.blocked) ready.push_back(base);
    std::erase_if(ready, [&k](Gfn base) { return k.merge_ready(base) == 0; });
    std::vector<Gfn> blocked;
    for (Gfn base : ready)
      if (k.td->block_for_merge(base, PG_LEVEL_2M, k.op)) blocked.push_back(base);
    // debug.inject=promote-without-track: the later PROMOTE finds no TRACK.
    if (!blocked.empty() && (k.inject.fire(Inject::PromoteWithoutTrack) || k.td->track_and_kick(0, k.op))) {
      for (Gfn base : blocked) k.split_ranges.find(base)->blocked = true;
      k.merge_stats.blocked += blocked.size();
    }
    k.td->resume_vcpus(k.op);
    k.merge_stats.cycles += k.op.spent - before;
  }

  void before_private_fault(Kvm::Impl& k, Gfn gfn, unsigned initiator) override {
    if (k.split_ranges.empty()) return;
    const Gfn base = split_range_base(gfn);
    const SplitPrivateRanges::Range* range = k.split_ranges.find(base);
    if (!range || !range->blocked) return;
    const Cycles before = k.op.spent;
    // The range is BLOCKed and TRACKed already: no TRACK, so the fault path
    // keeps its read lock, as KVM replaces a table by a huge leaf under it.
    auto lock = k.lock(MmuLockMode::Read);
    if (const u64 huge = k.merge_ready(base)) {
      k.promote_range(base, huge);  // BLOCKed and TRACKed when dirty logging stopped
    } else {
      // Logging started again (or attributes changed): stay 4K for now.
      k.unblock_split_ranges(base, base + pages_per_level(PG_LEVEL_2M));
    }
    k.merge_stats.cycles += k.op.spent - before;
  }
};

}  // namespace

std::unique_ptr<TdxMergePolicy> make_tdx_merge_c() { return std::make_unique<C>(); }

}  // namespace septsim::mmu
