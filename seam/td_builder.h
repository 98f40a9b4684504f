// The VMM's TD creation sequence (arch/x86/kvm/vmx/tdx.c: __tdx_td_init, tdx_td_vcpu_init): MNG.CREATE, MNG.KEY.CONFIG
// (once per package, host.packages),
// MNG.ADDCX x N, MNG.INIT (TD_PARAMS in a shared host page), then per vCPU
// VP.CREATE, VP.ADDCX x M, VP.INIT (on `lp`, which the vCPUs are then
// associated with; unnamed by default).
// Pages come from the host allocator; with Dynamic PAMT each page's 2 MiB
// region gets its PAMT pair first, as the kernel's tdx_alloc_control_page does.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "model/phys_mem.h"
#include "seam/pamt_refcount.h"
#include "seam/tdx_module.h"

namespace septsim::seam {

struct TdCreateParams {
  u32 vcpus = 1;
  int gpaw = 48;       // 48 or 52
  int ept_levels = 4;  // 4 or 5
  u16 hkid = 1;
  // Stop after TDH.MNG.CREATE: the caller runs TDH.MNG.KEY.CONFIG itself (a
  // scenario of several packages) and builds nothing more.
  bool create_only = false;
  // Written for MNG.INIT instead of td_params_for(gpaw, ept_levels, vcpus).
  std::optional<TdParams> td_params;
  // The LP each vCPU's TDH.VP.INIT runs on (KVM_TDX_INIT_VCPU runs on the
  // vCPU's own thread, and the module associates the vCPU with that LP);
  // vCPUs past its end use build_td's `lp`.
  std::vector<u32> vcpu_lps;
};

struct TdHandle {
  Hpa tdr = 0;
  std::vector<Hpa> tdvpr;
};

struct TdBuildResult {
  Status status = TDX_SUCCESS;
  std::string failed_leaf;  // empty on success
  Cycles cycles = 0;
};

TdBuildResult build_td(TdxModule& tdx, model::PhysMem& mem, PamtRefcount& dpamt, const TdCreateParams& p,
                       TdHandle& out, unsigned initiator = 0, Cycles start = 0,
                       u32 lp = SeamcallTxn::kUnnamedLp);

}  // namespace septsim::seam
