// The hooks through which the TDP MMU reaches a TD's Secure EPT, as KVM's
// core reaches tdx.c through kvm_x86_ops (set_external_spte, which links a
// table, maps a leaf or removes one, as in the kvm-x86 tree septsim follows;
// free_external_spt; the huge-page series' split hook; the Dynamic PAMT
// series' topup_external_cache): fill the caches before mmu_lock, change an
// entry, split a huge leaf, reclaim a table. The TDP MMU calls the SPTE hooks from
// its change path while the mirror entry is FROZEN; TdxVm implements them
// with SEAMCALLs.
#pragma once
#include "mmu/kvm_op.h"
#include "model/types.h"

namespace septsim::mmu {

class ExternalSpt {
 public:
  virtual ~ExternalSpt() = default;

  // Every hook runs inside one KVM operation (mmu/kvm_op.h): it charges its
  // cycles to `op`, and its SEAMCALLs start at op.now() for op's initiator.
  //
  // topup_external_cache: before mmu_lock, fill what the hooks of one fault
  // by op's vCPU may take under the lock (external_spt pages, Dynamic PAMT
  // pairs), so no hook allocates; an ioctl fills the VM's own caches.
  // Returns the cache the hooks of op draw on.
  virtual u32 topup_external_cache(KvmOp& op) = 0;
  // kvm_mmu_alloc_external_spt: a page for a new mirror table's external_spt,
  // from the pre-topped-up cache `cache`; 0 if the cache is empty.
  virtual Pfn take_external_spt(u32 cache, KvmOp& op) = 0;
  // An external_spt page whose table was never linked goes back to the host.
  virtual void free_unlinked_external_spt(Pfn page, KvmOp& op) = 0;
  // set_external_spte (tdx.c:tdx_sept_set_private_spte): the mirror entry
  // at (gfn, level), level in KVM's terms (2 = the entry maps 2M), goes from
  // old_spte to new_spte:
  // - not present -> table: SEPT.ADD of the new table's page,
  //   `child_external_spt` (the kernel reads it from new_spte's child
  //   MmuPage; here the TDP MMU passes it);
  // - not present -> leaf: PAGE.ADD before finalize, AUG after;
  // - leaf -> not present: the page leaves the TD (BLOCK, TRACK, kick,
  //   REMOVE, WBINVD; RECLAIM once the HKID is released).
  // False when the module refused: the entry keeps old_spte (a refused
  // removal bugs the VM).
  virtual bool set_external_spte(Gfn gfn, int level, u64 old_spte, u64 new_spte, Pfn child_external_spt,
                                 KvmOp& op) = 0;
  // split_external_spt: the huge leaf at (gfn, level) becomes a table of
  // smaller leaves in `external_spt` (BLOCK, TRACK, kick, DEMOTE); the
  // pages and their states stay.
  virtual bool split_external_spt(Gfn gfn, int level, u64 old_spte, Pfn external_spt, KvmOp& op) = 0;
  // free_external_spt: the table's page goes back (RECLAIM, only after the
  // HKID is released). False: the page is leaked, never reused.
  virtual bool free_external_spt(Gfn gfn, int level, Pfn external_spt, KvmOp& op) = 0;
};

}  // namespace septsim::mmu
