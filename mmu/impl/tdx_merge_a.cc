// mmu.tdx_merge_policy = A (seed study 004, docs/studies.md 1): the
// NX-recovery worker (kvm_nx_huge_page_recovery_worker's place) visits the
// oldest ceil(n / mmu.nx_huge_pages_recovery_ratio) split ranges per run and
// promotes the ready ones: BLOCK each, one TRACK and kick for all, PROMOTE each.
#include "mmu/kvm_impl.h"
#include "mmu/tdx_merge_policy.h"

namespace septsim::mmu {

namespace {

class A final : public TdxMergePolicy {
 public:
  const char* name() const override { return "A"; }

  void nx_recovery_tick(Kvm::Impl& k) override {
    if (!k.td || k.td->torn_down() || k.split_ranges.empty() || !k.nx_recovery_ratio) return;
    // TRACK needs the write side (rule 20), so the TDX worker cannot use the
    // read lock the NX recovery of shared pages takes.
    auto lock = k.lock(MmuLockMode::Write);
    const u64 to_visit = (k.split_ranges.size() + k.nx_recovery_ratio - 1) / k.nx_recovery_ratio;
    std::vector<Kvm::Impl::ReadyRange> ready;
    for (u64 i = 0; i < to_visit; ++i) {
      const Gfn base = *k.split_ranges.oldest();
      ++k.merge_stats.scanned;
      if (const u64 huge = k.merge_ready(base)) ready.push_back({base, huge});
      k.split_ranges.rotate(base);
    }
    if (!ready.empty()) k.merge_ranges(ready);
    k.merge_stats.cycles += k.op.spent;
  }
};

}  // namespace

std::unique_ptr<TdxMergePolicy> make_tdx_merge_a() { return std::make_unique<A>(); }

}  // namespace septsim::mmu
