// Golden status codes for the seam tests, written out from the TDX module
// 1.5 source (intel/tdx-module, include/auto_gen/tdx_error_codes_defs.h and
// the OPERAND_ID_* values of the same header), not taken from seam/tdx_status.h,
// so that a wrong constant in the model cannot make a test agree with it.
#pragma once
#include "model/types.h"

namespace septsim::seamtest::golden {

using Code = u64;

constexpr Code kInterruptedResumable = 0x8000000300000000ull;
constexpr Code kOperandInvalid = 0xC000010000000000ull;
constexpr Code kAddrRangeError = 0xC000010100000000ull;
constexpr Code kOperandBusy = 0x8000020000000000ull;
constexpr Code kMetadataIncorrect = 0xC000030000000000ull;
constexpr Code kLifecycleIncorrect = 0xC000060700000000ull;
constexpr Code kVcpuAssociated = 0x8000070100000000ull;
constexpr Code kVcpuNotAssociated = 0x8000070200000000ull;
constexpr Code kTdKeysNotConfigured = 0x8000081000000000ull;
constexpr Code kKeyConfigured = 0x0000081500000000ull;
constexpr Code kWbcacheNotComplete = 0x8000081700000000ull;
constexpr Code kNoHkidReadyToWbcache = 0x0000082100000000ull;
constexpr Code kWbcacheResumeError = 0xC000082300000000ull;
constexpr Code kFlushvpNotDone = 0x8000082400000000ull;
constexpr Code kEptEntryNotPresent = 0xC0000B0300000000ull;

// OPERAND_ID_*.
constexpr u32 kRcx = 1, kRdx = 2, kR8 = 8, kR9 = 9;

}  // namespace septsim::seamtest::golden
