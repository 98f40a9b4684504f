#include "seam/seam_timing.h"

namespace septsim::seam {

namespace {

struct Key {
  Leaf leaf;
  const char* key;
};

constexpr Key kKeys[] = {
    {Leaf::TDH_VP_ENTER, "latency.seam.vp_enter"},
    {Leaf::TDH_MNG_CREATE, "latency.seam.mng_create"},
    {Leaf::TDH_MNG_KEY_CONFIG, "latency.seam.mng_key_config"},
    {Leaf::TDH_MNG_ADDCX, "latency.seam.mng_addcx"},
    {Leaf::TDH_MNG_INIT, "latency.seam.mng_init"},
    {Leaf::TDH_VP_CREATE, "latency.seam.vp_create"},
    {Leaf::TDH_VP_ADDCX, "latency.seam.vp_addcx"},
    {Leaf::TDH_VP_INIT, "latency.seam.vp_init"},
    {Leaf::TDH_VP_FLUSH, "latency.seam.vp_flush"},
    {Leaf::TDH_MNG_VPFLUSHDONE, "latency.seam.mng_vpflushdone"},
    {Leaf::TDH_MNG_KEY_FREEID, "latency.seam.mng_key_freeid"},
    {Leaf::TDH_MR_EXTEND, "latency.seam.mr_extend"},
    {Leaf::TDH_MR_FINALIZE, "latency.seam.mr_finalize"},
    {Leaf::TDH_MEM_PAGE_ADD, "latency.seam.mem_page_add"},
    {Leaf::TDH_MEM_SEPT_ADD, "latency.seam.mem_sept_add"},
    {Leaf::TDH_MEM_PAGE_AUG, "latency.seam.mem_page_aug"},
    {Leaf::TDH_MEM_RANGE_BLOCK, "latency.seam.mem_range_block"},
    {Leaf::TDH_MEM_RANGE_UNBLOCK, "latency.seam.mem_range_unblock"},
    {Leaf::TDH_MEM_TRACK, "latency.seam.mem_track"},
    {Leaf::TDH_MEM_PAGE_REMOVE, "latency.seam.mem_page_remove"},
    {Leaf::TDH_MEM_SEPT_REMOVE, "latency.seam.mem_sept_remove"},
    {Leaf::TDH_MEM_PAGE_PROMOTE, "latency.seam.mem_page_promote"},
    {Leaf::TDH_MEM_PAGE_DEMOTE, "latency.seam.mem_page_demote"},
    {Leaf::TDH_MEM_PAGE_RELOCATE, "latency.seam.mem_page_relocate"},
    {Leaf::TDH_MEM_SEPT_RD, "latency.seam.mem_sept_rd"},
    {Leaf::TDH_PHYMEM_PAGE_RDMD, "latency.seam.phymem_page_rdmd"},
    {Leaf::TDH_PHYMEM_PAGE_RECLAIM, "latency.seam.phymem_page_reclaim"},
    {Leaf::TDH_PHYMEM_PAGE_WBINVD, "latency.seam.phymem_page_wbinvd"},
    {Leaf::TDH_PHYMEM_CACHE_WB, "latency.seam.phymem_cache_wb"},
    {Leaf::TDH_PHYMEM_PAMT_ADD, "latency.seam.phymem_pamt_add"},
    {Leaf::TDH_PHYMEM_PAMT_REMOVE, "latency.seam.phymem_pamt_remove"},
};

}  // namespace

SeamTiming SeamTiming::from(const model::Config& c) {
  SeamTiming t;
  t.leaf.fill(c.u("latency.seam.other"));
  for (const Key& k : kKeys) t.leaf[size_t(k.leaf)] = c.u(k.key);
  t.td_exit = c.u("latency.seam.td_exit");
  t.accept_4k = c.u("latency.seam.mem_page_accept_4k");
  t.accept_2m = c.u("latency.seam.mem_page_accept_2m");
  t.refusal_hold = c.u("latency.seam.mem_sept_rd");
  return t;
}

}  // namespace septsim::seam
