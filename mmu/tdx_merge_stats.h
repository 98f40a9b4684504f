// What the merge policies cost and achieve (mmu/tdx_merge_policy.h), as
// "kvm.tdx.merge.*" registry entries.
#pragma once
#include "model/stats.h"

namespace septsim::mmu {

struct TdxMergeStats {
  explicit TdxMergeStats(model::StatsRegistry& r)
      : split(r.counter("kvm.tdx.merge.split_ranges", "private 2M leaves split into 4K tables (merge candidates)")),
        candidates(r.gauge("kvm.tdx.merge.candidates", "split private ranges not merged back yet")),
        ticks(r.counter("kvm.tdx.merge.nx_recovery_ticks", "nx_recovery_tick events (policy A's worker runs)")),
        scanned(r.counter("kvm.tdx.merge.scanned", "split ranges a policy A or B scan looked at")),
        blocked(r.counter("kvm.tdx.merge.blocked", "split ranges BLOCKed for a later PROMOTE (policy C)")),
        attempts(r.counter("kvm.tdx.merge.promote_attempts", "TDH.MEM.PAGE.PROMOTE calls")),
        promoted(r.counter("kvm.tdx.merge.promoted", "split ranges merged back into a 2M leaf")),
        refused(r.counter("kvm.tdx.merge.refused",
                          "PROMOTEs refused with TDX_EPT_INVALID_PROMOTE_CONDITIONS (then UNBLOCKed)")),
        cycles(r.counter("kvm.tdx.merge.cycles", "host cycles of merge work: checks, SEAMCALLs, kicks, re-entries")),
        wait_cycles(r.counter("kvm.tdx.merge.wait_cycles",
                              "sum over merged ranges of the simulated time from the split to the PROMOTE")) {}

  u64& split;
  u64& candidates;
  u64& ticks;
  u64& scanned;
  u64& blocked;
  u64& attempts;
  u64& promoted;
  u64& refused;
  u64& cycles;
  u64& wait_cycles;
};

}  // namespace septsim::mmu
