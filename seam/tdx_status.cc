#include "seam/tdx_status.h"

#include <cstdio>

namespace septsim::seam {

namespace {

struct Named {
  Status value;
  const char* name;
};

constexpr Named kStatuses[] = {
    {TDX_SUCCESS, "TDX_SUCCESS"},
    {TDX_INTERRUPTED_RESUMABLE, "TDX_INTERRUPTED_RESUMABLE"},
    {TDX_INTERRUPTED_RESTARTABLE, "TDX_INTERRUPTED_RESTARTABLE"},
    {TDX_OPERAND_INVALID, "TDX_OPERAND_INVALID"},
    {TDX_OPERAND_ADDR_RANGE_ERROR, "TDX_OPERAND_ADDR_RANGE_ERROR"},
    {TDX_OPERAND_BUSY, "TDX_OPERAND_BUSY"},
    {TDX_PREVIOUS_TLB_EPOCH_BUSY, "TDX_PREVIOUS_TLB_EPOCH_BUSY"},
    {TDX_SYS_BUSY, "TDX_SYS_BUSY"},
    {TDX_OPERAND_BUSY_HOST_PRIORITY, "TDX_OPERAND_BUSY_HOST_PRIORITY"},
    {TDX_HOST_PRIORITY_BUSY_TIMEOUT, "TDX_HOST_PRIORITY_BUSY_TIMEOUT"},
    {TDX_PAGE_METADATA_INCORRECT, "TDX_PAGE_METADATA_INCORRECT"},
    {TDX_PAGE_ALREADY_FREE, "TDX_PAGE_ALREADY_FREE"},
    {TDX_PAGE_NOT_OWNED_BY_TD, "TDX_PAGE_NOT_OWNED_BY_TD"},
    {TDX_PAGE_NOT_FREE, "TDX_PAGE_NOT_FREE"},
    {TDX_HPA_RANGE_NOT_FREE, "TDX_HPA_RANGE_NOT_FREE"},
    {TDX_NO_PAMT_PAGE_PAIR, "TDX_NO_PAMT_PAGE_PAIR"},
    {TDX_PAMT_PAGE_NOT_EMPTY, "TDX_PAMT_PAGE_NOT_EMPTY"},
    {TDX_MISSING_PAMT_PAGE_PAIR, "TDX_MISSING_PAMT_PAGE_PAIR"},
    {TDX_TD_ASSOCIATED_PAGES_EXIST, "TDX_TD_ASSOCIATED_PAGES_EXIST"},
    {TDX_TD_FATAL, "TDX_TD_FATAL"},
    {TDX_TDCS_NOT_ALLOCATED, "TDX_TDCS_NOT_ALLOCATED"},
    {TDX_TDCX_NUM_INCORRECT, "TDX_TDCX_NUM_INCORRECT"},
    {TDX_LIFECYCLE_STATE_INCORRECT, "TDX_LIFECYCLE_STATE_INCORRECT"},
    {TDX_OP_STATE_INCORRECT, "TDX_OP_STATE_INCORRECT"},
    {TDX_NO_VCPUS, "TDX_NO_VCPUS"},
    {TDX_VCPU_STATE_INCORRECT, "TDX_VCPU_STATE_INCORRECT"},
    {TDX_VCPU_ASSOCIATED, "TDX_VCPU_ASSOCIATED"},
    {TDX_VCPU_NOT_ASSOCIATED, "TDX_VCPU_NOT_ASSOCIATED"},
    {TDX_MAX_VCPUS_EXCEEDED, "TDX_MAX_VCPUS_EXCEEDED"},
    {TDX_TD_KEYS_NOT_CONFIGURED, "TDX_TD_KEYS_NOT_CONFIGURED"},
    {TDX_KEY_CONFIGURED, "TDX_KEY_CONFIGURED"},
    {TDX_WBCACHE_NOT_COMPLETE, "TDX_WBCACHE_NOT_COMPLETE"},
    {TDX_HKID_NOT_FREE, "TDX_HKID_NOT_FREE"},
    {TDX_NO_HKID_READY_TO_WBCACHE, "TDX_NO_HKID_READY_TO_WBCACHE"},
    {TDX_WBCACHE_RESUME_ERROR, "TDX_WBCACHE_RESUME_ERROR"},
    {TDX_FLUSHVP_NOT_DONE, "TDX_FLUSHVP_NOT_DONE"},
    {TDX_EPT_WALK_FAILED, "TDX_EPT_WALK_FAILED"},
    {TDX_EPT_ENTRY_FREE, "TDX_EPT_ENTRY_FREE"},
    {TDX_EPT_ENTRY_NOT_FREE, "TDX_EPT_ENTRY_NOT_FREE"},
    {TDX_EPT_ENTRY_NOT_PRESENT, "TDX_EPT_ENTRY_NOT_PRESENT"},
    {TDX_GPA_RANGE_NOT_BLOCKED, "TDX_GPA_RANGE_NOT_BLOCKED"},
    {TDX_GPA_RANGE_ALREADY_BLOCKED, "TDX_GPA_RANGE_ALREADY_BLOCKED"},
    {TDX_TLB_TRACKING_NOT_DONE, "TDX_TLB_TRACKING_NOT_DONE"},
    {TDX_EPT_INVALID_PROMOTE_CONDITIONS, "TDX_EPT_INVALID_PROMOTE_CONDITIONS"},
    {TDX_PAGE_ALREADY_ACCEPTED, "TDX_PAGE_ALREADY_ACCEPTED"},
    {TDX_PAGE_SIZE_MISMATCH, "TDX_PAGE_SIZE_MISMATCH"},
    {TDX_GPA_RANGE_BLOCKED, "TDX_GPA_RANGE_BLOCKED"},
    {TDX_EPT_ENTRY_STATE_INCORRECT, "TDX_EPT_ENTRY_STATE_INCORRECT"},
    {TDX_EPT_PAGE_NOT_FREE, "TDX_EPT_PAGE_NOT_FREE"},
    {SEPTSIM_TD_EXIT_EPT_VIOLATION, "TD_EXIT_EPT_VIOLATION"},
    {SEPTSIM_TD_EXIT_INTERRUPT, "TD_EXIT_INTERRUPT"},
};

struct OperandName {
  u32 id;
  const char* name;
};

constexpr OperandName kOperands[] = {
    {operand::RAX, "RAX"}, {operand::RCX, "RCX"}, {operand::RDX, "RDX"}, {operand::RBX, "RBX"},
    {operand::RBP, "RBP"}, {operand::RSI, "RSI"}, {operand::RDI, "RDI"}, {operand::R8, "R8"},
    {operand::R9, "R9"}, {operand::R10, "R10"}, {operand::R11, "R11"}, {operand::R12, "R12"},
    {operand::R13, "R13"}, {operand::ATTRIBUTES, "ATTRIBUTES"}, {operand::XFAM, "XFAM"},
    {operand::EXEC_CONTROLS, "EXEC_CONTROLS"}, {operand::EPTP_CONTROLS, "EPTP_CONTROLS"},
    {operand::MAX_VCPUS, "MAX_VCPUS"}, {operand::CPUID_CONFIG, "CPUID_CONFIG"},
    {operand::TSC_FREQUENCY, "TSC_FREQUENCY"}, {operand::NUM_L2_VMS, "NUM_L2_VMS"}, {operand::TDR, "TDR"}, {operand::TDCX, "TDCX"}, {operand::TDVPR, "TDVPR"},
    {operand::TDCS, "TDCS"}, {operand::TDVPS, "TDVPS"}, {operand::SEPT_TREE, "SEPT_TREE"},
    {operand::SEPT_ENTRY, "SEPT_ENTRY"}, {operand::TD_EPOCH, "TD_EPOCH"}, {operand::OP_STATE, "OP_STATE"},
    {operand::SYS, "SYS"}, {operand::TDMR, "TDMR"}, {operand::KOT, "KOT"}, {operand::KET, "KET"},
    {operand::WBCACHE, "WBCACHE"},
};

std::string hex(u64 v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%016llX", static_cast<unsigned long long>(v));
  return b;
}

}  // namespace

const char* status_name(Status s) {
  for (const auto& n : kStatuses)
    if (n.value == status_class(s)) return n.name;
  return nullptr;
}

std::string status_string(Status s) {
  const char* name = status_name(s);
  if (!name) return hex(s);
  std::string r = name;
  u32 low = u32(s);
  if (low == 0) return r;
  for (const auto& o : kOperands)
    if (o.id == low) return r + "|" + o.name + "(" + std::to_string(low) + ")";
  return r + "|" + std::to_string(low);
}

bool parse_status(std::string_view text, Status& out, bool& exact) {
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    if (text.size() > 18) return false;
    u64 v = 0;
    for (char c : text.substr(2)) {
      unsigned d;
      if (c >= '0' && c <= '9') d = unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') d = unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = unsigned(c - 'A' + 10);
      else return false;
      v = v << 4 | d;
    }
    out = v;
    exact = u32(v) != 0;
    return true;
  }
  // "NAME|OPERAND" (status_string's form, e.g. "TDX_OPERAND_BUSY|SEPT_TREE")
  // names the operand id too, so it is compared exactly.
  const size_t bar = text.find('|');
  const std::string_view name = text.substr(0, bar);
  for (const auto& n : kStatuses)
    if (name == n.name) {
      out = n.value;
      exact = false;
      if (bar == std::string_view::npos) return true;
      std::string_view op = text.substr(bar + 1);
      if (const size_t paren = op.find('('); paren != std::string_view::npos) op = op.substr(0, paren);
      for (const auto& o : kOperands)
        if (op == o.name) {
          out += o.id;
          exact = true;
          return true;
        }
      // A number: ACCEPT's level operand ("TDX_PAGE_SIZE_MISMATCH|1").
      if (op.empty() || op.size() > 9 || op.find_first_not_of("0123456789") != std::string_view::npos) return false;
      u32 id = 0;
      for (char ch : op) id = id * 10 + u32(ch - '0');
      out += id;
      exact = true;
      return true;
    }
  return false;
}

}  // namespace septsim::seam
