// TD control state the module keeps per TD (TDR + TDCS) and per vCPU (TDVPS),
// as the module's TDR, TDCS and TDVPS structures hold it.
#pragma once
#include <memory>
#include <vector>

#include "seam/op_state.h"
#include "seam/sept_tree.h"
#include "seam/tlb_tracking.h"
#include "seam/zero_step.h"

namespace septsim::model {
class VcpuControl;
}

namespace septsim::seam {

struct TdVcpu {
  Hpa tdvpr = 0;
  std::vector<Hpa> tdcx;
  bool initialized = false;  // TDH.VP.INIT
  bool in_guest = false;     // between VP.ENTER and the TD exit
  bool associated = false;   // VP.INIT or VP.ENTER until VP.FLUSH (TDVPS.ASSOC_LPID set)
  // TDVPS.ASSOC_LPID while `associated`: the LP, or kUnnamedLp when the
  // call that associated it did not name one (then any LP matches).
  u32 assoc_lp = ~u32{0};
  u64 vcpu_epoch = 0;
  ZeroStep zero_step;  // EPT-violation stepping filter state (TDVPS)
  model::VcpuControl* hw = nullptr;  // the hardware vCPU this TD vCPU runs on, if bound
};

struct Td {
  Hpa tdr = 0;
  u16 hkid = 0;
  Lifecycle lifecycle = Lifecycle::TD_HKID_ASSIGNED;
  OpState op_state = OpState::UNINITIALIZED;
  bool fatal = false;
  bool debug = false;  // TD_PARAMS.ATTRIBUTES.DEBUG
  u64 chldcnt = 0;  // 4K-equivalent pages owned by the TD (TDR.CHLDCNT)
  // TDR.PKG_CONFIG_BITMAP: the packages TDH.MNG.KEY.CONFIG ran on.
  u64 pkg_config_bitmap = 0;
  // The HKID's KOT entry: FLUSHED from VPFLUSHDONE on, and its WBINVD_BITMAP
  // (a bit per package, set by VPFLUSHDONE, cleared on each package by a
  // complete TDH.PHYMEM.CACHE.WB there).
  bool hkid_flushed = false;
  u64 wbinvd_bitmap = 0;
  u64 wbt_flushed = 0;  // per package: in its WBT entry (a CACHE.WB started there since it was FLUSHED)
  std::vector<Hpa> tdcs;
  int gpaw = 48;        // TD_PARAMS.CONFIG_FLAGS.GPAW: 48 or 52
  int ept_levels = 4;   // TD_PARAMS.EPTP_CONTROLS walk length
  unsigned max_vcpus = 0;  // TD_PARAMS.MAX_VCPUS
  Epochs epochs;
  std::unique_ptr<SeptTree> sept;  // exists once TDCS page 3 is added
  std::vector<TdVcpu> vcpus;

  unsigned shared_bit() const { return unsigned(gpaw) - 1; }  // 47 or 51 (8)
  // TDCS.NUM_VCPUS: the vCPUs VP.INIT counted.
  unsigned num_vcpus() const {
    unsigned n = 0;
    for (const auto& v : vcpus) n += v.initialized;
    return n;
  }
  // A vCPU between VP.ENTER and its TD exit holds the TDR and its TDVPR shared.
  bool vcpu_in_guest() const {
    for (const auto& v : vcpus)
      if (v.in_guest) return true;
    return false;
  }
  TdVcpu* vcpu(Hpa tdvpr) {
    for (auto& v : vcpus)
      if (v.tdvpr == tdvpr) return &v;
    return nullptr;
  }
};

constexpr unsigned kSeptRootTdcsIndex = 3;  // SEPT_ROOT_PAGE_INDEX

}  // namespace septsim::seam
