// FROZEN_SPTE windows of the mirror root (tdp_mmu.c:__tdp_mmu_set_spte_atomic).
// Before a mirror change is handed to the external hook, the TDP MMU writes
// FROZEN_SPTE into the entry with a cmpxchg and writes the new value only
// after the hook returns. Another vCPU that reads the entry meanwhile finds
// it frozen: its own cmpxchg fails without any hook call, and the fault
// returns RET_PF_RETRY (tdx_handle_ept_violation retries it locally).
//
// The model runs one vCPU's operation at a time, each on its own clock, so
// "meanwhile" is a question about time: the window [from, until) a winning
// install held the entry is kept here, and a fault by another initiator
// whose own install would overlap that window finds the entry frozen.
#pragma once
#include <algorithm>
#include <vector>

#include "mmu/kvm_op.h"
#include "model/types.h"

namespace septsim::mmu {

class FrozenSptes {
 public:
  // The largest skew between two vCPUs' clocks; 0 (one initiator) records nothing.
  void set_skew(Cycles skew) { skew_ = skew; }

  // The mirror entry at (gfn, level) held FROZEN_SPTE during [from, op.now())
  // for op's initiator, and then became present.
  void note_installed(Gfn gfn, int level, Cycles from, const KvmOp& op) {
    if (!skew_) return;  // one initiator at a time: nothing can race
    const Cycles now = op.now();
    std::erase_if(windows_, [this, now](const Window& w) { return w.until + skew_ <= now; });
    windows_.push_back({key(gfn, level), op.initiator(), from, now});
  }

  // Whether any install is recorded (none with one initiator).
  bool empty() const { return windows_.empty(); }
  // When the entry covering gfn at `level` or above, as op's fault would
  // read it now, stops being frozen; 0 when op finds no entry frozen.
  Cycles frozen_until(Gfn gfn, int level, int root_level, const KvmOp& op) const {
    if (windows_.empty()) return 0;
    for (int l = root_level; l >= level; --l)
      if (const Window* w = hidden(key(gfn, l), op)) return w->until;
    return 0;
  }

 private:
  struct Window {
    u64 key;             // key() of the entry
    unsigned initiator;  // who installed it
    Cycles from, until;  // while it held FROZEN_SPTE
  };
  // The entry at (gfn, level): level << 56 | gfn >> 9 * (level - 1).
  static u64 key(Gfn gfn, int level) { return u64(level) << 56 | gfn.raw() >> (9 * (level - 1)); }
  // Another initiator's window that op's own install now would overlap.
  const Window* hidden(u64 k, const KvmOp& op) const {
    const Cycles now = op.now();
    for (const Window& w : windows_)
      if (w.key == k && w.initiator != op.initiator() && w.from < now + (w.until - w.from) && now < w.until)
        return &w;
    return nullptr;
  }

  Cycles skew_ = 0;
  std::vector<Window> windows_;
};

}  // namespace septsim::mmu
