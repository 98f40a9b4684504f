#include "mmu/tdx_vm.h"

#include <stdexcept>

#include "mmu/mmu_lock.h"
#include "mmu/mmu_stats.h"
#include "model/hex.h"
#include "model/vcpu.h"

namespace septsim::mmu {

using seam::Leaf;
using seam::SeamcallRegs;
using seam::Status;
using seam::TDX_SUCCESS;

namespace {

// KVM retries a SEAMCALL that found its operand locked; the model's locks are
// windows in simulated time, so a few retries always get through.
constexpr int kBusyRetries = 16;

u64 table_key(Gpa gpa, int tdx_level) { return (u64(tdx_level) << 56) | (gpa >> (12 + 9 * tdx_level)); }

}  // namespace

TdxVm::TdxVm(seam::TdxModule& tdx, model::PhysMem& mem, MmuStats& stats)
    : seamcalls(stats.tdx_seamcalls),
      busy_retries(stats.tdx_busy_retries),
      memory_faults(stats.tdx_memory_faults),
      kicks(stats.tdx_kicks),
      removed(stats.tdx_removed),
      pamt_adds(stats.tdx_pamt_add),
      pamt_removes(stats.tdx_pamt_remove),
      pamt_cache_topups(stats.tdx_pamt_cache_topups),
      pamt_cache_pages(stats.tdx_pamt_cache_pages),
      tdx_(tdx),
      mem_(mem),
      dpamt_(tdx, mem) {}

void TdxVm::set_clock_skew(Cycles skew) {
  skew_ = skew;
  tdx_.set_lock_retain(skew);
}

bool TdxVm::hidden(u64 key) const {
  // The same call by this initiator now would overlap the other's window.
  for (const InFlight& f : in_flight_)
    if (f.key == key && f.initiator != initiator_ && f.from < now_ + (f.until - f.from) && now_ < f.until) return true;
  return false;
}

bool TdxVm::mapping_in_flight(Gfn gfn, int level) const {
  if (in_flight_.empty()) return false;
  const Gpa gpa = gfn << kPageShift;
  for (int l = params_.ept_levels - 1; l >= level; --l)
    if (hidden(table_key(gpa, l))) return true;
  return hidden(kPageKeyBit | gfn);
}

void TdxVm::note_in_flight(u64 key, Cycles from) {
  if (!skew_) return;  // one initiator at a time: nothing can race
  std::erase_if(in_flight_, [this](const InFlight& f) { return f.until + skew_ <= now_; });
  in_flight_.push_back({key, initiator_, from, now_});
}

void TdxVm::check_track() {
  if (!mmu_lock_) return;
  if (!mmu_lock_->write_held())
    hook_violations_.push_back("rule 20: TDH.MEM.TRACK at cycle " + std::to_string(now_) +
                               " without the write mmu_lock");
  else if (now_ < epoch_drained_)
    hook_violations_.push_back("rule 20: TDH.MEM.TRACK at cycle " + std::to_string(now_) +
                                " before the previous epoch drained at cycle " + std::to_string(epoch_drained_));
}

Status TdxVm::call(Leaf leaf, SeamcallRegs& r, Cycles& cycles, bool retry_busy) {
  if (leaf == Leaf::TDH_MEM_TRACK) check_track();
  for (int i = 0;; ++i) {
    seam::SeamcallTxn t;
    t.in = r;
    t.in.rax = seam::leaf_rax(leaf);
    t.initiator = initiator_;
    t.start = now_;
    const Cycles c = tdx_.transport(t);
    cycles += c;
    now_ += c;
    ++seamcalls;
    if (retry_busy && seam::status_class(t.status()) == seam::TDX_OPERAND_BUSY && i < kBusyRetries) {
      ++busy_retries;
      continue;
    }
    r = t.out;
    return t.status();
  }
}

void TdxVm::pamt_get(Hpa hpa, Cycles& cycles, std::vector<Hpa>* pool) {
  const Cycles before = cycles;
  const u64 dry = dpamt_.dry_takes();
  const size_t held = pool ? pool->size() : 0;
  const bool first = dpamt_.count(hpa) == 0;
  dpamt_.get(hpa, cycles, initiator_, now_, pool);
  now_ += cycles - before;
  if (first && dpamt_.count(hpa) == 1) ++pamt_adds;
  if (pool) pamt_cache_pages -= held - pool->size();
  if (dpamt_.dry_takes() != dry)
    hook_violations_.push_back("rule 21: PAMT.ADD for the 2M region at " + hex(hpa & ~((Hpa{1} << 21) - 1)) +
                               " under mmu_lock found its page-pair cache empty and allocated");
}

void TdxVm::pamt_put(Hpa hpa, Cycles& cycles) {
  const Cycles before = cycles;
  const bool last = dpamt_.count(hpa) == 1;
  dpamt_.put(hpa, cycles, initiator_, now_);
  now_ += cycles - before;
  if (last) ++pamt_removes;
}

Hpa TdxVm::take_pamt_page(std::vector<Hpa>& pool, const std::string& what) {
  if (pool.empty()) {
    hook_violations_.push_back("rule 21: " + what + " under mmu_lock found its page-pair cache empty and allocated");
    return mem_.alloc() << kPageShift;
  }
  const Hpa page = pool.back();
  pool.pop_back();
  --pamt_cache_pages;
  return page;
}

std::pair<Hpa, Hpa> TdxVm::take_pamt_pair(u32 cache) {
  auto& pool = pamt_pool(cache);
  const Hpa r12 = take_pamt_page(pool, "a DEMOTE pair");
  return {r12, take_pamt_page(pool, "a DEMOTE pair")};
}

void TdxVm::return_pamt_pair(u32 cache, Hpa r12, Hpa r13) {
  auto& pool = pamt_pool(cache);
  for (Hpa page : {r12, r13}) {
    if (pool.size() < 2 * size_t(params_.ept_levels)) {
      pool.push_back(page);
      ++pamt_cache_pages;
    } else {
      mem_.free(page >> kPageShift);
    }
  }
}

u32 TdxVm::topup_pamt_cache(u32 cache) {
  if (!tdx_.pamt().dynamic()) return 0;
  auto& pool = pamt_pool(cache);
  // A pair for the guest page and one per table level below the root.
  const size_t want = 2 * size_t(params_.ept_levels);
  if (pool.size() >= want) return 0;
  const u32 n = u32(want - pool.size());
  while (pool.size() < want) pool.push_back(mem_.alloc() << kPageShift);
  ++pamt_cache_topups;
  pamt_cache_pages += n;
  return n;
}

Hpa TdxVm::control_page(Cycles& cycles) {
  const Hpa hpa = mem_.alloc() << kPageShift;
  if (tdx_.pamt().dynamic()) pamt_get(hpa, cycles);
  return hpa;
}

Cycles TdxVm::create(const TdxVmParams& p, const std::vector<model::Vcpu*>& hw) {
  params_ = p;
  seam::TdCreateParams cp;
  cp.vcpus = u32(hw.size());
  cp.gpaw = p.gpaw;
  cp.ept_levels = p.ept_levels;
  cp.hkid = p.hkid;
  const seam::TdBuildResult r = seam::build_td(tdx_, mem_, dpamt_, cp, handle_, 0, now_);
  now_ += r.cycles;
  pamt_adds += dpamt_.regions();  // the control pages' regions
  if (r.status != TDX_SUCCESS)
    throw std::runtime_error("TD creation: " + r.failed_leaf + " returned " + seam::status_string(r.status));
  hw_ = hw;
  external_spt_cache_.assign(hw.size() + 1, {});
  pamt_cache_.assign(hw.size() + 1, {});
  for (size_t i = 0; i < hw.size(); ++i)
    if (hw[i]) tdx_.bind_vcpu(handle_.tdvpr[i], hw[i]);
  return r.cycles;
}

void TdxVm::topup_external_spt_cache(u32 cache, Cycles& cycles) {
  auto& pages = external_spt_cache_.at(cache);
  // One table per level below the root is the most one fault can link.
  while (pages.size() < size_t(params_.ept_levels - 1)) pages.push_back(control_page(cycles));
}

bool TdxVm::ensure_tables(Gpa gpa, int leaf_level, u32 cache, Cycles& cycles) {
  const int top = params_.ept_levels - 1;
  for (int l = top; l > leaf_level; --l) {
    const u64 key = table_key(gpa, l);
    // Another vCPU's SEPT.ADD of this table still in flight: this walk finds
    // the entry missing too, and its own SEPT.ADD collides in the module.
    if (sept_tables_.count(key) && !hidden(key)) continue;
    auto& pages = external_spt_cache_.at(cache);
    if (pages.empty()) {
      bugged_ = true;  // the top-up before mmu_lock must have covered every level
      return false;
    }
    const Hpa page = pages.back();
    SeamcallRegs r;
    r.rcx = seam::page_info(gpa & ~(seam::tdx_level_size(l) - 1), l);
    r.rdx = handle_.tdr;
    r.r8 = page;
    const Cycles from = now_;
    const Status s = call(Leaf::TDH_MEM_SEPT_ADD, r, cycles, false);
    if (seam::status_class(s) == seam::TDX_OPERAND_BUSY) {
      map_busy_ = true;  // -EBUSY: the fault retries, the page stays cached
      return false;
    }
    if (s != TDX_SUCCESS) {
      bugged_ = true;  // KVM_BUG_ON: the mirror said the table was missing
      return false;
    }
    pages.pop_back();
    sept_tables_[key] = page;
    note_in_flight(key, from);
  }
  return true;
}

Cycles TdxVm::page_add(Gpa gpa, Hpa hpa, u64 tag, bool measure) {
  Cycles c = 0;
  if (finalized_) throw std::runtime_error("td_init_mem_region after td_finalize (PAGE.ADD needs an unfinalized TD)");
  if (!is_private(gpa)) throw std::runtime_error("td_init_mem_region: gpa " + hex(gpa) + " has the shared bit set");
  if (private_.count(gpa >> kPageShift))
    throw std::runtime_error("td_init_mem_region: gpa " + hex(gpa) + " is already private");
  topup_external_spt_cache(vm_cache(), c);
  if (!ensure_tables(gpa, 0, vm_cache(), c)) throw std::runtime_error("td_init_mem_region: SEPT.ADD failed at " + hex(gpa));
  // The source: a host page holding the image piece (its tag stands for the content).
  const Pfn src = mem_.alloc();
  mem_.set_tag(src, tag);
  SeamcallRegs r;
  r.rcx = seam::page_info(gpa, 0);
  r.rdx = handle_.tdr;
  r.r8 = hpa;
  r.r9 = src << kPageShift;
  if (tdx_.pamt().dynamic()) pamt_get(hpa, c, &pamt_pool(vm_cache()));
  const Status s = call(Leaf::TDH_MEM_PAGE_ADD, r, c);
  mem_.free(src);
  if (s != TDX_SUCCESS)
    throw std::runtime_error("td_init_mem_region: TDH.MEM.PAGE.ADD at " + hex(gpa) + " returned " +
                             seam::status_string(s));
  private_[gpa >> kPageShift] = private_page(hpa, PG_LEVEL_4K, tag, true);
  if (measure)
    for (u64 off = 0; off < kPageSize; off += 256) {
      SeamcallRegs m;
      m.rcx = gpa + off;
      m.rdx = handle_.tdr;
      const Status ms = call(Leaf::TDH_MR_EXTEND, m, c);
      if (ms != TDX_SUCCESS)
        throw std::runtime_error("td_init_mem_region: TDH.MR.EXTEND at " + hex(gpa + off) + " returned " +
                                 seam::status_string(ms));
    }
  return c;
}

Cycles TdxVm::finalize() {
  Cycles c = 0;
  SeamcallRegs r;
  r.rcx = handle_.tdr;
  const Status s = call(Leaf::TDH_MR_FINALIZE, r, c);
  if (s != TDX_SUCCESS) throw std::runtime_error("td_finalize: TDH.MR.FINALIZE returned " + seam::status_string(s));
  finalized_ = true;
  // Each vCPU starts running the TD: the first VP.ENTER loads the Secure-EPT root.
  for (u32 v = 0; v < vcpus(); ++v) c += vp_enter(v);
  return c;
}

bool TdxVm::map_private(u32 cache, Gpa gpa, Hpa hpa, int level, Cycles& cycles) {
  const int tdx_level = level - 1;
  map_busy_ = false;
  if (!ensure_tables(gpa, tdx_level, cache, cycles)) return false;
  if (tdx_.pamt().dynamic() && level == PG_LEVEL_4K) pamt_get(hpa, cycles, &pamt_pool(cache));
  SeamcallRegs r;
  r.rcx = seam::page_info(gpa, tdx_level);
  r.rdx = handle_.tdr;
  r.r8 = hpa;
  const Cycles from = now_;
  const Status s = call(Leaf::TDH_MEM_PAGE_AUG, r, cycles, false);
  if (s != TDX_SUCCESS) {
    map_busy_ = seam::status_class(s) == seam::TDX_OPERAND_BUSY;
    if (tdx_.pamt().dynamic() && level == PG_LEVEL_4K) pamt_put(hpa, cycles);  // tdx_pamt_put on failure
    return false;
  }
  note_in_flight(kPageKeyBit | (gpa >> kPageShift), from);
  const u64 tag = (hpa >> kPageShift) < mem_.limit_frames() && mem_.is_allocated(hpa >> kPageShift)
                      ? mem_.tag(hpa >> kPageShift)
                      : 0;
  private_[gpa >> kPageShift] = private_page(hpa, level, tag, false);
  return true;
}

Status TdxVm::accept(u32 vcpu, Gpa gpa, int tdx_level, Cycles& cycles) {
  seam::SeamcallTxn t;
  t.in.rcx = seam::page_info(gpa, tdx_level);
  t.in.rax = u64(seam::TdcallLeaf::TDG_MEM_PAGE_ACCEPT);
  t.tdcall = true;
  t.tdvpr = handle_.tdvpr.at(vcpu);
  t.initiator = 100 + vcpu;
  ++seamcalls;
  t.start = now_;
  const Cycles c = tdx_.transport(t);
  cycles += c;
  now_ += c;
  return t.status();
}

Cycles TdxVm::td_exit(u32 vcpu) {
  const Cycles c = tdx_.td_exit(handle_.tdvpr.at(vcpu));
  now_ += c;
  return c;
}

Cycles TdxVm::vp_enter(u32 vcpu) {
  Cycles c = 0;
  if (!finalized_ || torn_down_) return 0;
  const seam::Td* t = td();
  if (!t || t->vcpus.at(vcpu).in_guest) return 0;  // already running
  SeamcallRegs r;
  r.rcx = handle_.tdvpr.at(vcpu);
  call(Leaf::TDH_VP_ENTER, r, c);
  return c;
}

Cycles TdxVm::kick_all() {
  Cycles c = 0;
  // KVM's kick: an IPI to each vCPU in the guest, which takes a TD exit.
  for (u32 v = 0; v < vcpus(); ++v) {
    const seam::Td* t = td();
    if (t && t->vcpus.at(v).in_guest) c += kick_ipi_;
    c += td_exit(v);
  }
  ++kicks;
  return c;
}

Cycles TdxVm::reenter_all() {
  Cycles c = 0;
  for (u32 v = 0; v < vcpus(); ++v) c += vp_enter(v);
  return c;
}

bool TdxVm::remove_private(Gfn gfn, Cycles& cycles) {
  PrivatePage* found = private_.lookup(gfn);
  if (!found) return true;
  PrivatePage& p = *found;
  const Gpa gpa = gfn << kPageShift;
  const int tdx_level = p.level - 1;
  auto mem_op = [&](Leaf leaf) {
    SeamcallRegs r;
    r.rcx = seam::page_info(gpa, tdx_level);
    r.rdx = handle_.tdr;
    return call(leaf, r, cycles);
  };
  // remove_external_spte: BLOCK, TRACK, kick every vCPU out so the old epoch
  // drains, REMOVE, then WBINVD the page under the TD's key.
  if (mem_op(Leaf::TDH_MEM_RANGE_BLOCK) != TDX_SUCCESS) {
    bugged_ = true;  // KVM_BUG_ON: the page stays recorded, never handed back
    return false;
  }
  SeamcallRegs t;
  t.rcx = handle_.tdr;
  if (call(Leaf::TDH_MEM_TRACK, t, cycles) != TDX_SUCCESS) {
    bugged_ = true;
    return false;
  }
  cycles += kick_all();
  epoch_drained_ = now_;
  const Status s = mem_op(Leaf::TDH_MEM_PAGE_REMOVE);
  cycles += reenter_all();
  if (s != TDX_SUCCESS) {
    bugged_ = true;
    return false;
  }
  SeamcallRegs w;
  w.rcx = seam::keyed_hpa(p.hpa, params_.hkid);
  call(Leaf::TDH_PHYMEM_PAGE_WBINVD, w, cycles);
  if (tdx_.pamt().dynamic() && p.level == PG_LEVEL_4K) pamt_put(p.hpa, cycles);
  private_.erase(gfn);
  ++removed;
  return true;
}

bool TdxVm::reclaim(Hpa hpa, Cycles& cycles) {
  SeamcallRegs r;
  r.rcx = hpa;
  if (call(Leaf::TDH_PHYMEM_PAGE_RECLAIM, r, cycles) != TDX_SUCCESS) return false;
  SeamcallRegs w;
  w.rcx = seam::keyed_hpa(hpa, params_.hkid);
  call(Leaf::TDH_PHYMEM_PAGE_WBINVD, w, cycles);
  return true;
}

Cycles TdxVm::teardown() {
  Cycles c = 0;
  if (torn_down_) throw std::runtime_error("td_teardown: the TD is already torn down");
  for (u32 v = 0; v < vcpus(); ++v) {
    c += td_exit(v);
    SeamcallRegs r;
    r.rcx = handle_.tdvpr[v];
    call(Leaf::TDH_VP_FLUSH, r, c);
  }
  auto must = [&](Leaf leaf, u64 rcx) {
    SeamcallRegs r;
    r.rcx = rcx;
    const Status s = call(leaf, r, c);
    if (s != TDX_SUCCESS)
      throw std::runtime_error(std::string("td_teardown: ") + seam::leaf_name(u16(leaf)) + " returned " +
                               seam::status_string(s));
  };
  must(Leaf::TDH_MNG_VPFLUSHDONE, handle_.tdr);
  must(Leaf::TDH_PHYMEM_CACHE_WB, 0);
  must(Leaf::TDH_MNG_KEY_FREEID, handle_.tdr);
  torn_down_ = true;
  bool ok = true;
  // Private pages go back to their memslots' host memory; the rest to the allocator.
  for (auto& [gfn, p] : private_) {
    ok &= reclaim(p.hpa, c);
    if (tdx_.pamt().dynamic() && p.level == PG_LEVEL_4K) pamt_put(p.hpa, c);
  }
  private_.clear();
  auto give_back = [&](Hpa hpa) {
    ok &= reclaim(hpa, c);
    if (tdx_.pamt().dynamic()) pamt_put(hpa, c);
    mem_.free(hpa >> kPageShift);
  };
  for (auto& [key, page] : sept_tables_) give_back(page);
  sept_tables_.clear();
  // PAMT pairs never used go back to the host.
  for (auto& pool : pamt_cache_) {
    for (Hpa hpa : pool) mem_.free(hpa >> kPageShift);
    pamt_cache_pages -= pool.size();
    pool.clear();
  }
  // Cached pages never reached the module: only their PAMT refcount and the allocator.
  for (auto& pages : external_spt_cache_) {
    for (Hpa hpa : pages) {
      if (tdx_.pamt().dynamic()) pamt_put(hpa, c);
      mem_.free(hpa >> kPageShift);
    }
    pages.clear();
  }
  if (const seam::Td* t = td()) {
    // Copies: RECLAIM of the last page drops the TD's state.
    std::vector<Hpa> pages;
    for (const seam::TdVcpu& v : t->vcpus) {
      pages.insert(pages.end(), v.tdcx.begin(), v.tdcx.end());
      pages.push_back(v.tdvpr);
    }
    pages.insert(pages.end(), t->tdcs.begin(), t->tdcs.end());
    for (Hpa hpa : pages) give_back(hpa);
  }
  give_back(handle_.tdr);
  if (!ok) bugged_ = true;
  return c;
}

}  // namespace septsim::mmu
