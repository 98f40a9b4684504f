// The module's sharex locks, as windows in simulated time: a SEAMCALL holds
// each lock it takes from its start to start + latency; a call from another
// initiator that wants a conflicting mode inside that window fails with
// TDX_OPERAND_BUSY and the lock's operand id (the module's sharex locks). Host-priority
// locks additionally refuse guest (TDCALL) acquirers while held by the host.
// Initiators may run at different local times (vCPUs between two quantum
// syncs): a window conflicts with a call whose own window overlaps it, and
// windows are kept `retain` cycles past their end for calls that start
// earlier than the latest one.
#pragma once
#include <cstddef>
#include <vector>

#include "model/types.h"

namespace septsim::seam {

// Pamt: one lock per PAMT entry, keyed by the entry's base HPA | its PG level.
// Kot: the KeyID ownership table; Wbt: the package's CACHE.WB mutex.
enum class LockKind : u8 { Tdr, OpState, SeptTree, Epoch, SeptEntry, Pamt, Kot, Wbt };

class SeamLocks {
 public:
  // Starts a call by `initiator` at `now` that will end at `until`.
  void begin(unsigned initiator, Cycles now, Cycles until);
  // False if another initiator's live window conflicts.
  bool acquire(LockKind kind, u64 addr, bool exclusive);
  // The call ends: its locks stay held until `until`.
  void commit(Cycles until);
  // Every lock `initiator` holds goes at once: a TD vCPU interrupted out of
  // its TDCALL (an IPI's TD exit) releases what the TDCALL held.
  void release(unsigned initiator);
  size_t held() const { return active_.size(); }
  // How far behind the latest call another initiator's call may start
  // (0: calls arrive in time order, windows go as soon as they end).
  void set_retain(Cycles retain) { retain_ = retain; }
  static constexpr size_t kMaxHolds = 1024;

 private:
  struct Hold {
    LockKind kind;
    u64 addr;
    bool exclusive;
    unsigned initiator;
    Cycles from;   // the call's start
    Cycles until;  // the call's end (exclusive)
  };
  std::vector<Hold> active_;
  std::vector<Hold> pending_;
  unsigned initiator_ = 0;
  Cycles now_ = 0;
  Cycles until_ = 0;  // the current call's expected end
  Cycles retain_ = 0;
};

}  // namespace septsim::seam
