// TDX module completion status codes (RAX after a SEAMCALL/TDCALL) and the
// operand ids added into their low 32 bits (include/auto_gen/tdx_error_codes_defs.h).
#pragma once
#include <string>
#include <string_view>

#include "model/types.h"

namespace septsim::seam {

using Status = u64;

// Bits 63:32 name the condition; bits 31:0 usually carry an operand id.
constexpr u64 kStatusMask = 0xFFFFFFFF00000000ull;  // Linux TDX_SEAMCALL_STATUS_MASK
constexpr bool is_error(Status s) { return (s >> 63) != 0; }
constexpr Status status_class(Status s) { return s & kStatusMask; }

// Values from the 1.5 (and, marked 2.0, the DPAMT) error-code headers, 5.3.
constexpr Status TDX_SUCCESS = 0x0000000000000000ull;
constexpr Status TDX_INTERRUPTED_RESUMABLE = 0x8000000300000000ull;
constexpr Status TDX_INTERRUPTED_RESTARTABLE = 0x8000000400000000ull;
constexpr Status TDX_OPERAND_INVALID = 0xC000010000000000ull;
constexpr Status TDX_OPERAND_ADDR_RANGE_ERROR = 0xC000010100000000ull;
constexpr Status TDX_OPERAND_BUSY = 0x8000020000000000ull;
constexpr Status TDX_PREVIOUS_TLB_EPOCH_BUSY = 0x8000020100000000ull;
constexpr Status TDX_SYS_BUSY = 0x8000020200000000ull;
constexpr Status TDX_OPERAND_BUSY_HOST_PRIORITY = 0x8000020400000000ull;
constexpr Status TDX_HOST_PRIORITY_BUSY_TIMEOUT = 0x9000020500000000ull;
constexpr Status TDX_PAGE_METADATA_INCORRECT = 0xC000030000000000ull;
constexpr Status TDX_PAGE_ALREADY_FREE = 0x0000030100000000ull;
constexpr Status TDX_PAGE_NOT_OWNED_BY_TD = 0xC000030200000000ull;
constexpr Status TDX_PAGE_NOT_FREE = 0xC000030300000000ull;
constexpr Status TDX_HPA_RANGE_NOT_FREE = 0xC000030400000000ull;       // 2.0
constexpr Status TDX_NO_PAMT_PAGE_PAIR = 0xC000030500000000ull;        // 2.0
constexpr Status TDX_PAMT_PAGE_NOT_EMPTY = 0xC000030600000000ull;      // 2.0
constexpr Status TDX_MISSING_PAMT_PAGE_PAIR = 0x8000030800000000ull;   // 2.0
constexpr Status TDX_TD_ASSOCIATED_PAGES_EXIST = 0xC000040000000000ull;
constexpr Status TDX_TD_FATAL = 0xE000060400000000ull;
// TDCS_NOT_ALLOCATED and NO_VCPUS are named as in
// intel/tdx-module include/auto_gen_1_5/tdx_error_codes_defs.h (commit 30d22188).
constexpr Status TDX_TDCS_NOT_ALLOCATED = 0xC000060600000000ull;
constexpr Status TDX_TDCX_NUM_INCORRECT = 0xC000061000000000ull;
constexpr Status TDX_LIFECYCLE_STATE_INCORRECT = 0xC000060700000000ull;
constexpr Status TDX_OP_STATE_INCORRECT = 0xC000060800000000ull;
constexpr Status TDX_NO_VCPUS = 0xC000060900000000ull;
constexpr Status TDX_VCPU_STATE_INCORRECT = 0xC000070000000000ull;  // same header from here
constexpr Status TDX_VCPU_ASSOCIATED = 0x8000070100000000ull;
constexpr Status TDX_VCPU_NOT_ASSOCIATED = 0x8000070200000000ull;
constexpr Status TDX_MAX_VCPUS_EXCEEDED = 0xC000070500000000ull;
constexpr Status TDX_TD_KEYS_NOT_CONFIGURED = 0x8000081000000000ull;
constexpr Status TDX_KEY_CONFIGURED = 0x0000081500000000ull;
constexpr Status TDX_WBCACHE_NOT_COMPLETE = 0x8000081700000000ull;
constexpr Status TDX_HKID_NOT_FREE = 0xC000082000000000ull;
constexpr Status TDX_NO_HKID_READY_TO_WBCACHE = 0x0000082100000000ull;
constexpr Status TDX_WBCACHE_RESUME_ERROR = 0xC000082300000000ull;
constexpr Status TDX_FLUSHVP_NOT_DONE = 0x8000082400000000ull;  // 1.5 tdx_error_codes_defs.h
constexpr Status TDX_EPT_WALK_FAILED = 0xC0000B0000000000ull;
constexpr Status TDX_EPT_ENTRY_FREE = 0xC0000B0100000000ull;
constexpr Status TDX_EPT_ENTRY_NOT_FREE = 0xC0000B0200000000ull;
constexpr Status TDX_EPT_ENTRY_NOT_PRESENT = 0xC0000B0300000000ull;
constexpr Status TDX_GPA_RANGE_NOT_BLOCKED = 0xC0000B0600000000ull;
constexpr Status TDX_GPA_RANGE_ALREADY_BLOCKED = 0x00000B0700000000ull;
constexpr Status TDX_TLB_TRACKING_NOT_DONE = 0xC0000B0800000000ull;
constexpr Status TDX_EPT_INVALID_PROMOTE_CONDITIONS = 0xC0000B0900000000ull;
constexpr Status TDX_PAGE_ALREADY_ACCEPTED = 0x00000B0A00000000ull;
constexpr Status TDX_PAGE_SIZE_MISMATCH = 0xC0000B0B00000000ull;
constexpr Status TDX_GPA_RANGE_BLOCKED = 0xC0000B0C00000000ull;
constexpr Status TDX_EPT_ENTRY_STATE_INCORRECT = 0xC0000B0D00000000ull;
constexpr Status TDX_EPT_PAGE_NOT_FREE = 0xC0000B0E00000000ull;
// Not a TDX status: the model's report that a TDCALL ended in an
// EPT-violation TD exit to the VMM instead of returning to the guest
// (class 0xFF is unused by the module).
constexpr Status SEPTSIM_TD_EXIT_EPT_VIOLATION = 0x0000FF0100000000ull;
// Likewise: a TDCALL a pending host interrupt stopped part way (a 2M
// TDG.MEM.PAGE.ACCEPT) ended in an external-interrupt TD exit; the guest
// runs the same TDCALL again once the VMM re-enters it.
constexpr Status SEPTSIM_TD_EXIT_INTERRUPT = 0x0000FF0200000000ull;

// Operand ids (bits 31:0), 5.2.
namespace operand {
constexpr u32 RAX = 0, RCX = 1, RDX = 2, RBX = 3, RBP = 5, RSI = 6, RDI = 7, R8 = 8, R9 = 9, R10 = 10, R11 = 11,
              R12 = 12, R13 = 13;
// TD_PARAMS fields (MNG.INIT), from intel/tdx-module include/auto_gen_1_5/tdx_error_codes_defs.h.
constexpr u32 ATTRIBUTES = 64, XFAM = 65, EXEC_CONTROLS = 66, EPTP_CONTROLS = 67, MAX_VCPUS = 68, CPUID_CONFIG = 69,
              TSC_FREQUENCY = 70, NUM_L2_VMS = 71;
constexpr u32 TDR = 128, TDCX = 129, TDVPR = 130, TDCS = 144, TDVPS = 145, SEPT_TREE = 146, SEPT_ENTRY = 147,
              TD_EPOCH = 169, OP_STATE = 172, SYS = 184, TDMR = 185, KOT = 186, KET = 187, WBCACHE = 188;
}  // namespace operand

constexpr Status with_operand(Status s, u32 op) { return s + op; }

// "TDX_OPERAND_BUSY|SEPT_TREE(146)", "TDX_SUCCESS", or hex for unknown codes.
std::string status_string(Status s);
// Name of the upper 32 bits, nullptr if unknown.
const char* status_name(Status s);
// A name ("TDX_SUCCESS"), a name with its operand ("TDX_OPERAND_INVALID|RCX",
// "TDX_OPERAND_BUSY|SEPT_TREE(146)", "TDX_PAGE_SIZE_MISMATCH|1") or hex ("0xC0000B0D00000001"). `exact`
// is set when the text gives the low 32 bits too (a bare name never does;
// hex does when they are non-zero).
bool parse_status(std::string_view text, Status& out, bool& exact);
// Linux's comparison: upper 32 bits unless the expectation is exact.
constexpr bool status_matches(Status got, Status want, bool exact) {
  return exact ? got == want : status_class(got) == status_class(want);
}

}  // namespace septsim::seam
