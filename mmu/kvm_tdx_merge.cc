// Merging split private huge pages back (seed study 004; the policies are
// described in mmu/tdx_merge_policy.h, the study in docs/studies.md 1).
// Every merge is BLOCK of the 2M non-leaf entry, TRACK and a kick of every
// vCPU, then TDH.MEM.PAGE.PROMOTE; the policies differ in when KVM does it,
// on whose time, and how many ranges share one TRACK.
#include "mmu/kvm_impl.h"

namespace septsim::mmu {

void Kvm::Impl::note_private_split(Gfn base) {
  split_ranges.add(base, now());
  ++merge_stats.split;
  merge_stats.candidates = split_ranges.size();
}

void Kvm::Impl::split_private_slot(const Memslot& slot) {
  if (!td || !mirror_root || td->torn_down()) return;
  assert_mmu_lock_held_write("split_private_slot");
  std::vector<Gfn> huge;
  for (TdpIter it(mem, *mirror_root, PG_LEVEL_2M, slot.base_gfn); it.valid && it.gfn < slot.end_gfn(); it.next())
    if (it.level == PG_LEVEL_2M && is_present_leaf(it.old_spte, it.level)) huge.push_back(it.gfn);
  for (Gfn base : huge) {
    // Each DEMOTE takes a table page and (Dynamic PAMT) a page pair from the
    // VM's caches; KVM refills them with mmu_lock dropped, as the eager
    // split of shared pages does for its tables.
    td->topup_external_cache(op);
    if (!tdp.split_mirror_huge_page(base, td->vm_cache()))
      throw KvmError("dirty logging on memslot " + std::to_string(slot.id) + ": splitting the private 2M page at " +
                     hex(gfn_to_gpa(base)) + " failed: " + td->last_error());
    note_private_split(base);
  }
}

u64 Kvm::Impl::merge_ready(Gfn base) {
  const Memslot* slot = slots.find(base);
  // Dirty logging, mixed attributes (lpage_info) or a slot edge keep it 4K.
  if (!slot || slot->dirty_track_enabled() || kvm_mmu_max_mapping_level(*slot, base, PG_LEVEL_2M) < PG_LEVEL_2M)
    return 0;
  op.spent += kPtesPerTable * timing.mem_access;  // reading the 512 mirror SPTEs
  return tdp.mirror_merge_leaf(base, PG_LEVEL_2M);
}

bool Kvm::Impl::promote_range(Gfn base, u64 huge) {
  SplitPrivateRanges::Range* range = split_ranges.find(base);
  const MmuPage* sp = tdp.mirror_table_at(base, PG_LEVEL_2M);
  ++merge_stats.attempts;
  const Hpa page = spte_to_pfn(huge) << kPageShift;
  const TdxVm::PromoteResult r = td->promote(base, PG_LEVEL_2M, page, sp->external_spt, op);
  if (r != TdxVm::PromoteResult::Promoted) {
    if (r == TdxVm::PromoteResult::NotReady) ++merge_stats.refused;
    if (range) range->blocked = false;
    split_ranges.rotate(base);
    return false;
  }
  tdp.collapse_mirror_table(base, PG_LEVEL_2M, huge);
  if (range) merge_stats.wait_cycles += now() - std::min(now(), range->split_at);
  split_ranges.erase(base);
  ++merge_stats.promoted;
  merge_stats.candidates = split_ranges.size();
  return true;
}

unsigned Kvm::Impl::merge_ranges(const std::vector<ReadyRange>& ready) {
  assert_mmu_lock_held_write("merge_ranges");
  std::vector<ReadyRange> blocked;
  for (const ReadyRange& r : ready)
    if (td->block_for_merge(r.base, PG_LEVEL_2M, op)) blocked.push_back(r);
  unsigned merged = 0;
  // debug.inject=promote-without-track: PROMOTE right after the BLOCK.
  if (!blocked.empty() && (inject.fire(Inject::PromoteWithoutTrack) || td->track_and_kick(0, op)))
    for (const ReadyRange& r : blocked) merged += promote_range(r.base, r.huge) ? 1 : 0;
  td->resume_vcpus(op);
  return merged;
}


void Kvm::Impl::unblock_split_ranges(Gfn start, Gfn end) {
  std::vector<Gfn> blocked;
  const auto& ranges = split_ranges.by_gfn();
  for (auto it = ranges.lower_bound(split_range_base(start)); it != ranges.end() && it->first < end; ++it)
    if (it->second.blocked) blocked.push_back(it->first);
  for (Gfn base : blocked) {
    // A refused UNBLOCK bugs the VM (TdxVm::unblock_for_merge): the replay
    // reports the dead VM (rule kvm-bug) instead of stopping as bad input.
    if (!td->unblock_for_merge(base, PG_LEVEL_2M, op)) return;
    split_ranges.find(base)->blocked = false;
  }
}

void Kvm::Impl::forget_split_ranges(Gfn start, Gfn end) {
  std::vector<Gfn> gone;
  const auto& ranges = split_ranges.by_gfn();
  for (auto it = ranges.lower_bound(split_range_base(start)); it != ranges.end() && it->first < end; ++it)
    gone.push_back(it->first);
  for (Gfn base : gone) split_ranges.erase(base);
  merge_stats.candidates = split_ranges.size();
}




Cycles Kvm::nx_recovery_tick() {
  Impl& k = *impl_;
  k.op.spent = 0;
  k.begin_ioctl();
  ++k.merge_stats.ticks;
  k.merge_policy->nx_recovery_tick(k);
  return k.finish();
}

}  // namespace septsim::mmu
