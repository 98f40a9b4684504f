// The TD epoch protocol of TLB tracking (tdh_mem_track.c): TD_EPOCH, the two
// refcounts indexed by epoch parity, VCPU_EPOCH, and is_tlb_tracked(BEPOCH).
#pragma once
#include "model/types.h"

namespace septsim::seam {

constexpr u64 kBepochMigrationFlag = 1ull << 63;

struct Epochs {
  u64 td_epoch = 1;  // TDH.MNG.INIT sets 1
  u16 refcount[2] = {0, 0};

  // TDH.VP.ENTER: returns the epoch the vCPU now runs in.
  u64 enter() {
    ++refcount[td_epoch & 1];
    return td_epoch;
  }
  void exit(u64 vcpu_epoch) { --refcount[vcpu_epoch & 1]; }
  // TDH.MEM.TRACK: false while a vCPU still runs in the previous epoch.
  bool previous_epoch_busy() const { return refcount[(td_epoch - 1) & 1] != 0; }
  void advance() { ++td_epoch; }

  bool is_tlb_tracked(u64 bepoch) const {
    if (bepoch & kBepochMigrationFlag) return false;
    if (bepoch + 1 < td_epoch) return true;
    return bepoch + 1 == td_epoch && refcount[bepoch & 1] == 0;
  }
};

}  // namespace septsim::seam
