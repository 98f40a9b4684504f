// Fault injection (config key `debug.inject`, not for normal use): the MMU
// commits one class of KVM/TDX bug at a chosen opportunity, the way kernels
// test their error paths (CONFIG_FAULT_INJECTION's should_fail()). Each
// class has one injection point in mmu/ at the exact place the bug would be;
// `--check` must report every class (tests/mmu/22_fault_injection.cc,
// docs/invariants.md "Fault injection").
//
// `debug.inject` = none | CLASS | CLASS@N | CLASS@all | CLASS@random:
// the Nth time the MMU reaches CLASS's injection point (CLASS alone: the
// first), every time, or each time with probability 1/4 drawn from
// `debug.inject_seed` (splitmix64, deterministic). With `none` every
// injection point is one byte compare that is false.
#pragma once
#include <string>
#include <vector>

#include "model/types.h"

namespace septsim::model {
class Config;
class StatsRegistry;
}  // namespace septsim::model

namespace septsim::mmu {

enum class Inject : u8 {
  None,
  SkipTrack,            // tdx_track without TDH.MEM.TRACK
  SkipKick,             // tdx_track without kicking the vCPUs out (tdh_do_no_vcpus / kvm_make_all_cpus_request)
  RemoveWithoutBlock,   // tdx_sept_remove_leaf_spte without TDH.MEM.RANGE.BLOCK
  FreeLinkedSept,       // a refused PROMOTE frees the still-linked Secure-EPT table page
  PamtPutForgotten,     // a private page's removal skips the Dynamic PAMT put
  NoRemoteFlush,        // a zap (host_unmap, kvm_zap_gfn_range) skips kvm_flush_remote_tlbs
  HugeOverMixed,        // kvm_mmu_max_mapping_level ignores KVM_LPAGE_MIXED_FLAG
  StaleSnapshot,        // a fault installs the pfn it faulted in before an mmu_notifier invalidation
  PromoteWithoutTrack,  // a merge PROMOTEs without TDH.MEM.TRACK after the BLOCK
  DoubleMap,            // a fault maps a mirror leaf that is already mapped (a second AUG)
  DirtyLogNoWrprot,     // dirty logging starts without write-protecting the slot
  SlotDeleteNoZap,      // a memslot delete/move does not zap the slot
  ConvertNoRemoval,     // private -> shared conversion keeps the private leaves
  TeardownLeak,         // teardown's guest_memfd release skips a private page
  PmlNoFlush,           // KVM_GET_DIRTY_LOG with PML clears D bits without the remote TLB flush
  MigrateRace,          // no bug: a host page migration between a fault's fault-in and its map (KVM retries)
};

// The names `debug.inject` takes, in enum order (index 0 is "none").
const std::vector<std::string>& inject_class_names();

class FaultInjector {
 public:
  FaultInjector() = default;
  // Parses `debug.inject` and `debug.inject_seed`; throws model::ConfigError
  // naming the key. Registers `debug.inject_fired` only when armed, so a
  // normal replay's statistics are unchanged.
  FaultInjector(const model::Config& cfg, model::StatsRegistry& stats);

  // At CLASS's injection point: true when the bug is to be committed now.
  bool fire(Inject where) {
    if (where != armed_) [[likely]]
      return false;
    return decide();
  }
  Inject armed() const { return armed_; }
  u64 fired() const { return fired_ ? *fired_ : 0; }

 private:
  bool decide();

  Inject armed_ = Inject::None;
  enum class When : u8 { Nth, All, Random } when_ = When::Nth;
  u64 nth_ = 1;      // When::Nth: the opportunity that fires (1-based)
  u64 reached_ = 0;  // opportunities seen so far
  u64 rng_ = 0;      // splitmix64 state (When::Random)
  u64* fired_ = nullptr;
};

}  // namespace septsim::mmu
