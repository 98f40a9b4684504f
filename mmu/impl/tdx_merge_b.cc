// mmu.tdx_merge_policy = B (seed study 004, docs/studies.md 1): after a TD's
// private EPT violation is handled, its own 2M range, else the oldest split
// range, is promoted if ready (BLOCK, TRACK and kick, PROMOTE).
#include <optional>

#include "mmu/kvm_impl.h"
#include "mmu/tdx_merge_policy.h"

namespace septsim::mmu {

namespace {

class B final : public TdxMergePolicy {
 public:
  const char* name() const override { return "B"; }

  void after_private_fault(Kvm::Impl& k, Gfn gfn, unsigned initiator) override {
    if (!k.td || k.td->torn_down() || k.split_ranges.empty()) return;
    const Cycles before = k.op.spent;
    std::optional<Gfn> pick;
    {
      // The check runs under the read lock; only a ready range takes the write lock.
      auto lock = k.lock(MmuLockMode::Read);
      const Gfn base = split_range_base(gfn);
      if (k.split_ranges.find(base)) {
        ++k.merge_stats.scanned;
        if (k.merge_ready(base)) pick = base;
      }
      if (!pick) {
        const std::optional<Gfn> oldest = k.split_ranges.oldest();
        if (oldest && *oldest != base) {
          ++k.merge_stats.scanned;
          if (k.merge_ready(*oldest))
            pick = oldest;
          else
            k.split_ranges.rotate(*oldest);
        }
      }
    }
    if (pick) {
      auto lock = k.lock(MmuLockMode::Write);
      // Re-checked: the range may have changed while the lock was dropped.
      if (const u64 huge = k.merge_ready(*pick)) k.merge_ranges({{*pick, huge}});
    }
    k.merge_stats.cycles += k.op.spent - before;
  }
};

}  // namespace

std::unique_ptr<TdxMergePolicy> make_tdx_merge_b() { return std::make_unique<B>(); }

}  // namespace septsim::mmu
