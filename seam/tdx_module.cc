#include "seam/tdx_module.h"

#include <algorithm>
#include <cctype>

#include "model/hypervisor.h"
#include "seam/op_state.h"
#include "seam/sept_state_table.h"
#include "seam/tdx_module_call.h"

namespace septsim::seam {

using septe::SeptState;

namespace {
std::string counter_name(const char* leaf, const char* prefix = "seam.calls.") {
  std::string s = prefix;
  for (const char* p = leaf; *p; ++p) s += *p == '.' ? '_' : char(std::tolower(static_cast<unsigned char>(*p)));
  return s;
}
}  // namespace

TdxModule::TdxModule(sc_core::sc_module_name name, const model::Config& cfg, model::PhysMem& mem,
                     model::StatsRegistry& stats)
    : sc_module(name),
      mem_(mem),
      timing_(SeamTiming::from(cfg)),
      pamt_((cfg.u("seam.tdmr_gib") ? cfg.u("seam.tdmr_gib") : cfg.u("host.mem_gib")) << 30, cfg.b("seam.dynamic_pamt")),
      tdcs_pages_(unsigned(cfg.u("seam.tdcs_pages"))),
      tdcx_per_vcpu_(unsigned(cfg.u("seam.tdcx_per_vcpu"))),
      max_pa_(unsigned(cfg.u("host.maxphyaddr"))),
      packages_(unsigned(cfg.u("host.packages"))),
      lps_per_package_(unsigned(cfg.u("host.lps_per_package"))),
      demote_uninterruptible_(cfg.b("seam.enhance_demote_interruptibility")),
      host_dpamt_(*this, mem) {
  host_dpamt_.lock().bind_stats(stats);
  if (tdcs_pages_ <= kSeptRootTdcsIndex) throw model::ConfigError("config key 'seam.tdcs_pages' must be at least 4");
  // MAX_PKGS bounds lp_info.pkg; the bitmaps here are 64 bits wide.
  if (packages_ < 1 || packages_ > 64) throw model::ConfigError("config key 'host.packages' must be 1..64");
  if (lps_per_package_ < 1) throw model::ConfigError("config key 'host.lps_per_package' must be at least 1");
  cachewb_intr_point_.assign(packages_, 0);
  for (u16 n = 0; n < SeamTiming::kLeaves; ++n)
    if (const char* l = leaf_name(n)) {
      calls_[n] = &stats.counter(counter_name(l), std::string(l) + " SEAMCALLs");
      leaf_cycles_[n] = &stats.counter(counter_name(l, "seam.leaf_cycles."), "cycles charged for " + std::string(l));
    }
  tdcalls_ = &stats.counter("seam.calls.tdg_mem_page_accept", "TDG.MEM.PAGE.ACCEPT TDCALLs");
  tdcall_cycles_ = &stats.counter("seam.leaf_cycles.tdg_mem_page_accept", "cycles charged for TDG.MEM.PAGE.ACCEPT");
  errors_ = &stats.counter("seam.status.errors", "SEAMCALLs/TDCALLs returning an error status (bit 63)");
  busy_ = &stats.counter("seam.status.busy", "calls refused with TDX_OPERAND_BUSY (lock contention)");
  cycles_ = &stats.counter("seam.cycles", "cycles charged for SEAMCALLs, TDCALLs and TD exits");
  td_exits_ = &stats.counter("seam.td_exits", "TD exits");
  zero_step_exits_ = &stats.counter("seam.zero_step_exits",
                                    "VP.ENTERs turned into EPT-violation exits by the zero-step filter");
  epoch_flushes_ = &stats.counter("seam.epoch_flushes", "TLB flushes by VP.ENTER on a TD epoch change");
  g_pamt_bytes_ = &stats.gauge("seam.pamt.bytes", "PAMT memory in bytes (static arrays + Dynamic PAMT page pairs)");
  g_pamt_static_ = &stats.gauge("seam.pamt.static_bytes", "PAMT arrays allocated at module init, bytes");
  g_pamt_pairs_bytes_ = &stats.gauge("seam.pamt.pair_bytes", "Dynamic PAMT_4K page pairs installed, bytes");
  g_pamt_pairs_ = &stats.gauge("seam.pamt.pairs", "Dynamic PAMT_4K page pairs installed");
  g_sept_pages_ = &stats.gauge("seam.sept.pages", "Secure-EPT pages of all TDs (roots included)");
  g_sept_bytes_ = &stats.gauge("seam.sept.bytes", "Secure-EPT memory in bytes");
  g_tds_ = &stats.gauge("seam.tds", "TDs known to the module (TDR not reclaimed)");
  g_private_4k_ = &stats.gauge("seam.td_pages_4k", "4K-equivalent pages owned by TDs (sum of TDR.CHLDCNT)");
  update_gauges();
}

void TdxModule::update_gauges() {
  *g_pamt_static_ = pamt_.static_bytes();
  *g_pamt_pairs_bytes_ = pamt_.pair_bytes();
  *g_pamt_bytes_ = pamt_.bytes();
  *g_pamt_pairs_ = pamt_.pairs();
  *g_sept_pages_ = sept_pages_;
  *g_sept_bytes_ = sept_pages_ * kPageSize;
  *g_tds_ = tds_.size();
  u64 pages = 0;
  for (const auto& [_, t] : tds_) pages += t.chldcnt;
  *g_private_4k_ = pages;
}

bool TdxModule::configure_dynamic_pamt(bool on) {
  if (on == pamt_.dynamic()) return true;
  if (pages_given_) return false;
  pamt_.set_dynamic(on);
  update_gauges();
  return true;
}

const Td* TdxModule::td(Hpa tdr) const {
  auto it = tds_.find(tdr);
  return it == tds_.end() ? nullptr : &it->second;
}

Td* TdxModule::td_of_vcpu(Hpa tdvpr) {
  auto it = vcpu_owner_.find(tdvpr);
  if (it == vcpu_owner_.end()) return nullptr;
  auto t = tds_.find(it->second);
  return t == tds_.end() ? nullptr : &t->second;
}

void TdxModule::bind_vcpu(Hpa tdvpr, model::VcpuControl* hw) {
  if (Td* t = td_of_vcpu(tdvpr))
    if (TdVcpu* v = t->vcpu(tdvpr)) v->hw = hw;
}

Cycles TdxModule::transport(SeamcallTxn& txn) {
  Call c{txn, txn.in, txn.out, rax_leaf(txn.in.rax), rax_version(txn.in.rax), nullptr, 0, 0, SeptWalk{}, false, 0};
  // SEAMRET hands back the VMM's registers: what a leaf does not write comes
  // back as it went in.
  txn.out = txn.in;
  // Lock windows: the call's expected length (an ACCEPT's level is not decoded yet: 4K).
  const Cycles expected = txn.tdcall ? timing_.accept_4k : timing_.of(rax_leaf(txn.in.rax));
  locks_.begin(txn.initiator, txn.start, txn.start + expected);
  Cycles cost;
  Status s;
  if (txn.tdcall) {
    ++*tdcalls_;
    tdcall_initiator_[txn.tdvpr] = txn.initiator;
    s = dispatch_tdcall(c);
    cost = accept_cost(c) + c.extra_cycles;
    *tdcall_cycles_ += cost;
  } else {
    const bool known = c.number < SeamTiming::kLeaves && calls_[c.number];
    if (known) ++*calls_[c.number];
    s = dispatch(c);
    cost = timing_.of(c.number);
    if (known) *leaf_cycles_[c.number] += cost;
  }
  txn.out.rax = s;
  if (observer_) report(c, s, cost);
  if (is_error(s)) ++*errors_;
  if (status_class(s) == TDX_OPERAND_BUSY) ++*busy_;
  locks_.commit(txn.start + lock_hold(c, s, cost));
  *cycles_ += cost;
  update_gauges();
  return cost;
}

// Every lock a call took is held until it returns, refused or not: each
// handler releases its locks at its EXIT label, after the check that failed
// or the work that was interrupted. A call interrupted once its work had
// begun holds them as long as a completed call: CACHE.WB's
// TDX_INTERRUPTED_RESUMABLE after the sub-blocks it wrote back with the WBT
// mutex and the KOT held (tdh_phymem_cache_wb.c), PROMOTE's
// TDX_INTERRUPTED_RESTARTABLE after is_sept_page_valid_for_merge locked and
// compared the 512 entries (tdh_mem_page_promote.c, step 3). A refusal holds
// the locks it took before the failing check (a BUSY one not the lock it
// failed on) for the checks only, timing_.refusal_hold, whatever it is
// charged; DEMOTE's TDX_INTERRUPTED_RESTARTABLE is one: with no L2 VM it
// tests the interrupt after its checks, before pamt_demote
// (tdh_mem_page_demote.c).
Cycles TdxModule::lock_hold(const Call& c, Status s, Cycles cost) const {
  if (!is_error(s) || c.stopped_after_work) return cost;
  return std::min(cost, timing_.refusal_hold);
}

// A 2M ACCEPT that zeroed only some of its 512 chunks (interrupted, or
// resuming one that was) costs between the 4K and the 2M latency in
// proportion [model: interpolated, no measurement of a partial ACCEPT].
Cycles TdxModule::accept_cost(const Call& c) const {
  if (c.level != 1) return timing_.accept_4k;
  if (c.accept_chunks == 0 || c.accept_chunks >= kPtesPerTable || timing_.accept_2m < timing_.accept_4k)
    return timing_.accept_2m;
  return timing_.accept_4k + (timing_.accept_2m - timing_.accept_4k) * (c.accept_chunks - 1) / (kPtesPerTable - 1);
}

void TdxModule::report(const Call& c, Status s, Cycles cost) const {
  observer_->on_call(SeamcallOutcome{c.number, c.txn.tdcall, c.level, c.walked, c.w.reached, c.w.state, s,
                                     c.txn.initiator, c.txn.start, cost});
}

Status TdxModule::seamcall(Leaf leaf, SeamcallRegs& regs, unsigned initiator, Cycles start, unsigned version) {
  SeamcallTxn t;
  t.in = regs;
  t.in.rax = leaf_rax(leaf, version);
  t.initiator = initiator;
  t.start = start;
  transport(t);
  regs = t.out;
  return t.out.rax;
}

Status TdxModule::tdcall(TdcallLeaf leaf, Hpa tdvpr, SeamcallRegs& regs, unsigned initiator, Cycles start) {
  SeamcallTxn t;
  t.in = regs;
  t.in.rax = u64(leaf);
  t.tdcall = true;
  t.tdvpr = tdvpr;
  t.initiator = initiator;
  t.start = start;
  transport(t);
  regs = t.out;
  return t.out.rax;
}

namespace {
// The registers a leaf clears as it starts ("no extended error information"):
// RCX/RDX in the Secure-EPT leaves, RCX..R11 in RECLAIM and RDMD, RCX in
// MNG.INIT (the api_calls/*.c handlers).
void clear_outputs(Leaf leaf, SeamcallRegs& out) {
  switch (leaf) {
    case Leaf::TDH_PHYMEM_PAGE_RECLAIM:
    case Leaf::TDH_PHYMEM_PAGE_RDMD: out.r8 = out.r9 = out.r10 = out.r11 = 0; [[fallthrough]];
    case Leaf::TDH_MEM_PAGE_ADD:
    case Leaf::TDH_MEM_PAGE_AUG:
    case Leaf::TDH_MEM_PAGE_DEMOTE:
    case Leaf::TDH_MEM_PAGE_PROMOTE:
    case Leaf::TDH_MEM_PAGE_RELOCATE:
    case Leaf::TDH_MEM_PAGE_REMOVE:
    case Leaf::TDH_MEM_RANGE_BLOCK:
    case Leaf::TDH_MEM_RANGE_UNBLOCK:
    case Leaf::TDH_MEM_SEPT_ADD:
    case Leaf::TDH_MEM_SEPT_RD:
    case Leaf::TDH_MEM_SEPT_REMOVE:
    case Leaf::TDH_MR_EXTEND: out.rdx = 0; [[fallthrough]];
    case Leaf::TDH_MNG_INIT: out.rcx = 0; break;
    default: break;
  }
}
}  // namespace

Status TdxModule::dispatch(Call& c) {
  if (rax_reserved_set(c.in.rax)) return with_operand(TDX_OPERAND_INVALID, operand::RAX);
  clear_outputs(c.leaf(), c.out);
  // 1.1: in 1.5.01 only PROMOTE, SEPT.ADD, SEPT.REMOVE (and MNG/VP.RD) take version 1.
  const bool versioned = c.number == u16(Leaf::TDH_MEM_PAGE_PROMOTE) || c.number == u16(Leaf::TDH_MEM_SEPT_ADD) ||
                         c.number == u16(Leaf::TDH_MEM_SEPT_REMOVE);
  if (c.version > (versioned ? 1u : 0u)) return with_operand(TDX_OPERAND_INVALID, operand::RAX);
  switch (c.leaf()) {
    case Leaf::TDH_MNG_CREATE: return mng_create(c);
    case Leaf::TDH_MNG_KEY_CONFIG: return mng_key_config(c);
    case Leaf::TDH_MNG_ADDCX: return mng_addcx(c);
    case Leaf::TDH_MNG_INIT: return mng_init(c);
    case Leaf::TDH_VP_CREATE: return vp_create(c);
    case Leaf::TDH_VP_ADDCX: return vp_addcx(c);
    case Leaf::TDH_VP_INIT: return vp_init(c);
    case Leaf::TDH_VP_ENTER: return vp_enter(c);
    case Leaf::TDH_VP_FLUSH: return vp_flush(c);
    case Leaf::TDH_MNG_VPFLUSHDONE: return mng_vpflushdone(c);
    case Leaf::TDH_MNG_KEY_FREEID: return mng_key_freeid(c);
    case Leaf::TDH_MR_EXTEND: return mr_extend(c);
    case Leaf::TDH_MR_FINALIZE: return mr_finalize(c);
    case Leaf::TDH_MEM_SEPT_ADD: return mem_sept_add(c);
    case Leaf::TDH_MEM_PAGE_ADD: return mem_page_add(c);
    case Leaf::TDH_MEM_PAGE_AUG: return mem_page_aug(c);
    case Leaf::TDH_MEM_RANGE_BLOCK: return mem_range_block(c);
    case Leaf::TDH_MEM_RANGE_UNBLOCK: return mem_range_unblock(c);
    case Leaf::TDH_MEM_TRACK: return mem_track(c);
    case Leaf::TDH_MEM_PAGE_REMOVE: return mem_page_remove(c);
    case Leaf::TDH_MEM_SEPT_REMOVE: return mem_sept_remove(c);
    case Leaf::TDH_MEM_SEPT_RD: return mem_sept_rd(c);
    case Leaf::TDH_MEM_PAGE_PROMOTE: return mem_page_promote(c);
    case Leaf::TDH_MEM_PAGE_DEMOTE: return mem_page_demote(c);
    case Leaf::TDH_MEM_PAGE_RELOCATE: return mem_page_relocate(c);
    case Leaf::TDH_PHYMEM_PAGE_RECLAIM: return phymem_page_reclaim(c);
    case Leaf::TDH_PHYMEM_PAGE_WBINVD: return phymem_page_wbinvd(c);
    case Leaf::TDH_PHYMEM_PAGE_RDMD: return phymem_page_rdmd(c);
    case Leaf::TDH_PHYMEM_CACHE_WB: return phymem_cache_wb(c);
    case Leaf::TDH_PHYMEM_PAMT_ADD: return phymem_pamt_add(c);
    case Leaf::TDH_PHYMEM_PAMT_REMOVE: return phymem_pamt_remove(c);
  }
  return with_operand(TDX_OPERAND_INVALID, operand::RAX);
}

Status TdxModule::dispatch_tdcall(Call& c) {
  if (c.number == u16(TdcallLeaf::TDG_MEM_PAGE_ACCEPT)) return mem_page_accept(c);
  return with_operand(TDX_OPERAND_INVALID, operand::RAX);
}

// ---- common prologue --------------------------------------------------------

// check_lock_and_map_explicit_tdr (helpers.c): a 4K-aligned private HPA,
// inside a TDMR, its PAMT entry locked (a vCPU in the TD holds it shared
// until its TD exit), then of type PT_TDR.
Status TdxModule::find_td(Call& c, u64 tdr, u32 op, bool exclusive) {
  if (!hpa_operand_ok(tdr, kPageSize)) return with_operand(TDX_OPERAND_INVALID, op);
  if (!pamt_.in_tdmr(tdr)) return with_operand(TDX_OPERAND_ADDR_RANGE_ERROR, op);
  auto it = tds_.find(tdr);
  const bool held_by_guest = exclusive && it != tds_.end() && it->second.vcpu_in_guest();
  if (held_by_guest || !locks_.acquire(LockKind::Tdr, tdr, exclusive)) return with_operand(TDX_OPERAND_BUSY, op);
  if (it == tds_.end() || pamt_.get(tdr, PG_LEVEL_4K).pt != PageType::PT_TDR)
    return with_operand(TDX_PAGE_METADATA_INCORRECT, op);
  c.td = &it->second;
  return TDX_SUCCESS;
}

// The TDVPR the same way (check_and_lock_explicit_4k_private_hpa, PT_TDVPR),
// then the owner TDR's PAMT entry shared (lock_and_map_implicit_tdr, TDR).
Status TdxModule::find_vcpu(Call& c, u64 tdvpr, u32 op, bool exclusive, TdVcpu*& v) {
  if (!hpa_operand_ok(tdvpr, kPageSize)) return with_operand(TDX_OPERAND_INVALID, op);
  if (!pamt_.in_tdmr(tdvpr)) return with_operand(TDX_OPERAND_ADDR_RANGE_ERROR, op);
  Td* t = td_of_vcpu(tdvpr);
  v = t ? t->vcpu(tdvpr) : nullptr;
  if ((exclusive && v && v->in_guest) || !locks_.acquire(LockKind::Tdr, tdvpr, exclusive))
    return with_operand(TDX_OPERAND_BUSY, op);
  if (!v || pamt_.get(tdvpr, PG_LEVEL_4K).pt != PageType::PT_TDVPR)
    return with_operand(TDX_PAGE_METADATA_INCORRECT, op);
  if (!locks_.acquire(LockKind::Tdr, t->tdr, false)) return with_operand(TDX_OPERAND_BUSY, operand::TDR);
  c.td = t;
  return TDX_SUCCESS;
}

namespace {
u64 pamt_lock_key(Hpa hpa, int pg) { return align_down(hpa, pg) | u64(pg); }
}  // namespace

bool TdxModule::lock_pamt_walk(Hpa hpa, int target_pg, bool exclusive) {
  const int leaf = std::max(target_pg, pamt_.leaf_level(hpa));
  for (int pg = PG_LEVEL_1G; pg > leaf; --pg)
    if (!locks_.acquire(LockKind::Pamt, pamt_lock_key(hpa, pg), false)) return false;
  return locks_.acquire(LockKind::Pamt, pamt_lock_key(hpa, leaf), exclusive);
}

bool TdxModule::lock_pamt_entry(Hpa hpa, int pg) {
  return locks_.acquire(LockKind::Pamt, pamt_lock_key(hpa, pg), true);
}

Status TdxModule::check_build_state(Call& c, bool op_lock) {
  Td& t = *c.td;
  if (t.fatal) return TDX_TD_FATAL;
  if (t.lifecycle != Lifecycle::TD_KEYS_CONFIGURED) return TDX_TD_KEYS_NOT_CONFIGURED;
  if (t.tdcs.size() < tdcs_pages_) return TDX_TDCS_NOT_ALLOCATED;
  if (op_lock && !locks_.acquire(LockKind::OpState, t.tdr, false))
    return with_operand(TDX_OPERAND_BUSY, operand::OP_STATE);
  if (!op_state_allowed(c.leaf(), t.op_state)) return TDX_OP_STATE_INCORRECT;
  return TDX_SUCCESS;
}

Status TdxModule::decode_page_info(Call& c, int min_level, int max_level) {
  const u64 rcx = c.in.rcx;
  const int level = int(rcx & 7);
  const Gpa gpa = rcx & septe::kHpaMask;
  const Status bad = with_operand(TDX_OPERAND_INVALID, operand::RCX);
  if ((rcx & 0xFF8ull) || (rcx >> 52)) return bad;
  if (level < min_level || level > max_level) return bad;
  if (gpa & (tdx_level_size(level) - 1)) return bad;
  // check_gpa_validity: private (shared bit clear) and within GPAW.
  if ((gpa >> c.td->shared_bit()) != 0) return bad;
  c.level = level;
  c.gpa = gpa;
  return TDX_SUCCESS;
}

Status TdxModule::sept_fail(Call& c, Status base) {
  c.out.rcx = septe_arch_value(c.w.entry);
  c.out.rdx = septe_level_state(c.w.level, c.w.state);
  return with_operand(base, operand::RCX);
}

Status TdxModule::walk_and_lock(Call& c, bool tree_exclusive) {
  c.w = c.td->sept->walk(c.gpa, c.level);
  c.walked = true;
  if (!c.w.reached) return sept_fail(c, TDX_EPT_WALK_FAILED);
  // sept_lock_acquire_host: BUSY on RCX, with the entry the walk read in
  // RCX/RDX (set_arch_septe_details_in_vmm_regs, in every tdh_mem_*.c).
  if (!locks_.acquire(LockKind::SeptEntry, c.w.entry_hpa, true)) return sept_fail(c, TDX_OPERAND_BUSY);
  (void)tree_exclusive;
  return TDX_SUCCESS;
}

Status TdxModule::mem_prologue(Call& c, const MemRule& r) {
  u64 tdr_reg = r.tdr_in_rdx ? c.in.rdx : c.in.rcx;
  if (r.handle == MemRule::Handle::Flags && handle_reserved_set(tdr_reg))
    return with_operand(TDX_OPERAND_INVALID, operand::RDX);
  if (r.handle != MemRule::Handle::Plain) tdr_reg &= ~u64(1);
  if (Status s = find_td(c, tdr_reg, r.tdr_in_rdx ? operand::RDX : operand::RCX, r.tdr_exclusive)) return s;
  if (Status s = check_build_state(c, r.op_lock)) return s;
  if (r.handle == MemRule::Handle::ReadL2 && (c.in.rdx & 1) && !c.td->debug)
    return with_operand(TDX_OPERAND_INVALID, operand::RDX);
  if (!c.td->sept) return TDX_OP_STATE_INCORRECT;
  const int max = r.max_level < 0 ? c.td->sept->top_level() : r.max_level;
  if (Status s = decode_page_info(c, r.min_level, max)) return s;
  if (r.tree != MemRule::Tree::None &&
      !locks_.acquire(LockKind::SeptTree, c.td->tdr, r.tree == MemRule::Tree::Exclusive))
    return with_operand(TDX_OPERAND_BUSY, operand::SEPT_TREE);
  return walk_and_lock(c, r.tree == MemRule::Tree::Exclusive);
}

bool TdxModule::tt_gate(const Call& c) const {
  return septe::state_needs_tracking(c.w.state) && op_state_needs_tracking(c.td->op_state);
}

bool TdxModule::tracked(const Call& c, Hpa page, int pg_level) const {
  return c.td->epochs.is_tlb_tracked(pamt_.get(page, pg_level).bepoch);
}

// check_and_lock_explicit_4k_private_hpa with PT_NDA: operand format, TDMR,
// the PAMT walk's locks, then the page's metadata.
Status TdxModule::take_page_4k(Call& c, Hpa hpa, u32 op) {
  (void)c;
  if (!hpa_operand_ok(hpa, kPageSize)) return with_operand(TDX_OPERAND_INVALID, op);
  if (!pamt_.in_tdmr(hpa)) return with_operand(TDX_OPERAND_ADDR_RANGE_ERROR, op);
  if (!lock_pamt_walk(hpa, PG_LEVEL_4K, true)) return with_operand(TDX_OPERAND_BUSY, op);
  const Status s = pamt_.check_free_4k(hpa);
  if (s == TDX_MISSING_PAMT_PAGE_PAIR) return s;
  if (s) return with_operand(s, op);
  return TDX_SUCCESS;
}

}  // namespace septsim::seam
