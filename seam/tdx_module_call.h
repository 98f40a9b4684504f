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

  Leaf leaf() const { return Leaf(number); }
};

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
};

}  // namespace septsim::seam
