// The Secure-EPT of one TD: a tree of 4 KiB pages in simulated host memory,
// rooted at TDCS page 3, walked the way the module's secure_ept_walk() does
// (intel/tdx-module sept_manager.c: a walk stops at the first entry above the requested level
// that is not NL_MAPPED).
#pragma once
#include "model/phys_mem.h"
#include "seam/sept_entry.h"

namespace septsim::seam {

// TDX levels: 0 = 4K (PTE) ... 4 = PML5E.
constexpr int tdx_to_pg_level(int tdx_level) { return tdx_level + 1; }
constexpr u64 tdx_level_size(int tdx_level) { return level_size(tdx_level + 1); }
constexpr u64 pages_4k(int tdx_level) { return pages_per_level(tdx_level + 1); }

struct SeptWalk {
  bool reached = false;  // the walk got to the requested level
  int level = 0;         // level of `entry` (where the walk stopped, or the requested one)
  Hpa entry_hpa = 0;
  u64 entry = 0;
  septe::SeptState state = septe::SeptState::FREE;
};

class SeptTree {
 public:
  SeptTree(model::PhysMem& mem, Hpa root, int levels) : mem_(mem), root_(root), levels_(levels) {}

  Hpa root() const { return root_; }
  int levels() const { return levels_; }
  int top_level() const { return levels_ - 1; }

  SeptWalk walk(Gpa gpa, int level) const;
  // The leaf that maps `gpa`, at any level (walk_to_leaf); reached=false if none.
  SeptWalk walk_to_leaf(Gpa gpa) const;
  u64 read(Hpa entry_hpa) const { return mem_.read64(entry_hpa); }
  void write(Hpa entry_hpa, u64 value) { mem_.write64(entry_hpa, value); }
  // Fills a new SEPT page with 512 FREE|SVE entries.
  void init_page(Hpa page);

  static unsigned index(Gpa gpa, int level) { return unsigned(gpa >> (kPageShift + 9 * unsigned(level))) & 511u; }

 private:
  model::PhysMem& mem_;
  Hpa root_;
  int levels_;
};

// Extended error information (1.4): RCX = architectural entry, RDX = level |
// public state << 8 (vm = 0 for the L1 SEPT).
u64 septe_arch_value(u64 entry);
u64 septe_level_state(int level, septe::SeptState s);

}  // namespace septsim::seam
