#include "seam/td_params.h"

namespace septsim::seam {

namespace {

constexpr u64 kEptpMtWb = 6;
constexpr u64 kEptpMtMask = 7, kEptpAd = 1ull << 6, kEptpSss = 1ull << 7;

// check_xfam: fixed-1 bits set, and the feature groups that must be enabled
// together are (AVX-512 = bits 5-7 with AVX bit 2, CET U/S = 11-12, AMX = 17-18).
bool xfam_valid(u64 x) {
  auto bit = [x](unsigned b) { return (x >> b) & 1; };
  if ((x & kXfamFixed1) != kXfamFixed1) return false;
  if (bit(5) && !bit(2)) return false;
  return bit(5) == bit(6) && bit(5) == bit(7) && bit(11) == bit(12) && bit(17) == bit(18);
}

// verify_and_set_td_eptp_controls: WB, 4- or 5-level, no A/D, no SSS, no
// reserved or base-address bits (the module inserts the SEPT root); a 52-bit
// GPAW needs the 5-level walk, and the 5-level walk a platform MAX_PA of at
// least MIN_PA_FOR_PML5 (49) bits.
bool eptp_valid(u64 e, bool gpaw52, unsigned max_pa) {
  const int levels = int((e >> 3) & 7) + 1;
  if ((e & kEptpMtMask) != kEptpMtWb || levels < 4 || levels > 5) return false;
  if (e & (kEptpAd | kEptpSss | ~0xFFull)) return false;
  if (levels == 5 && max_pa < 49) return false;
  return !(gpaw52 && levels < 5);
}

}  // namespace

TdParams td_params_for(int gpaw, int ept_levels, unsigned max_vcpus) {
  TdParams p;
  p.xfam = kXfamFixed1;
  p.max_vcpus = u16(max_vcpus);
  p.eptp_controls = kEptpMtWb | (u64(ept_levels - 1) << 3);
  p.config_flags = gpaw == 52 ? kConfigFlagsGpaw : 0;
  p.tsc_frequency = 100;  // 2.5 GHz
  return p;
}

Status verify_td_params(const TdParams& p, unsigned max_pa) {
  if (p.attributes & ~kAttributesFixed0) return with_operand(TDX_OPERAND_INVALID, operand::ATTRIBUTES);
  if (!xfam_valid(p.xfam)) return with_operand(TDX_OPERAND_INVALID, operand::XFAM);
  if (p.max_vcpus == 0 || p.max_vcpus > kMaxVcpusPerTd) return with_operand(TDX_OPERAND_INVALID, operand::MAX_VCPUS);
  if (p.num_l2_vms > kMaxL2Vms) return with_operand(TDX_OPERAND_INVALID, operand::NUM_L2_VMS);
  if (p.num_l2_vms > 0) return TDX_TDCS_NOT_ALLOCATED;
  if (p.reserved_set) return with_operand(TDX_OPERAND_INVALID, operand::RDX);
  if (p.config_flags & ~kConfigFlagsKnown) return with_operand(TDX_OPERAND_INVALID, operand::EXEC_CONTROLS);
  if (!eptp_valid(p.eptp_controls, p.config_flags & kConfigFlagsGpaw, max_pa))
    return with_operand(TDX_OPERAND_INVALID, operand::EPTP_CONTROLS);
  if (p.tsc_frequency < kVirtTscFrequencyMin || p.tsc_frequency > kVirtTscFrequencyMax)
    return with_operand(TDX_OPERAND_INVALID, operand::TSC_FREQUENCY);
  return TDX_SUCCESS;
}

}  // namespace septsim::seam
