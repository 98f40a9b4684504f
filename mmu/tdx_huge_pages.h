// How large a TD's private mappings may be: the value of mmu.tdx_huge_pages,
// one variant per file in mmu/impl/. The merged kernel maps private memory
// at 4K only (arch/x86/kvm/vmx/tdx.c:tdx_gmem_max_mapping_level, reached
// through kvm_x86_ops.gmem_max_mapping_level); the RFC series that add huge
// pages are variants, each named after the series it follows
// (docs/kvm-behaviour.md).
#pragma once
#include <memory>
#include <string>

#include "model/types.h"

namespace septsim::mmu {

// Why KVM maps a private gfn.
enum class PrivateFaultCause : u8 {
  EptViolation,  // a TD vCPU's access faulted (the exit carries no ACCEPT level)
  Accept4K,      // TDG.MEM.PAGE.ACCEPT of a 4K page exited with an EPT violation
  Accept2M,      // TDG.MEM.PAGE.ACCEPT of a 2M range exited with an EPT violation
};

// What KVM does on the exit of a guest ACCEPT whose level the mirror does
// not map, before it faults the page in.
enum class AcceptExit : u8 {
  FaultOnly,         // nothing more (the merged kernel, rfc-v1)
  InhibitThenSplit,  // v3: a 4K ACCEPT sets KVM_LPAGE_GUEST_INHIBIT_FLAG at 2M and 1G, then
                     // splits a 2M leaf over the page under the write mmu_lock if there is one
  SplitThenInhibit,  // RFC v5 (41/45, tdx_handle_mismatched_accept): nothing when the flag is
                     // already set one level above the ACCEPT's; else the write mmu_lock, the
                     // split, then the flag (one level up, and two for a 4K ACCEPT); 2M ACCEPTs too
};

class TdxHugePages {
 public:
  virtual ~TdxHugePages() = default;
  virtual const char* name() const = 0;
  // The largest level (KVM's PG_LEVEL_*) a private fault of this cause may
  // map, before KVM's own limits (lpage_info, dirty logging, what the
  // mirror already holds) cut it down.
  virtual int max_private_level(PrivateFaultCause cause) const = 0;
  // Whether a private 2M leaf can exist at all: without huge pages KVM
  // never splits or merges private mappings.
  virtual bool huge_private_leaves() const = 0;
  virtual AcceptExit accept_exit() const = 0;
  // The series maps huge only when the TDX module reports
  // TDX_FEATURES0.ENHANCE_DEMOTE_INTERRUPTIBILITY (seam.enhance_demote_interruptibility);
  // without it KVM turns huge pages off at module load (tdx.c:__tdx_bringup).
  virtual bool needs_demote_interruptibility() const { return false; }
  // The removal of a private 2M page writes its cache lines back with one
  // TDH.PHYMEM.PAGE.WBINVD per 4K piece (512), not one call.
  virtual bool wbinvd_per_4k_piece() const = 0;
  // A DEMOTE answered TDX_OPERAND_BUSY is retried once with every vCPU
  // kicked out and entry blocked (as BLOCK/TRACK/REMOVE), not in place.
  virtual bool demote_busy_kicks_vcpus() const = 0;

  // Throws model::ConfigError naming the key for an unknown value.
  static std::unique_ptr<TdxHugePages> create(const std::string& value);
};

std::unique_ptr<TdxHugePages> make_tdx_huge_pages_off();
std::unique_ptr<TdxHugePages> make_tdx_huge_pages_rfc_v1();
std::unique_ptr<TdxHugePages> make_tdx_huge_pages_v3();
std::unique_ptr<TdxHugePages> make_tdx_huge_pages_v5();

}  // namespace septsim::mmu
