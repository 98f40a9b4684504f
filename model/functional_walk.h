// Side-effect-free translation for checkers and tools: no references are
// counted, no caches are touched, no A/D bits are set.
#pragma once
#include <optional>

#include "model/ept.h"
#include "model/phys_mem.h"
#include "model/translation.h"

namespace septsim::model {

struct FunctionalResult {
  Gpa gpa = 0;      // the guest-physical address (for a linear input)
  Hpa hpa = 0;      // the host-physical address of the byte
  int level = 1;    // min(guest leaf level, EPT leaf level)
  u8 perms = 0;     // effective rights (kPerm*)
  bool ept_dirty = false;  // the D bit of the EPT leaf mapping the (data) GPA
};

// GPA -> HPA through the EPT rooted at eptp.root; nullopt if not present.
std::optional<FunctionalResult> ept_translate(const PhysMem& mem, const ept::Eptp& eptp, Gpa gpa);
// GVA -> GPA -> HPA through guest tables at `cr3` (a GPA) and the EPT.
std::optional<FunctionalResult> linear_translate(const PhysMem& mem, const ept::Eptp& eptp, Gpa cr3,
                                                 int guest_levels, Gva gva);
// The same for a TD vCPU: each GPA (guest table or data) whose `shared_bit`
// is clear is private and goes through `secure_eptp`, the others through
// `eptp` (the shared EPT).
std::optional<FunctionalResult> linear_translate(const PhysMem& mem, const ept::Eptp& eptp,
                                                 const ept::Eptp& secure_eptp, unsigned shared_bit, Gpa cr3,
                                                 int guest_levels, Gva gva);

}  // namespace septsim::model
