// Private to the TDX module's .cc files: the state of one call in flight and
// the per-leaf rules of the memory prologue.
#pragma once
#include "seam/tdx_module.h"

namespace septsim::seam {

struct TdxModule::Call {
  SeamcallTxn& txn;
  const SeamcallRegs& in;
  SeamcallRegs& out;
  u16 number;
  unsigned version;
  Td* td = nullptr;
  int level = 0;  // TDX level of the page_info operand
  Gpa gpa = 0;
  SeptWalk w;
  bool walked = false;  // `w` holds a Secure-EPT walk of this call
  Cycles extra_cycles = 0;  // a TD exit the call ended in
  u64 accept_chunks = 0;    // TDG.MEM.PAGE.ACCEPT: 4K chunks this call zeroed
  bool stopped_after_work = false;  // interrupted once its work had begun: locks held for its whole cost

  Leaf leaf() const { return Leaf(number); }
};

// The module's HPA operand checks (hpa_check_with_pwr_2_alignment for private
// pages, shared_hpa_check for shared ones): aligned to `align`, no KeyID bits
// and nothing above MAX_PA. The model has no shared MKTME KeyIDs and puts
// KeyIDs at kHkidShift and up, so both come down to the same test.
constexpr bool hpa_operand_ok(u64 hpa, u64 align) { return !(hpa & (align - 1)) && !(hpa >> kHkidShift); }

// td_handle_and_flags (SEPT.ADD, DEMOTE): bits 11:1 and 63:52 are reserved.
constexpr bool handle_reserved_set(u64 reg) { return (reg & 0xFFEull) || (reg >> 52); }

// How a memory leaf enters: which TDR register, lock modes, level range.
// Content tags of pages the host never allocated (tests may name any HPA) read as 0.
inline u64 page_tag(const model::PhysMem& m, Hpa hpa) {
  return m.is_allocated(hpa >> kPageShift) ? m.tag(hpa >> kPageShift) : 0;
}
inline void set_page_tag(model::PhysMem& m, Hpa hpa, u64 tag) {
  if (m.is_allocated(hpa >> kPageShift)) m.set_tag(hpa >> kPageShift, tag);
}

struct TdxModule::MemRule {
  enum class Tree : u8 { None, Shared, Exclusive };
  bool tdr_in_rdx = true;  // else RCX
  bool tdr_exclusive = false;
  bool op_lock = true;
  Tree tree = Tree::Shared;
  int min_level = 0;
  int max_level = 0;  // -1: the TD's top SEPT level
  // The TDR register's low bits: a td_handle_and_flags (SEPT.ADD, DEMOTE:
  // bit 0 a flag, 11:1 and 63:52 reserved), or SEPT.RD's bit 0, which asks
  // for the L2 attributes and needs a debug TD.
  enum class Handle : u8 { Plain, Flags, ReadL2 };
  Handle handle = Handle::Plain;
};

}  // namespace septsim::seam
