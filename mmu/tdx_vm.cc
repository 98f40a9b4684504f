#include "mmu/tdx_vm.h"

#include "mmu/sept_level.h"

#include <stdexcept>
#include <tuple>

#include "mmu/mmu_lock.h"
#include "mmu/mmu_stats.h"
#include "mmu/spte.h"
#include "seam/sept_entry.h"
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
      busy_kicks(stats.tdx_busy_kicks),
      kmem_cache_pages_(stats.tdx_kmem_cache_pages),
      tdx_(tdx),
      mem_(mem),
      dpamt_(tdx.host_pamt_refcount()),
      dpamt_owner_(tdx.host_pamt_refcount().new_owner()) {}

void TdxVm::set_clock_skew(Cycles skew) { tdx_.set_lock_retain(skew); }

void TdxVm::check_track(const KvmOp& op) {
  if (!mmu_lock_) return;
  if (!mmu_lock_->write_held())
    hook_violations_.push_back("rule 20: TDH.MEM.TRACK at cycle " + std::to_string(op.now()) +
                               " without the write mmu_lock");
  else if (op.now() < epoch_drained_)
    hook_violations_.push_back("rule 20: TDH.MEM.TRACK at cycle " + std::to_string(op.now()) +
                                " before the previous epoch drained at cycle " + std::to_string(epoch_drained_));
}

namespace {

// The Secure-EPT leaves, whose RCX is a page_info (GPA | TDX level), and
// whether a success may take rights away from a TLB entry.
bool sept_leaf(Leaf leaf, bool* narrows) {
  switch (leaf) {
    case Leaf::TDH_MEM_RANGE_BLOCK:
    case Leaf::TDH_MEM_PAGE_REMOVE:
    case Leaf::TDH_MEM_SEPT_REMOVE:
    case Leaf::TDH_MEM_PAGE_PROMOTE:
    case Leaf::TDH_MEM_PAGE_DEMOTE:
    case Leaf::TDH_MEM_PAGE_RELOCATE:
      *narrows = true;
      return true;
    case Leaf::TDH_MEM_SEPT_ADD:
    case Leaf::TDH_MEM_PAGE_ADD:
    case Leaf::TDH_MEM_PAGE_AUG:
    case Leaf::TDH_MEM_RANGE_UNBLOCK:
      *narrows = false;
      return true;
    default:
      return false;
  }
}

}  // namespace

Status TdxVm::call(Leaf leaf, SeamcallRegs& r, KvmOp& op, bool retry_busy) {
  if (leaf == Leaf::TDH_MEM_TRACK) check_track(op);
  bool narrows = false;
  if (check_log_ && sept_leaf(leaf, &narrows)) {
    // The whole range of the call's level (TDX level 0 = 4K, 1 = 2M, 2 = 1G).
    const int tdx_level = int(r.rcx & 7);
    const u64 pages = u64{1} << (9 * unsigned(tdx_level));
    check_log_->touch(gpa_to_gfn(r.rcx) & ~(pages - 1), pages);
    check_log_->tlb_may_be_stale |= narrows;
  }
  for (int i = 0;; ++i) {
    seam::SeamcallTxn t;
    t.in = r;
    t.in.rax = seam::leaf_rax(leaf);
    t.initiator = op.initiator();
    t.lp = lp_for(op);
    t.start = op.now();
    op.spent += tdx_.transport(t);
    ++seamcalls;
    last_busy_ = seam::status_class(t.status()) == seam::TDX_OPERAND_BUSY;
    if (retry_busy && seam::status_class(t.status()) == seam::TDX_OPERAND_BUSY && i < kBusyRetries) {
      ++busy_retries;
      continue;
    }
    r = t.out;
    return t.status();
  }
}

void TdxVm::pamt_get(Hpa hpa, KvmOp& op, std::vector<Hpa>* pool) {
  note_pamt(hpa);
  const u64 dry = dpamt().dry_takes();
  const size_t held = pool ? pool->size() : 0;
  const bool first = dpamt_.count(hpa) == 0;
  dpamt().get(hpa, op.spent, op.initiator(), op.start, pool);
  if (first && dpamt_.count(hpa) == 1) ++pamt_adds;
  if (pool) pamt_cache_pages -= held - pool->size();
  if (dpamt_.dry_takes() != dry)
    hook_violations_.push_back("rule 21: PAMT.ADD for the 2M region at " + hex(hpa & ~((Hpa{1} << 21) - 1)) +
                               " under mmu_lock found its page-pair cache empty and allocated");
}

