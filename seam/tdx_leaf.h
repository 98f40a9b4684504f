// SEAMCALL and TDCALL leaf numbers (the module's api_calls; 8, 18 and 22 as
// in Linux arch/x86/virt/vmx/tdx/tdx.h) and the RAX leaf/version encoding (1.1).
#pragma once
#include <optional>
#include <string_view>

#include "model/types.h"

namespace septsim::seam {

enum class Leaf : u16 {
  TDH_VP_ENTER = 0,
  TDH_MNG_ADDCX = 1,
  TDH_MEM_PAGE_ADD = 2,
  TDH_MEM_SEPT_ADD = 3,
  TDH_VP_ADDCX = 4,
  TDH_MEM_PAGE_RELOCATE = 5,
  TDH_MEM_PAGE_AUG = 6,
  TDH_MEM_RANGE_BLOCK = 7,
  TDH_MNG_KEY_CONFIG = 8,
  TDH_MNG_CREATE = 9,
  TDH_VP_CREATE = 10,
  TDH_MEM_PAGE_DEMOTE = 15,
  TDH_MR_EXTEND = 16,
  TDH_MR_FINALIZE = 17,
  TDH_VP_FLUSH = 18,
  TDH_MNG_VPFLUSHDONE = 19,
  TDH_MNG_KEY_FREEID = 20,
  TDH_MNG_INIT = 21,
  TDH_VP_INIT = 22,
  TDH_MEM_PAGE_PROMOTE = 23,
  TDH_PHYMEM_PAGE_RDMD = 24,
  TDH_MEM_SEPT_RD = 25,
  TDH_PHYMEM_PAGE_RECLAIM = 28,
  TDH_MEM_PAGE_REMOVE = 29,
  TDH_MEM_SEPT_REMOVE = 30,
  TDH_MEM_TRACK = 38,
  TDH_MEM_RANGE_UNBLOCK = 39,
  TDH_PHYMEM_CACHE_WB = 40,
  TDH_PHYMEM_PAGE_WBINVD = 41,
  TDH_PHYMEM_PAMT_ADD = 58,
  TDH_PHYMEM_PAMT_REMOVE = 59,
};

// Guest-side TDCALL leaves (a separate number space).
enum class TdcallLeaf : u16 { TDG_MEM_PAGE_ACCEPT = 6 };

constexpr unsigned kVersionShift = 16;  // RAX bits 23:16
constexpr u64 leaf_rax(Leaf l, unsigned version = 0) { return u64(l) | (u64(version) << kVersionShift); }
constexpr u16 rax_leaf(u64 rax) { return u16(rax); }
constexpr unsigned rax_version(u64 rax) { return unsigned(rax >> kVersionShift) & 0xff; }
constexpr bool rax_reserved_set(u64 rax) { return (rax >> 24) != 0; }

// "TDH.MEM.PAGE.AUG" etc.; nullptr for unknown numbers.
const char* leaf_name(u16 number);
const char* tdcall_leaf_name(u16 number);
std::optional<Leaf> leaf_by_name(std::string_view name);
std::optional<TdcallLeaf> tdcall_leaf_by_name(std::string_view name);

}  // namespace septsim::seam
