// mmu.tdx_huge_pages = v3: "KVM: TDX huge page support for private memory",
// PATCH v3 (Yan Zhao, kvm and x86 lists, 2026-01-06; RFC v2 of August 2025
// introduced the design). docs/kvm-behaviour.md says which points of the
// series septsim reads how, and where the series leaves it open.
// - Any private fault may map 2M: tdx_gmem_max_mapping_level answers 2M and
//   kvm_mmu_max_mapping_level cuts it down by lpage_info as for any VM.
// - An EPT violation that carries the guest's ACCEPT level (a 4K ACCEPT on
//   a page the mirror does not map at 4K) sets KVM_LPAGE_GUEST_INHIBIT_FLAG
//   above that level for the gfn's frames and splits a huge leaf over it
//   (BLOCK, TRACK + kick, DEMOTE) under the write mmu_lock, before the fault
//   maps 4K. The inhibit is global (lpage_info), not per vCPU.
// - Removing a 2M page: BLOCK, TRACK, REMOVE at 2M, then
//   tdh_phymem_page_wbinvd_hkid of each of its 512 4K pages.
// - DEMOTE answered TDX_OPERAND_BUSY: tdx_no_vcpus_enter_start (kick every
//   vCPU, block entry), one retry, TDX_BUG_ON if that fails too.
#include "mmu/spte.h"
#include "mmu/tdx_huge_pages.h"

namespace septsim::mmu {

namespace {

class V3 final : public TdxHugePages {
 public:
  const char* name() const override { return "v3"; }
  int max_private_level(PrivateFaultCause cause) const override {
    return cause == PrivateFaultCause::Accept4K ? PG_LEVEL_4K : PG_LEVEL_2M;
  }
  bool huge_private_leaves() const override { return true; }
  AcceptExit accept_exit() const override { return AcceptExit::InhibitThenSplit; }
  bool wbinvd_per_4k_piece() const override { return true; }
  bool demote_busy_kicks_vcpus() const override { return true; }
};

}  // namespace

std::unique_ptr<TdxHugePages> make_tdx_huge_pages_v3() { return std::make_unique<V3>(); }

}  // namespace septsim::mmu