void TdxVm::pamt_put(Hpa hpa, KvmOp& op) {
  note_pamt(hpa);
  const bool last = dpamt_.count(hpa) == 1;
  dpamt().put(hpa, op.spent, op.initiator(), op.start);
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
    if (pool.size() < pamt_fill_level()) {
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
  const size_t want = pamt_fill_level();
  if (pool.size() >= want) return 0;
  const u32 n = u32(want - pool.size());
  while (pool.size() < want) pool.push_back(mem_.alloc() << kPageShift);
  ++pamt_cache_topups;
  pamt_cache_pages += n;
  return n;
}

Hpa TdxVm::control_page(KvmOp& op) {
  const Hpa hpa = mem_.alloc() << kPageShift;
  if (tdx_.pamt().dynamic()) pamt_get(hpa, op);
  return hpa;
}

void TdxVm::create(KvmOp& op, const TdxVmParams& p, const std::vector<model::Vcpu*>& hw) {
  params_ = p;
  seam::TdCreateParams cp;
  cp.vcpus = u32(hw.size());
  cp.gpaw = p.gpaw;
  cp.ept_levels = p.ept_levels;
  cp.hkid = p.hkid;
  for (u32 v = 0; v < cp.vcpus; ++v) vcpu_lp_.push_back(v % tdx_.lps());
  cp.vcpu_lps = vcpu_lp_;
  const size_t regions = dpamt_.regions();
  const seam::TdBuildResult r = seam::build_td(tdx_, mem_, dpamt(), cp, handle_, op.initiator(), op.now());
  op.spent += r.cycles;
  pamt_adds += dpamt_.regions() - regions;  // the control pages' new regions
  if (r.status != TDX_SUCCESS)
    throw std::runtime_error("TD creation: " + r.failed_leaf + " returned " + seam::status_string(r.status));
  hw_ = hw;
  external_spt_cache_.assign(hw.size() + 1, {});
  pamt_cache_.assign(hw.size() + 1, {});
  for (size_t i = 0; i < hw.size(); ++i)
    if (hw[i]) tdx_.bind_vcpu(handle_.tdvpr[i], hw[i]);
}

void TdxVm::topup_external_spt_cache(u32 cache, KvmOp& op) {
  auto& pages = external_spt_cache_.at(cache);
  // One table per level below the root is the most one fault can link.
  while (pages.size() < size_t(params_.ept_levels - 1)) pages.push_back(sept_page(op));
}

u32 TdxVm::topup_external_cache(KvmOp& op) {
  const u32 cache = cache_of(op);
  topup_external_spt_cache(cache, op);
  op.spent += topup_pamt_cache(cache) * page_alloc_;
  return cache;
}

Hpa TdxVm::sept_page(KvmOp& op) {
  if (to_kmem_cache() && !sept_slab_.empty()) {
    const Hpa hpa = sept_slab_.back();
    sept_slab_.pop_back();
    --kmem_cache_pages_;
    return hpa;
  }
  // v6: a plain page; it gets its pair when it is linked (get_sept_page_pamt).
  if (sept_at_link()) return mem_.alloc() << kPageShift;
  return control_page(op);
}

void TdxVm::release_sept_page(Hpa hpa, KvmOp& op) {
  put_sept_page_pamt(hpa, op);
  free_sept_page(hpa);
}

void TdxVm::put_sept_page_pamt(Hpa hpa, KvmOp& op) {
  if (tdx_.pamt().dynamic() && !to_kmem_cache()) pamt_put(hpa, op);
}

void TdxVm::free_sept_page(Hpa hpa) {
  if (to_kmem_cache()) {
    // kmem_cache_free: the object stays in the slab; no destructor runs,
    // so its 2M region keeps the PAMT pair the constructor installed.
    sept_slab_.push_back(hpa);
    ++kmem_cache_pages_;
  } else {
    mem_.free(hpa >> kPageShift);
  }
}

void TdxVm::fail(const char* leaf, u64 operand, Status s) {
  last_error_ = std::string(leaf) + " at " + hex(operand) + " returned " + seam::status_string(s);
}

void TdxVm::bug(const char* kernel) {
  bugged_ = true;
  if (bug_reason_.empty()) bug_reason_ = "KVM_BUG_ON: " + last_error_;
  bug_reports_.push_back("rule kvm-bug: " + last_error_ + "; KVM_BUG_ON in " + kernel + " (the VM is dead)");
}

Status TdxVm::call_no_vcpus(Leaf leaf, SeamcallRegs& r, KvmOp& op) {
  // tdh_do_no_vcpus: the zap-side leaves run under the write mmu_lock, so
  // only a TD vCPU (a TDCALL, or VP.ENTER's zero-step lock) can hold what
  // they need. On TDX_OPERAND_BUSY KVM blocks re-entry
  // (wait_for_sept_zap), kicks every vCPU out of the guest and retries
  // once; the retry cannot be busy unless KVM or the module is broken.
  const SeamcallRegs in = r;
  Status s = call(leaf, r, op, false);
  if (seam::status_class(s) != seam::TDX_OPERAND_BUSY) return s;
  ++busy_kicks;
  wait_for_sept_zap_ = true;
  kick_all(op);
  r = in;
  s = call(leaf, r, op, false);
  wait_for_sept_zap_ = false;
  return s;
}

u64 TdxVm::content_term(Gfn gfn, u64 tag) {
  // splitmix64 finalizer over (gfn, tag): a sum of these tells a swap of two
  // pages' contents from no change.
  u64 z = gfn.raw() * 0x9e3779b97f4a7c15ull ^ (tag + 0x632be59bd9b4e019ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void TdxVm::account_content(Gfn gfn, int level, Hpa hpa, int sign) {
  u64 sum = 0;
  for (u64 i = 0; i < pages_per_level(level); ++i) {
    const Pfn pfn = (hpa >> kPageShift) + i;
    sum += content_term(gfn + i, mem_.is_allocated(pfn) ? mem_.tag(pfn) : 0);
  }
  // A 2M leaf is one region; a 1G one never happens (AUG stops at 2M).
  u64& d = content_digest_[gfn.raw() >> 9];
  d += sign > 0 ? sum : u64(0) - sum;
}

Pfn TdxVm::take_external_spt(u32 cache, KvmOp&) {
  auto& pages = external_spt_cache_.at(cache < external_spt_cache_.size() ? cache : vm_cache());
  if (pages.empty()) {
    last_error_ = "the external_spt cache is empty";
    bug("tdx_sept_link_private_spt");  // the top-up before mmu_lock must have covered every level
    return 0;
  }
  const Pfn page = pages.back() >> kPageShift;
  pages.pop_back();
  return page;
}

void TdxVm::free_unlinked_external_spt(Pfn page, KvmOp& op) { release_cached_sept_page(page << kPageShift, op); }

void TdxVm::release_cached_sept_page(Hpa hpa, KvmOp& op) {
  // v6: a page the module never got holds no pair (a refused SEPT.ADD or
  // DEMOTE put it back already).
  if (sept_at_link())
    free_sept_page(hpa);
  else
    release_sept_page(hpa, op);
}

bool TdxVm::set_external_spte(Gfn gfn, int level, u64 old_spte, u64 new_spte, Pfn child_external_spt, KvmOp& op) {
  if (!is_shadow_present_pte(new_spte)) return remove_leaf_spte(gfn, level, old_spte, op);
  if (!is_last_spte(new_spte, level)) return map_nonleaf_spte(gfn, level, child_external_spt, op);
  return map_leaf_spte(gfn, level, new_spte, op);
}

bool TdxVm::map_nonleaf_spte(Gfn gfn, int level, Pfn external_spt, KvmOp& op) {
  SeamcallRegs r;
  r.rcx = sept_page_info(gfn, level);
  r.rdx = handle_.tdr;
  r.r8 = external_spt << kPageShift;
  note_pamt(r.r8);
  // tdx_sept_map_nonleaf_spte (Dynamic PAMT v6): the page's pair first.
  get_sept_page_pamt(r.r8, op);
  // -EBUSY is not retried here: the fault returns RET_PF_RETRY.
  const Status s = call(Leaf::TDH_MEM_SEPT_ADD, r, op, false);
  if (s != TDX_SUCCESS) {
    unget_sept_page_pamt(r.r8, op);
    fail("TDH.MEM.SEPT.ADD", gfn_to_gpa(gfn), s);
    if (!last_busy_) bug("tdx_sept_map_nonleaf_spte");  // TDX_BUG_ON_2
    return false;
  }
  return true;
}

bool TdxVm::map_leaf_spte(Gfn gfn, int level, u64 new_spte, KvmOp& op) {
  const Gpa gpa = gfn_to_gpa(gfn);
  const Hpa hpa = spte_to_pfn(new_spte) << kPageShift;
  const bool add = !finalized_;
  if (add && (!page_add_src_ || level != PG_LEVEL_4K || !(new_spte & SPTE_TDX_PAGE_ADDED))) {
    last_error_ = "a private leaf at " + hex(gpa) + " before finalize without KVM_TDX_INIT_MEM_REGION";
    return false;
  }
  const bool dpamt = tdx_.pamt().dynamic() && level == PG_LEVEL_4K;
  note_pamt(hpa);
  // With the kmem_cache, guest_memfd's prepare hook gave the guest page its
  // pair before mmu_lock (the model charges it here): no pool, no rule 21.
  if (dpamt) pamt_get(hpa, op, pamt_mode_ == PamtCache::KmemCache ? nullptr : &pamt_pool(cache_of(op)));
  SeamcallRegs r;
  r.rcx = sept_page_info(gfn, level);
  r.rdx = handle_.tdr;
  r.r8 = hpa;
  Status s;
  if (add) {
    // The source: a host page holding the image piece (its tag stands for the content).
    ++nr_premapped_;
    const Pfn src = mem_.alloc();
    mem_.set_tag(src, *page_add_src_);
    r.r9 = src << kPageShift;
    // tdx_mem_page_add: BUSY is -EBUSY (the map returns RET_PF_RETRY and
    // kvm_tdp_mmu_map_private_pfn maps again), no retry here.
    s = call(Leaf::TDH_MEM_PAGE_ADD, r, op, false);
    mem_.free(src);
    --nr_premapped_;
  } else {
    s = call(Leaf::TDH_MEM_PAGE_AUG, r, op, false);  // BUSY: the fault retries
  }
  if (s != TDX_SUCCESS) {
    if (dpamt) pamt_put(hpa, op);
    fail(add ? "TDH.MEM.PAGE.ADD" : "TDH.MEM.PAGE.AUG", gpa, s);
    if (!last_busy_) bug(add ? "tdx_mem_page_add" : "tdx_mem_page_aug");  // TDX_BUG_ON_2
    return false;
  }
  account_content(gfn, level, hpa, 1);
  ++mapped_private_;
  return true;
}

void TdxVm::mr_extend(Gpa gpa, KvmOp& op) {
  for (u64 off = 0; off < kPageSize; off += 256) {
    SeamcallRegs m;
    m.rcx = gpa + off;
    m.rdx = handle_.tdr;
    // tdx_gmem_post_populate: any refusal, BUSY included, is TDX_BUG_ON_2
    // (the VM is bugged) and the ioctl fails with -EIO.
    const Status s = call(Leaf::TDH_MR_EXTEND, m, op, false);
    if (s != TDX_SUCCESS) {
      fail("TDH.MR.EXTEND", gpa + off, s);
      bug("tdx_gmem_post_populate");
      throw std::runtime_error("td_init_mem_region: TDH.MR.EXTEND at " + hex(gpa + off) + " returned " +
                               seam::status_string(s) + " (TDX_BUG_ON: the VM is bugged, -EIO)");
    }
  }
}

void TdxVm::finalize(KvmOp& op) {
  if (nr_premapped_)
    throw std::runtime_error("td_finalize: " + std::to_string(nr_premapped_) +
                             " premapped private pages were never PAGE.ADDed (nr_premapped)");
  SeamcallRegs r;
  r.rcx = handle_.tdr;
  // tdx_td_finalize: BUSY fails the ioctl with -EBUSY (the VMM may call it
  // again; the TD stays unfinalized), any other refusal is TDX_BUG_ON.
  const Status s = call(Leaf::TDH_MR_FINALIZE, r, op, false);
  if (s != TDX_SUCCESS) {
    fail("TDH.MR.FINALIZE", 0, s);
    const bool busy = last_busy_;
    if (!busy) bug("tdx_td_finalize");
    throw std::runtime_error("td_finalize: TDH.MR.FINALIZE returned " + seam::status_string(s) +
                             (busy ? " (tdx_td_finalize: -EBUSY, the TD is not finalized)"
                                   : " (TDX_BUG_ON: the VM is bugged, -EIO)"));
  }
  finalized_ = true;
  // Each vCPU starts running the TD: the first VP.ENTER loads the Secure-EPT root.
  reenter_all(op);
}

bool TdxVm::pending(Gpa gpa) const {
  const seam::Td* t = td();
  if (!t || !t->sept) return false;
  const seam::SeptWalk w = t->sept->walk_to_leaf(gpa);
  return w.reached && w.state == seam::septe::SeptState::PENDING;
}

Status TdxVm::accept(u32 vcpu, Gpa gpa, TdxLevel level, KvmOp& op, bool interrupt) {
  // ACCEPT zeroes the page: the guest's own write, so the digest follows it.
  const seam::Td* td_state = td();
  const seam::SeptWalk w =
      td_state && td_state->sept ? td_state->sept->walk_to_leaf(gpa) : seam::SeptWalk{};
  const Gfn gfn = gpa_to_gfn(gpa);
  // A 2M PENDING leaf partly accepted keeps its progress in the HPA's low bits.
  const Hpa leaf_hpa = seam::septe::leaf_hpa(w.entry, u64{1} << (kPageShift + 9 * unsigned(w.level)));
  const bool tracked = w.reached && w.level == level.value && w.state == seam::septe::SeptState::PENDING;
  const int pg_level = tdx_sept_level_to_pg_level(level);
  if (tracked) account_content(gfn, pg_level, leaf_hpa, -1);
  if (check_log_) check_log_->touch(gfn & ~(pages_per_level(pg_level) - 1), pages_per_level(pg_level));
  const Status s = tdcall_accept(vcpu, gpa, level, op, interrupt);
  if (tracked) account_content(gfn, pg_level, leaf_hpa, 1);
  return s;
}

Status TdxVm::tdcall_accept(u32 vcpu, Gpa gpa, TdxLevel level, KvmOp& op, bool interrupt) {
  seam::SeamcallTxn t;
  t.host_interrupt = interrupt;
  t.in.rcx = seam::page_info(gpa, level.value);
  t.in.rax = u64(seam::TdcallLeaf::TDG_MEM_PAGE_ACCEPT);
  t.tdcall = true;
  t.tdvpr = handle_.tdvpr.at(vcpu);
  t.initiator = 100 + vcpu;
  ++seamcalls;
  t.start = op.now();
  op.spent += tdx_.transport(t);
  return t.status();
}

void TdxVm::td_exit(KvmOp& op, u32 vcpu) { op.spent += tdx_.td_exit(handle_.tdvpr.at(vcpu)); }

void TdxVm::vp_enter(KvmOp& op, u32 vcpu) {
  // tdx_vcpu_run: no entry while a zap retries (wait_for_sept_zap) or once
  // the VMM stopped running the vCPUs for teardown.
  if (!finalized_ || torn_down_ || stopped_ || wait_for_sept_zap_) return;
  const seam::Td* t = td();
  if (!t || t->vcpus.at(vcpu).in_guest) return;  // already running
  SeamcallRegs r;
  r.rcx = handle_.tdvpr.at(vcpu);
  on_lp(lp_of(vcpu), [&] { call(Leaf::TDH_VP_ENTER, r, op); });
}

Status TdxVm::flush_vp(KvmOp& op, u32 vcpu) {
  // tdx_flush_vp_on_cpu: on the LP the vCPU last ran on.
  SeamcallRegs r;
  r.rcx = handle_.tdvpr.at(vcpu);
  Status s = TDX_SUCCESS;
  on_lp(lp_of(vcpu), [&] { s = call(Leaf::TDH_VP_FLUSH, r, op); });
  return s;
}

bool TdxVm::migrate_vcpu(KvmOp& op, u32 vcpu, u32 lp) {
  if (lp >= tdx_.lps()) return false;
  if (lp == lp_of(vcpu)) return true;
  const seam::Td* t = td();
  if (t && t->vcpus.at(vcpu).in_guest) td_exit(op, vcpu);
  // tdx_flush_vp_on_cpu: only while the HKID is assigned (after that the
  // teardown flushed every vCPU already), by IPI on the old LP.
  if (!torn_down_) {
    op.spent += kick_ipi_;
    const Status s = flush_vp(op, vcpu);
    // TDX_VCPU_NOT_ASSOCIATED: never entered since the last flush, nothing to do.
    if (s != TDX_SUCCESS && seam::status_class(s) != seam::TDX_VCPU_NOT_ASSOCIATED) {
      fail("TDH.VP.FLUSH", 0, s);
      bug("tdx_flush_vp");
    }
  }
  vcpu_lp_.at(vcpu) = lp;
  vp_enter(op, vcpu);
  return true;
}

void TdxVm::kick_all(KvmOp& op) {
  // KVM's kick: an IPI to each vCPU in the guest, which takes a TD exit.
  unsigned ipis = 0;
  for (u32 v = 0; v < vcpus(); ++v) {
    const seam::Td* t = td();
    if (t && t->vcpus.at(v).in_guest) op.spent += kick_ipi_, ++ipis;
    td_exit(op, v);
  }
  ++kicks;
  if (tp_) tp_->tdx_kick(ipis);
}

void TdxVm::reenter_all(KvmOp& op) {
  for (u32 v = 0; v < vcpus(); ++v) vp_enter(op, v);
}

bool TdxVm::mem_op(Leaf leaf, Gfn gfn, int level, KvmOp& op) {
  SeamcallRegs r;
  r.rcx = sept_page_info(gfn, level);
  r.rdx = handle_.tdr;
  const Status s = call_no_vcpus(leaf, r, op);
  if (s != TDX_SUCCESS) fail(seam::leaf_name(u16(leaf)), gfn_to_gpa(gfn), s);
  return s == TDX_SUCCESS;
}

bool TdxVm::block_and_track(Gfn gfn, int level, KvmOp& op) {
  // BLOCK, then tdx_track: TRACK and kick every vCPU out so the old epoch drains.
  return mem_op(Leaf::TDH_MEM_RANGE_BLOCK, gfn, level, op) && track_and_kick(gfn_to_gpa(gfn), op);
}

bool TdxVm::track_and_kick(Gpa gpa, KvmOp& op) {
  // tdx_track: before the TD is RUNNABLE no vCPU ever ran, so there is
  // nothing to track and no one to kick.
  if (!finalized_) return true;
  // debug.inject=skip-track: the kick without TDH.MEM.TRACK (the epoch never advances).
  if (!inject(Inject::SkipTrack)) {
    SeamcallRegs t;
    t.rcx = handle_.tdr;
    const Status ts = call_no_vcpus(Leaf::TDH_MEM_TRACK, t, op);
    if (ts != TDX_SUCCESS) {
      fail("TDH.MEM.TRACK", gpa, ts);
      return false;
    }
  }
  // debug.inject=skip-kick: TRACK, but the vCPUs stay in the guest in the old epoch.
  if (!inject(Inject::SkipKick)) kick_all(op);
  epoch_drained_ = op.now();
  return true;
}

bool TdxVm::remove_from_td(Gfn gfn, int level, Hpa hpa, KvmOp& op) {
  // tdx_sept_remove_leaf_spte: BLOCK, tdx_track (TRACK + kick), REMOVE,
  // then WBINVD of the page under the TD's HKID.
  // debug.inject=remove-without-block: TRACK and REMOVE of a leaf never BLOCKed.
  if (inject(Inject::RemoveWithoutBlock) ? !track_and_kick(gfn_to_gpa(gfn), op)
                                         : !block_and_track(gfn, level, op))
    return false;
  const bool removed_ok = mem_op(Leaf::TDH_MEM_PAGE_REMOVE, gfn, level, op);
  reenter_all(op);
  if (!removed_ok) return false;
  // One WBINVD for the page, or (the v3 huge-page series) one per 4K piece
  // of a huge page, as tdh_phymem_page_wbinvd_hkid walks the folio.
  const u64 calls = wbinvd_per_4k_ ? pages_per_level(level) : 1;
  for (u64 i = 0; i < calls; ++i) {
    SeamcallRegs w;
    w.rcx = seam::keyed_hpa(hpa + i * kPageSize, params_.hkid);
    call(Leaf::TDH_PHYMEM_PAGE_WBINVD, w, op);
  }
  return true;
}

bool TdxVm::remove_leaf_spte(Gfn gfn, int level, u64 old_spte, KvmOp& op) {
  const Hpa hpa = spte_to_pfn(old_spte) << kPageShift;
  note_pamt(hpa);
  // debug.inject=teardown-leak: guest_memfd's release (the vCPUs stopped,
  // the HKID still assigned) drops the page from the mirror without
  // removing it from the TD.
  if (stopped_ && !torn_down_ && inject(Inject::TeardownLeak)) {
    account_content(gfn, level, hpa, -1);
    --mapped_private_;
    return true;
  }
  // Once the HKID is released the page is RECLAIMed (TD_TEARDOWN) instead.
  const bool ok = torn_down_ ? reclaim(hpa, op) : remove_from_td(gfn, level, hpa, op);
  if (!ok) {
    // TDX_BUG_ON: the mirror keeps the leaf, the page is never handed back
    bug(torn_down_ ? "tdx_reclaim_page" : "tdx_sept_remove_leaf_spte");
    return false;
  }
  account_content(gfn, level, hpa, -1);
  // debug.inject=pamt-put-forgotten: the 2M region's refcount keeps this page's hold.
  if (tdx_.pamt().dynamic() && level == PG_LEVEL_4K && !inject(Inject::PamtPutForgotten)) pamt_put(hpa, op);
  --mapped_private_;
  if (!torn_down_) ++removed;
  return true;
}

bool TdxVm::split_external_spt(Gfn gfn, int level, u64 old_spte, Pfn external_spt, KvmOp& op) {
  // tdx_sept_split_private_spt: BLOCK the huge leaf, TRACK + kick, DEMOTE.
  // With Dynamic PAMT v6 the new S-EPT page needs its pair before the
  // module gets it, as for SEPT.ADD (docs/tdx-series.md: the series leaves
  // open where; the model takes it before BLOCK).
  const Hpa table = external_spt << kPageShift;
  get_sept_page_pamt(table, op);
  if (!block_and_track(gfn, level, op)) {
    unget_sept_page_pamt(table, op);
    bug("tdx_sept_split_private_spt");  // the leaf may stay BLOCKED
    return false;
  }
  SeamcallRegs r;
  r.rcx = sept_page_info(gfn, level);
  r.rdx = handle_.tdr;
  r.r8 = table;
  // A 2M page has no PAMT_4K pair (a 2M AUG needs none): DEMOTE installs
  // the one in R12/R13, from the cache topped up before mmu_lock.
  const bool pair = tdx_.pamt().dynamic() && level == PG_LEVEL_2M;
  if (pair) std::tie(r.r12, r.r13) = take_pamt_pair(cache_of(op));
  const Hpa r12 = r.r12, r13 = r.r13;
  // Such a DEMOTE does PAMT.ADD's work for the 2M range and holds its pair's
  // PAMT entries: under mmu.tdx_demote_lock=pamt_lock it runs inside the
  // host's pamt_lock, as the review of RFC v5 30/45 asks, so no other CPU's
  // PAMT.ADD or PAMT.REMOVE runs beside it (they wait, or it does).
  const bool locked = pair && demote_pamt_lock_;
  const Cycles asked = op.now();
  const Cycles granted = locked ? dpamt().lock().acquire(asked) : asked;
  op.spent += granted - asked;
  const Status s = demote_no_vcpus_ ? call_no_vcpus(Leaf::TDH_MEM_PAGE_DEMOTE, r, op)
                                    : call(Leaf::TDH_MEM_PAGE_DEMOTE, r, op);
  if (locked) dpamt().lock().release(granted, op.now());
  reenter_all(op);
  if (s != TDX_SUCCESS) {
    if (pair) return_pamt_pair(cache_of(op), r12, r13);
    unget_sept_page_pamt(table, op);
    fail("TDH.MEM.PAGE.DEMOTE", gfn_to_gpa(gfn), s);
    bug("tdx_sept_split_private_spt");
    return false;
  }
  const u64 pieces = pages_per_level(level) / pages_per_level(level - 1);
  // Each 4K piece now holds the pair: its removal puts, the last one PAMT.REMOVEs.
  note_pamt(spte_to_pfn(old_spte) << kPageShift);
  note_pamt(external_spt << kPageShift);
  if (pair) dpamt().adopt(spte_to_pfn(old_spte) << kPageShift, u32(pieces));
  mapped_private_ += pieces - 1;
  return true;
}

void TdxVm::promoted_pamt(u32 cache, Hpa page2m, Hpa r12, Hpa r13) {
  note_pamt(page2m);
  dpamt().forget(page2m);
  return_pamt_pair(cache, r12, r13);
}

bool TdxVm::free_external_spt(Gfn gfn, int, Pfn external_spt, KvmOp& op) {
  const Hpa hpa = external_spt << kPageShift;
  // tdx_sept_free_private_spt: RECLAIM is only legal once the HKID is
  // released (KVM_BUG_ON otherwise); a page that cannot be reclaimed is leaked.
  if (!torn_down_ || !reclaim(hpa, op)) {
    ++leaked_;
    last_error_ = "external_spt " + hex(hpa) + " for gfn " + hex(gfn) + " could not be reclaimed";
    bug("tdx_sept_free_private_spt");
    return false;
  }
  release_sept_page(hpa, op);
  return true;
}

bool TdxVm::reclaim(Hpa hpa, KvmOp& op) {
  // tdx_reclaim_page: RECLAIM, then the kernel clears the page itself
  // (MOVDIR64B); the HKID's cache lines were written back by CACHE.WB when
  // the HKID was released, so no per-page WBINVD.
  SeamcallRegs r;
  r.rcx = hpa;
  const Status s = call(Leaf::TDH_PHYMEM_PAGE_RECLAIM, r, op);
  if (s != TDX_SUCCESS) {
    fail("TDH.PHYMEM.PAGE.RECLAIM", hpa, s);
    return false;
  }
  if (mem_.is_allocated(hpa >> kPageShift)) mem_.set_tag(hpa >> kPageShift, 0);
  return true;
}

void TdxVm::stop_vcpus(KvmOp& op) {
  if (torn_down_) throw std::runtime_error("td_teardown: the TD is already torn down");
  stopped_ = true;
  for (u32 v = 0; v < vcpus(); ++v) td_exit(op, v);
}

void TdxVm::release_hkid(KvmOp& op) {
  // tdx_mmu_release_hkid: VP.FLUSH of every vCPU (tdx_flush_vp_on_cpu),
  // VPFLUSHDONE, CACHE.WB on each package, KEY.FREEID. The vCPUs are
  // already out (stop_vcpus).
  for (u32 v = 0; v < vcpus(); ++v) flush_vp(op, v);
  auto must = [&](Leaf leaf, u64 rcx) {
    SeamcallRegs r;
    r.rcx = rcx;
    const Status s = call(leaf, r, op);
    if (s != TDX_SUCCESS)
      throw std::runtime_error(std::string("td_teardown: ") + seam::leaf_name(u16(leaf)) + " returned " +
                               seam::status_string(s));
  };
  must(Leaf::TDH_MNG_VPFLUSHDONE, handle_.tdr);
  // smp_func_do_phymem_cache_wb on one CPU of each package: each CACHE.WB
  // writes back its own package's caches (host.packages).
  for (unsigned p = 0; p < tdx_.packages(); ++p) on_lp(tdx_.first_lp_of(p), [&] { must(Leaf::TDH_PHYMEM_CACHE_WB, 0); });
  must(Leaf::TDH_MNG_KEY_FREEID, handle_.tdr);
  torn_down_ = true;
}

void TdxVm::reclaim_control_pages(KvmOp& op) {
  bool ok = true;
  auto give_back = [&](Hpa hpa) {
    ok &= reclaim(hpa, op);
    if (tdx_.pamt().dynamic()) pamt_put(hpa, op);
    mem_.free(hpa >> kPageShift);
  };
  // PAMT pairs never used go back to the host.
  for (auto& pool : pamt_cache_) {
    for (Hpa hpa : pool) mem_.free(hpa >> kPageShift);
    pamt_cache_pages -= pool.size();
    pool.clear();
  }
  // Cached pages never reached the module: only their PAMT refcount (rfc-v5) and the allocator.
  for (auto& pages : external_spt_cache_) {
    for (Hpa hpa : pages) release_cached_sept_page(hpa, op);
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
  // tdx_reclaim_td_control_pages: the TDR last, and only the TDR gets a
  // WBINVD (tdh_phymem_page_wbinvd_tdr, under the TDX global KeyID): the
  // module reached it with that key, not the TD's.
  const Hpa tdr = handle_.tdr;
  ok &= reclaim(tdr, op);
  if (ok) {
    SeamcallRegs w;
    w.rcx = seam::keyed_hpa(tdr, kTdxGlobalKeyId);
    ok &= call(Leaf::TDH_PHYMEM_PAGE_WBINVD, w, op) == TDX_SUCCESS;
  }
  if (tdx_.pamt().dynamic()) pamt_put(tdr, op);
  mem_.free(tdr >> kPageShift);
  if (!ok) bug("tdx_reclaim_td_control_pages");
}

}  // namespace septsim::mmu
