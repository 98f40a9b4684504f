// The guest kernel's side of a GVA trace: builds x86-64 guest page tables
// (4- or 5-level, 4K/2M/1G pages) in guest memory, as a guest OS would before
// the traced accesses run. Table pages come from a guest-physical pool named
// by the trace; they are written through the host's mapping of guest memory
// (not through the EPT), so the first 2D walk still takes EPT violations on
// them, as a real guest's first touch would.
#pragma once
#include <stdexcept>

#include "mmu/kvm.h"

namespace septsim::traces {

struct GuestMapError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class GuestPageTables {
 public:
  GuestPageTables(mmu::Kvm& kvm, model::PhysMem& mem) : kvm_(kvm), mem_(mem) {}

  void set_pool(Gpa base, u64 size);
  // Maps [gva, gva + size) to [gpa, gpa + size) with pages of `page_level`
  // under the root at `cr3` (created zeroed on first use).
  void map(Gpa cr3, int levels, Gva gva, Gpa gpa, u64 size, int page_level, bool writable, bool executable);
  u64 tables_allocated() const { return tables_; }

 private:
  Gpa alloc_table();
  u64 read(Gpa gpa) { return mem_.read64(kvm_.host_hpa_for_gpa(gpa)); }
  void write(Gpa gpa, u64 value) { mem_.write64(kvm_.host_hpa_for_gpa(gpa), value); }

  mmu::Kvm& kvm_;
  model::PhysMem& mem_;
  Gpa pool_next_ = 0, pool_end_ = 0;
  u64 tables_ = 0;
};

}  // namespace septsim::traces
