// TD_PARAMS: the 1024-byte, 1024-aligned structure in a shared host page that
// TDH.MNG.INIT reads from the HPA in RDX (intel/tdx-module tdx_api_defs.h
// td_params_t; checks in tdh_mng_init.c read_and_set_td_configurations).
// PhysMem keeps a tag per page, not bytes, so the VMM's write of the
// structure is kept as a typed record per HPA (TdParamsPages). The fields the
// module checks are modelled; MR_CONFIG_ID/MR_OWNER/MR_OWNER_CONFIG and the
// CPUID configuration are not.
#pragma once
#include <map>

#include "seam/tdx_status.h"

namespace septsim::seam {

// ATTRIBUTES bits a 1.5 module accepts (TDX_ATTRIBUTES_FIXED0: DEBUG,
// SEPT_VE_DISABLE, MIGRATABLE, PKS, PERFMON); FIXED1 is 0.
constexpr u64 kAttributesDebug = 1ull << 0, kAttributesSeptVeDisable = 1ull << 28, kAttributesMigratable = 1ull << 29,
              kAttributesPks = 1ull << 30, kAttributesPerfmon = 1ull << 63;
constexpr u64 kAttributesFixed0 =
    kAttributesDebug | kAttributesSeptVeDisable | kAttributesMigratable | kAttributesPks | kAttributesPerfmon;
constexpr u64 kXfamFixed1 = 0x3;  // TDX_XFAM_FIXED1: x87 and SSE state
constexpr u64 kConfigFlagsGpaw = 1ull << 0;
constexpr u64 kConfigFlagsKnown = 0x7;  // GPAW, FLEXIBLE_PENDING_VE, NO_RBP_MOD
constexpr unsigned kMaxVcpusPerTd = 576;  // MAX_VCPUS_PER_TD
constexpr unsigned kMaxL2Vms = 3;         // MAX_L2_VMS
constexpr u16 kVirtTscFrequencyMin = 4, kVirtTscFrequencyMax = 400;  // 25 MHz units: 100 MHz .. 10 GHz
constexpr u64 kTdParamsAlign = 1024;  // TD_PARAMS_ALIGN_IN_BYTES

struct TdParams {
  u64 attributes = 0;     // ATTRIBUTES (offset 0)
  u64 xfam = 0;           // XFAM (offset 8): XCR0 | IA32_XSS features the TD may enable
  u16 max_vcpus = 0;      // MAX_VCPUS (offset 16)
  u8 num_l2_vms = 0;      // NUM_L2_VMS (offset 18): TD-partitioning L2 VMs
  u64 eptp_controls = 0;  // EPTP_CONTROLS (offset 24): MT bits 2:0, PWL bits 5:3 (levels - 1), A/D bit 6, SSS bit 7
  u64 config_flags = 0;   // CONFIG_FLAGS (offset 32): GPAW bit 0, FLEXIBLE_PENDING_VE 1, NO_RBP_MOD 2
  u16 tsc_frequency = 0;  // TSC_FREQUENCY (offset 40), 25 MHz units
  bool reserved_set = false;  // some RESERVED byte is non-zero (checked where RESERVED_0 is)
};

// What KVM writes for a TD of `gpaw` (48/52) with an `ept_levels` Secure EPT
// and up to `max_vcpus` vCPUs: WB EPTP of that walk length, x87+SSE, 2.5 GHz TSC.
TdParams td_params_for(int gpaw, int ept_levels, unsigned max_vcpus);
constexpr int td_params_ept_levels(const TdParams& p) { return int((p.eptp_controls >> 3) & 7) + 1; }
constexpr int td_params_gpaw(const TdParams& p) { return (p.config_flags & kConfigFlagsGpaw) ? 52 : 48; }

// MNG.INIT's checks in the module's order: TDX_SUCCESS, TDX_OPERAND_INVALID
// with the field's operand id, or TDX_TDCS_NOT_ALLOCATED for L2 VMs (the
// model's TDCS has no pages for them).
Status verify_td_params(const TdParams& p, unsigned max_pa);

// The TD_PARAMS the VMM wrote, by the HPA of the structure. A structure never
// written reads as all zeroes, as a zeroed page would.
class TdParamsPages {
 public:
  void write(Hpa hpa, const TdParams& p) { pages_[hpa] = p; }
  TdParams read(Hpa hpa) const {
    auto it = pages_.find(hpa);
    return it == pages_.end() ? TdParams{} : it->second;
  }

 private:
  std::map<Hpa, TdParams> pages_;
};

}  // namespace septsim::seam
