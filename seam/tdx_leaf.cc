#include "seam/tdx_leaf.h"

namespace septsim::seam {

namespace {

struct LeafName {
  Leaf leaf;
  const char* name;
};

constexpr LeafName kLeaves[] = {
    {Leaf::TDH_VP_ENTER, "TDH.VP.ENTER"},
    {Leaf::TDH_MNG_ADDCX, "TDH.MNG.ADDCX"},
    {Leaf::TDH_MEM_PAGE_ADD, "TDH.MEM.PAGE.ADD"},
    {Leaf::TDH_MEM_SEPT_ADD, "TDH.MEM.SEPT.ADD"},
    {Leaf::TDH_VP_ADDCX, "TDH.VP.ADDCX"},
    {Leaf::TDH_MEM_PAGE_RELOCATE, "TDH.MEM.PAGE.RELOCATE"},
    {Leaf::TDH_MEM_PAGE_AUG, "TDH.MEM.PAGE.AUG"},
    {Leaf::TDH_MEM_RANGE_BLOCK, "TDH.MEM.RANGE.BLOCK"},
    {Leaf::TDH_MNG_KEY_CONFIG, "TDH.MNG.KEY.CONFIG"},
    {Leaf::TDH_MNG_CREATE, "TDH.MNG.CREATE"},
    {Leaf::TDH_VP_CREATE, "TDH.VP.CREATE"},
    {Leaf::TDH_MEM_PAGE_DEMOTE, "TDH.MEM.PAGE.DEMOTE"},
    {Leaf::TDH_MR_EXTEND, "TDH.MR.EXTEND"},
    {Leaf::TDH_MR_FINALIZE, "TDH.MR.FINALIZE"},
    {Leaf::TDH_VP_FLUSH, "TDH.VP.FLUSH"},
    {Leaf::TDH_MNG_VPFLUSHDONE, "TDH.MNG.VPFLUSHDONE"},
    {Leaf::TDH_MNG_KEY_FREEID, "TDH.MNG.KEY.FREEID"},
    {Leaf::TDH_MNG_INIT, "TDH.MNG.INIT"},
    {Leaf::TDH_VP_INIT, "TDH.VP.INIT"},
    {Leaf::TDH_MEM_PAGE_PROMOTE, "TDH.MEM.PAGE.PROMOTE"},
    {Leaf::TDH_PHYMEM_PAGE_RDMD, "TDH.PHYMEM.PAGE.RDMD"},
    {Leaf::TDH_MEM_SEPT_RD, "TDH.MEM.SEPT.RD"},
    {Leaf::TDH_PHYMEM_PAGE_RECLAIM, "TDH.PHYMEM.PAGE.RECLAIM"},
    {Leaf::TDH_MEM_PAGE_REMOVE, "TDH.MEM.PAGE.REMOVE"},
    {Leaf::TDH_MEM_SEPT_REMOVE, "TDH.MEM.SEPT.REMOVE"},
    {Leaf::TDH_MEM_TRACK, "TDH.MEM.TRACK"},
    {Leaf::TDH_MEM_RANGE_UNBLOCK, "TDH.MEM.RANGE.UNBLOCK"},
    {Leaf::TDH_PHYMEM_CACHE_WB, "TDH.PHYMEM.CACHE.WB"},
    {Leaf::TDH_PHYMEM_PAGE_WBINVD, "TDH.PHYMEM.PAGE.WBINVD"},
    {Leaf::TDH_PHYMEM_PAMT_ADD, "TDH.PHYMEM.PAMT.ADD"},
    {Leaf::TDH_PHYMEM_PAMT_REMOVE, "TDH.PHYMEM.PAMT.REMOVE"},
};

}  // namespace

const char* leaf_name(u16 number) {
  for (const auto& l : kLeaves)
    if (u16(l.leaf) == number) return l.name;
  return nullptr;
}

const char* tdcall_leaf_name(u16 number) {
  return number == u16(TdcallLeaf::TDG_MEM_PAGE_ACCEPT) ? "TDG.MEM.PAGE.ACCEPT" : nullptr;
}

std::optional<Leaf> leaf_by_name(std::string_view name) {
  for (const auto& l : kLeaves)
    if (name == l.name) return l.leaf;
  return std::nullopt;
}

std::optional<TdcallLeaf> tdcall_leaf_by_name(std::string_view name) {
  if (name == "TDG.MEM.PAGE.ACCEPT") return TdcallLeaf::TDG_MEM_PAGE_ACCEPT;
  return std::nullopt;
}

}  // namespace septsim::seam
