#include "seam/pamt_refcount.h"

#include "seam/tdx_leaf.h"

namespace septsim::seam {

u32 PamtRefcount::count(Hpa hpa) const {
  auto it = refs_.find(hpa >> 21);
  return it == refs_.end() ? 0 : it->second;
}

u32 PamtRefcount::count_of(Hpa hpa, u64 owner) const {
  auto it = owned_.find({owner, hpa >> 21});
  return it == owned_.end() ? 0 : it->second;
}

std::map<u64, u32> PamtRefcount::counts_of(u64 owner) const {
  std::map<u64, u32> out;
  for (auto it = owned_.lower_bound({owner, 0}); it != owned_.end() && it->first.first == owner; ++it)
    out[it->first.second] = it->second;
  return out;
}

void PamtRefcount::own(u64 region, int delta) {
  u32& n = owned_[{owner_, region}];
  n = u32(int(n) + delta);
  if (n == 0) owned_.erase({owner_, region});
}

bool PamtRefcount::adopt(Hpa hpa, u32 refs) {
  if (refs == 0 || count(hpa) != 0) return false;
  refs_[hpa >> 21] = refs;
  own(hpa >> 21, int(refs));
  return true;
}

u32 PamtRefcount::forget(Hpa hpa) {
  auto it = refs_.find(hpa >> 21);
  if (it == refs_.end()) return 0;
  const u32 n = it->second;
  refs_.erase(it);
  std::erase_if(owned_, [region = hpa >> 21](const auto& e) { return e.first.second == region; });
  return n;
}

void PamtRefcount::locked_call(SeamcallTxn& t, Cycles& cycles, Cycles start) {
  const Cycles at = start + cycles;
  const Cycles granted = lock_.acquire(at);
  cycles += granted - at;
  t.start = granted;
  cycles += tdx_.transport(t);
  lock_.release(granted, start + cycles);
}

Status PamtRefcount::get(Hpa hpa, Cycles& cycles, unsigned initiator, Cycles start, std::vector<Hpa>* pool) {
  u32& n = refs_[hpa >> 21];
  if (n > 0) {
    ++n;
    own(hpa >> 21, 1);
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
  // The pair is allocated before the lock; the recheck of the refcount and
  // PAMT.ADD are inside it (tdx_pamt_get).
  locked_call(t, cycles, start);
  if (t.status() != TDX_SUCCESS) {
    mem_.free(t.in.rdx >> kPageShift);
    mem_.free(t.in.r8 >> kPageShift);
    refs_.erase(hpa >> 21);
    return t.status();
  }
  n = 1;
  own(hpa >> 21, 1);
  return TDX_SUCCESS;
}

Status PamtRefcount::put(Hpa hpa, Cycles& cycles, unsigned initiator, Cycles start) {
  auto it = refs_.find(hpa >> 21);
  if (it == refs_.end()) return TDX_SUCCESS;
  if (count_of(hpa, owner_)) own(hpa >> 21, -1);
  if (--it->second > 0) return TDX_SUCCESS;
  refs_.erase(it);
  SeamcallTxn t;
  t.in.rax = leaf_rax(Leaf::TDH_PHYMEM_PAMT_REMOVE);
  t.in.rcx = ((hpa >> 21) << 21) | 1;
  t.initiator = initiator;
  // atomic_dec_and_lock: only the last put takes the lock (tdx_pamt_put).
  locked_call(t, cycles, start);
  if (t.status() == TDX_SUCCESS) {
    mem_.free(t.out.rdx >> kPageShift);
    mem_.free(t.out.r8 >> kPageShift);
  }
  return t.status();
}

}  // namespace septsim::seam
