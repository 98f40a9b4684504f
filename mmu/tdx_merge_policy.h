// How split private huge pages become huge again (seed study 004,
// docs/studies.md 1). Upstream KVM never merges a mirror range back: a
// 4K-mapped private range stays 4K until removed (docs/kvm-behaviour.md). The other
// policies drive TDH.MEM.PAGE.PROMOTE, which needs the 2M entry BLOCKed and
// TRACKed and its 512 children in one state, contiguous and aligned
// (the TDX module's TDH.MEM.PAGE.PROMOTE):
//   none  nothing merges (upstream);
//   A     the NX-recovery worker: every nx_recovery_tick visits the oldest
//         ceil(n / ratio) split ranges and promotes the ready ones (BLOCK each,
//         one TRACK and kick, PROMOTE each);
//   B     the fault path: after a TD EPT violation is handled, its own 2M
//         range, else the oldest split range, is promoted if ready;
//   C     BLOCK instead of zap: when dirty logging stops, every ready split
//         range of the slot is BLOCKed (one TRACK and kick), and the next EPT
//         violation in a blocked range PROMOTEs it (under the fault's read
//         mmu_lock: no TRACK is left to do).
#pragma once
#include <memory>
#include <string>

#include "mmu/kvm.h"
#include "model/types.h"

namespace septsim::mmu {

struct Memslot;

// One variant per file in mmu/impl/ (tdx_merge_*.cc), chosen by name. Each
// hook is a place where KVM could act; a variant overrides the ones it uses
// and gets the VM's state (the operation's context) as `k`.
class TdxMergePolicy {
 public:
  virtual ~TdxMergePolicy() = default;
  virtual const char* name() const = 0;
  // kvm_nx_huge_page_recovery_worker ran (an nx_recovery_tick event), under
  // no lock; returns nothing, charges k.op.spent.
  virtual void nx_recovery_tick(Kvm::Impl&) {}
  // A private fault of `initiator` on `gfn` is about to be handled.
  virtual void before_private_fault(Kvm::Impl&, Gfn, unsigned) {}
  // A private fault of `initiator` on `gfn` was handled.
  virtual void after_private_fault(Kvm::Impl&, Gfn, unsigned) {}
  // Dirty logging stopped on `slot` (under the write mmu_lock).
  virtual void dirty_logging_stopped(Kvm::Impl&, const Memslot&) {}

  // The value of config key mmu.tdx_merge_policy: none, A, B or C (either
  // case); throws model::ConfigError for any other.
  static std::unique_ptr<TdxMergePolicy> create(const std::string& value);
};

std::unique_ptr<TdxMergePolicy> make_tdx_merge_none();
std::unique_ptr<TdxMergePolicy> make_tdx_merge_a();
std::unique_ptr<TdxMergePolicy> make_tdx_merge_b();
std::unique_ptr<TdxMergePolicy> make_tdx_merge_c();

}  // namespace septsim::mmu
