// mmu.tdx_huge_pages = v5: "TDX: Dynamic PAMT + S-EPT Hugepage", RFC PATCH v5
// (Sean Christopherson, kvm, linux-coco and x86 lists, 2026-01-28; the
// huge-page part is patches 26-45, Yan Zhao's series rebased on Dynamic
// PAMT), as amended in review up to 2026-06-30 (docs/tdx-series.md). It
// issues v3's SEAMCALLs (2M AUG, BLOCK + TRACK + DEMOTE splits through
// tdh_do_no_vcpus, 512 WBINVDs per 2M removal, no 1G) and differs in:
// - the ACCEPT exit (41/45, tdx_handle_mismatched_accept): when
//   KVM_LPAGE_GUEST_INHIBIT_FLAG is already set one level above the ACCEPT
//   level, nothing (no lock); otherwise the write mmu_lock is taken whether
//   or not a leaf needs splitting, the range is split down to the ACCEPT
//   level, and only then the flag is set (level + 1, and level + 2 for a 4K
//   ACCEPT). A 2M ACCEPT's exit takes the lock too (it would split a 1G
//   leaf, which KVM never maps for a TD).
// - the module feature: __tdx_bringup clears enable_tdx_huge_page unless the
//   module has TDX_FEATURES0.ENHANCE_DEMOTE_INTERRUPTIBILITY (30/45), under
//   which DEMOTE never returns TDX_INTERRUPTED_RESTARTABLE. Without it the
//   TD maps 4K, as the merged kernel does.
// When 2M may be mapped (45/45): once the TD is RUNNABLE, as in v3.
#include "mmu/spte.h"
#include "mmu/tdx_huge_pages.h"

namespace septsim::mmu {

namespace {

class V5 final : public TdxHugePages {
 public:
  const char* name() const override { return "v5"; }
  int max_private_level(PrivateFaultCause cause) const override {
    return cause == PrivateFaultCause::Accept4K ? PG_LEVEL_4K : PG_LEVEL_2M;
  }
  bool huge_private_leaves() const override { return true; }
  AcceptExit accept_exit() const override { return AcceptExit::SplitThenInhibit; }
  bool needs_demote_interruptibility() const override { return true; }
  bool wbinvd_per_4k_piece() const override { return true; }
  bool demote_busy_kicks_vcpus() const override { return true; }
};

}  // namespace

std::unique_ptr<TdxHugePages> make_tdx_huge_pages_v5() { return std::make_unique<V5>(); }

}  // namespace septsim::mmu
