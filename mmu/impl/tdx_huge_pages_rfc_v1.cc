// mmu.tdx_huge_pages = rfc-v1: the first TDX huge-page RFC ("KVM: TDX huge
// page support for private memory", RFC v1, kvm list, April 2025;
// docs/kvm-behaviour.md). The ACCEPT level reaches the MMU per vCPU
// through private_max_mapping_level: an ordinary EPT violation still maps
// 4K; only an ACCEPT of a 2M range that exits with an EPT violation maps
// the range at 2M, and a partial private -> shared conversion splits it
// back (BLOCK, TRACK, DEMOTE). Removal writes the 2M page back with one
// WBINVD and a BUSY DEMOTE retries in place: septsim's behaviour before the
// v3 switch, kept so earlier numbers can be had again.
#include "mmu/spte.h"
#include "mmu/tdx_huge_pages.h"

namespace septsim::mmu {

namespace {

class RfcV1 final : public TdxHugePages {
 public:
  const char* name() const override { return "rfc-v1"; }
  int max_private_level(PrivateFaultCause cause) const override {
    return cause == PrivateFaultCause::Accept2M ? PG_LEVEL_2M : PG_LEVEL_4K;
  }
  bool huge_private_leaves() const override { return true; }
  AcceptExit accept_exit() const override { return AcceptExit::FaultOnly; }
  bool wbinvd_per_4k_piece() const override { return false; }
  bool demote_busy_kicks_vcpus() const override { return false; }
};

}  // namespace

std::unique_ptr<TdxHugePages> make_tdx_huge_pages_rfc_v1() { return std::make_unique<RfcV1>(); }

}  // namespace septsim::mmu
