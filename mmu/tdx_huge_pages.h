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
  // A 4K ACCEPT's exit sets KVM_LPAGE_GUEST_INHIBIT_FLAG above 4K in
  // lpage_info and splits a private 2M leaf over the page first.
  virtual bool inhibit_on_4k_accept() const = 0;
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

}  // namespace septsim::mmu
