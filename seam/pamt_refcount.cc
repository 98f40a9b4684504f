#include "seam/pamt_refcount.h"

#include "seam/tdx_leaf.h"

namespace septsim::seam {

u32 PamtRefcount::count(Hpa hpa) const {
  auto it = refs_.find(hpa >> 21);
  return it == refs_.end() ? 0 : it->second;
}

bool PamtRefcount::adopt(Hpa hpa, u32 refs) {
  if (refs == 0 || count(hpa) != 0) return false;
  refs_[hpa >> 21] = refs;
  return true;
}

u32 PamtRefcount::forget(Hpa hpa) {
  auto it = refs_.find(hpa >> 21);
  if (it == refs_.end()) return 0;
  const u32 n = it->second;
  refs_.erase(it);
  return n;
}

Status PamtRefcount::get(Hpa hpa, Cycles& cycles, unsigned initiator, Cycles start, std::vector<Hpa>* pool) {
  u32& n = refs_[hpa >> 21];
  if (n > 0) {
    ++n;
    return TDX_SUCCESS;
  }
  auto take = [&]() -> Hpa {
    if (pool && !pool->empty()) {
      const Hpa page = pool->back();
      pool->pop_back();
      return page;
    }
    if (pool) ++dry_takes_;
    return mem_.alloc() << kPageShift;
  };
  SeamcallTxn t;
  t.in.rax = leaf_rax(Leaf::TDH_PHYMEM_PAMT_ADD);
  t.in.rcx = ((hpa >> 21) << 21) | 1;
  t.in.rdx = take();
  t.in.r8 = take();
  t.initiator = initiator;
  t.start = start + cycles;
  cycles += tdx_.transport(t);
  if (t.status() != TDX_SUCCESS) {
    mem_.free(t.in.rdx >> kPageShift);
    mem_.free(t.in.r8 >> kPageShift);
    refs_.erase(hpa >> 21);
    return t.status();
  }
  n = 1;
  return TDX_SUCCESS;
}

Status PamtRefcount::put(Hpa hpa, Cycles& cycles, unsigned initiator, Cycles start) {
  auto it = refs_.find(hpa >> 21);
  if (it == refs_.end()) return TDX_SUCCESS;
  if (--it->second > 0) return TDX_SUCCESS;
  refs_.erase(it);
  SeamcallTxn t;
  t.in.rax = leaf_rax(Leaf::TDH_PHYMEM_PAMT_REMOVE);
  t.in.rcx = ((hpa >> 21) << 21) | 1;
  t.initiator = initiator;
  t.start = start + cycles;
  cycles += tdx_.transport(t);
  if (t.status() == TDX_SUCCESS) {
    mem_.free(t.out.rdx >> kPageShift);
    mem_.free(t.out.r8 >> kPageShift);
  }
  return t.status();
}

}  // namespace septsim::seam
