// Shadow-EPT roots: what KVM builds in guest_mmu to shadow an L1
// hypervisor's EPT for an L2 guest (nested EPT, arch/x86/kvm/mmu/paging_tmpl.h as EPT). A root is
// keyed in the VM-wide mmu_page_hash by the gfn of the EPT12 root table (the
// EPTP's address) and its role; below it, one shadow page per EPT12 table
// reached so far. The model keeps which SPTEs are present and which have
// gone stale (L1 changed its entry since), not the SPTE values.
#pragma once
#include <bitset>
#include <map>
#include <utility>

#include "mmu/mmu_page.h"

namespace septsim::mmu {

// One shadow page (struct kvm_mmu_page of the shadow MMU, role.direct = 0).
struct ShadowPage {
  int level = 0;
  bool unsync = false;            // L1 may have written the EPT12 table it shadows (leaf level only)
  std::bitset<512> present;       // SPTEs installed
  std::bitset<512> stale;         // present, but L1's entry changed after it was made
};

class ShadowEptRoot {
 public:
  ShadowEptRoot(Gfn root_gfn, MmuPageRole role);

  Gfn root_gfn() const { return root_gfn_; }
  const MmuPageRole& role() const { return role_; }
  // root_count: references from vCPUs' current root and prev_roots (shadow
  // MMU: an int changed under the write mmu_lock).
  int root_count = 0;

  // The shadow pages a walk for L2 gpa needs and does not have yet; the
  // walk creates them. Returns how many were created.
  unsigned link_path(Gpa gpa);
  // Whether the leaf SPTE for gpa is present (and not stale, when fresh_only).
  bool leaf_present(Gpa gpa, bool fresh_only) const;
  void install_leaf(Gpa gpa);
  // L1 wrote its EPT12 leaf entry for gpa: the leaf shadow page becomes
  // unsync and its SPTE for gpa stale. Returns true if the page was in sync.
  bool guest_entry_written(Gpa gpa);
  // kvm_sync_page on every unsync page: stale SPTEs are zapped. Returns
  // the number of pages synced.
  unsigned sync_unsync_pages();
  unsigned unsync_pages() const { return unsync_pages_; }
  size_t pages() const { return pages_.size(); }
  size_t present_sptes() const;

 private:
  using Key = std::pair<int, Gfn>;  // (level, first L2 gfn the table maps)
  Key key(Gpa gpa, int level) const;
  ShadowPage* leaf_page(Gpa gpa);
  const ShadowPage* leaf_page(Gpa gpa) const;

  Gfn root_gfn_;
  MmuPageRole role_;
  std::map<Key, ShadowPage> pages_;  // the root included
  unsigned unsync_pages_ = 0;
};

}  // namespace septsim::mmu
