// Layouts of KVM's struct kvm_mmu_page for the MMU-metadata study (issue 5,
// study 4). Each layout lists the fields of the 6.14+ structure
// (arch/x86/kvm/mmu/mmu_internal.h, x86-64, no debug options) in declaration order, with the
// unions KVM uses; the size follows the C rules (each member at its
// alignment, a union as large as its largest member, the whole rounded to
// its alignment). The model's own MmuPage is smaller (mmu/mmu_page.h): these
// sizes are what KVM would pay for the pages the model allocates.
#pragma once
#include <string>
#include <vector>

#include "model/types.h"

namespace septsim::mmu {

// mmu.sp_layout
enum class SpLayoutKind : u8 {
  // 6.14+ upstream: external_spt (TDX mirror) shares a union with the
  // shadow-only {unsync_children, write_flooding_count}.
  ExternalInUnion,
  // external_spt as a field of its own (the TDX RFCs before the union).
  ExternalSeparate,
  // Every shadow-only field in one union with the TDP-only ones, the
  // variant the seeds discuss for shrinking the TDP MMU's pages.
  ShadowTdpUnion,
  // A structure of the TDP MMU's own with no shadow-only field at all
  // (only the shadow MMU uses them: a TDP model can drop them): the lower bound.
  TdpOnly,
};

// One field of struct kvm_mmu_page.
struct SpField {
  std::string name;  // KVM's name; "a/b" for the members of a union
  u32 size = 0;      // bytes on x86-64
  u32 align = 0;     // bytes
};

// A member of the structure: one field, or a union of several (size = max).
struct SpMember {
  std::vector<SpField> alternatives;  // one entry for a plain field
};

struct SpLayout {
  SpLayoutKind kind;
  std::string name;  // the config value
  std::vector<SpMember> members;
  u32 size() const;                                 // sizeof(struct kvm_mmu_page)
  // Offset of the member holding field `name`; throws std::out_of_range if none.
  u32 offset_of(const std::string& name) const;
};

const SpLayout& sp_layout(SpLayoutKind kind);
// Parses a mmu.sp_layout value; throws model::ConfigError naming the known ones.
SpLayoutKind parse_sp_layout(const std::string& value);

}  // namespace septsim::mmu
