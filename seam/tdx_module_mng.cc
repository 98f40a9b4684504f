// TD life-cycle and vCPU leaves: MNG.CREATE .. MNG.INIT, VP.CREATE .. VP.ENTER,
// VP.FLUSH, MNG.VPFLUSHDONE, MNG.KEY.FREEID, MR.EXTEND, MR.FINALIZE
// (tdh_mng_*.c, tdh_vp_*.c).
#include "model/hypervisor.h"
#include "seam/tdx_module.h"
#include "seam/tdx_module_call.h"

namespace septsim::seam {

namespace {
PamtEntry owned(PageType pt, Hpa tdr) { return PamtEntry{pt, tdr, 0}; }
}  // namespace

// RCX = new TDR page, RDX = HKID (tdh_mng_create.c: the HKID's format, the
// TDR page, the KOT exclusively, then the HKID's KOT entry must be free: it
// is from MNG.CREATE to KEY.FREEID).
Status TdxModule::mng_create(Call& c) {
  const Hpa tdr = c.in.rcx;
  if (c.in.rdx == 0 || c.in.rdx > 0xFFFF) return with_operand(TDX_OPERAND_INVALID, operand::RDX);
  if (Status s = take_page_4k(c, tdr, operand::RCX)) return s;
  if (!locks_.acquire(LockKind::Kot, 0, true)) return with_operand(TDX_OPERAND_BUSY, operand::KOT);
  for (const auto& [_, other] : tds_)
    if (other.hkid == c.in.rdx && other.lifecycle != Lifecycle::TD_TEARDOWN) return TDX_HKID_NOT_FREE;
  Td& t = tds_[tdr];
  t.tdr = tdr;
  t.hkid = u16(c.in.rdx);
  pamt_.set(tdr, PG_LEVEL_4K, owned(PageType::PT_TDR, tdr));
  pages_given_ = true;
  return TDX_SUCCESS;
}

// RCX = TDR, run once on each package (tdh_mng_key_config.c,
// tdh_mng_key_config): FATAL, the life cycle, then this package's bit of
// TDR.PKG_CONFIG_BITMAP (set: the warning TDX_KEY_CONFIGURED). The TD's keys
// are configured (TD_KEYS_CONFIGURED) once every package has its bit; until
// then a call on a configured package keeps returning TDX_KEY_CONFIGURED and
// the later leaves TDX_TD_KEYS_NOT_CONFIGURED.
Status TdxModule::mng_key_config(Call& c) {
  if (Status s = find_td(c, c.in.rcx, operand::RCX, true)) return s;
  if (c.td->fatal) return TDX_TD_FATAL;
  if (c.td->lifecycle != Lifecycle::TD_HKID_ASSIGNED) return TDX_LIFECYCLE_STATE_INCORRECT;
  const u64 pkg_bit = u64{1} << package_of(c.txn.lp);
  if (c.td->pkg_config_bitmap & pkg_bit) return TDX_KEY_CONFIGURED;
  c.td->pkg_config_bitmap |= pkg_bit;
  if (c.td->pkg_config_bitmap == all_packages()) c.td->lifecycle = Lifecycle::TD_KEYS_CONFIGURED;
  return TDX_SUCCESS;
}

// RCX = TDCS page, RDX = TDR. The fourth page becomes the SEPT root.
// tdh_mng_add_cx.c: FATAL, KEYS_CONFIGURED, then every TDCS page already
// added is TDX_TDCX_NUM_INCORRECT (the model's TDCS has no optional pages).
Status TdxModule::mng_addcx(Call& c) {
  if (Status s = find_td(c, c.in.rdx, operand::RDX, true)) return s;
  Td& t = *c.td;
  if (t.fatal) return TDX_TD_FATAL;
  if (t.lifecycle != Lifecycle::TD_KEYS_CONFIGURED) return TDX_TD_KEYS_NOT_CONFIGURED;
  if (t.tdcs.size() >= tdcs_pages_) return TDX_TDCX_NUM_INCORRECT;
  const Hpa page = c.in.rcx;
  if (Status s = take_page_4k(c, page, operand::RCX)) return s;
  pamt_.set(page, PG_LEVEL_4K, owned(PageType::PT_TDCX, t.tdr));
  ++t.chldcnt;
  if (t.tdcs.size() == kSeptRootTdcsIndex) {
    t.sept = std::make_unique<SeptTree>(mem_, page, t.ept_levels);
    t.sept->init_page(page);
    ++sept_pages_;
  }
  t.tdcs.push_back(page);
  return TDX_SUCCESS;
}

// RCX = TDR, RDX = TD_PARAMS: a 1024-aligned shared HPA (td_params.h).
Status TdxModule::mng_init(Call& c) {
  if (Status s = find_td(c, c.in.rcx, operand::RCX, true)) return s;
  if (Status s = check_build_state(c, false)) return s;
  Td& t = *c.td;
  const Hpa params = c.in.rdx;
  if ((params & (kTdParamsAlign - 1)) || (params >> kHkidShift)) return with_operand(TDX_OPERAND_INVALID, operand::RDX);
  const TdParams p = td_params_.read(params);
  if (Status s = verify_td_params(p, max_pa_)) return s;
  t.gpaw = td_params_gpaw(p);
  t.ept_levels = td_params_ept_levels(p);
  t.max_vcpus = p.max_vcpus;
  t.debug = p.attributes & kAttributesDebug;
  t.sept = std::make_unique<SeptTree>(mem_, t.sept->root(), t.ept_levels);
  t.epochs = Epochs{};
  t.op_state = OpState::INITIALIZED;
  return TDX_SUCCESS;
}

// RCX = TDVPR page, RDX = TDR (tdh_vp_create.c; MAX_VCPUS is VP.INIT's check).
Status TdxModule::vp_create(Call& c) {
  if (Status s = find_td(c, c.in.rdx, operand::RDX, false)) return s;
  if (Status s = check_build_state(c, true)) return s;
  Td& t = *c.td;
  const Hpa page = c.in.rcx;
  if (Status s = take_page_4k(c, page, operand::RCX)) return s;
  pamt_.set(page, PG_LEVEL_4K, owned(PageType::PT_TDVPR, t.tdr));
  ++t.chldcnt;
  TdVcpu v;
  v.tdvpr = page;
  t.vcpus.push_back(v);
  vcpu_owner_[page] = t.tdr;
  return TDX_SUCCESS;
}

// RCX = TDCX page, RDX = TDVPR (tdh_vp_addcx.c).
Status TdxModule::vp_addcx(Call& c) {
  TdVcpu* vp = nullptr;
  if (Status s = find_vcpu(c, c.in.rdx, operand::RDX, true, vp)) return s;
  if (Status s = check_build_state(c, true)) return s;
  Td* t = c.td;
  TdVcpu& v = *vp;
  if (v.initialized) return TDX_VCPU_STATE_INCORRECT;
  if (v.tdcx.size() >= tdcx_per_vcpu_) return TDX_TDCX_NUM_INCORRECT;
  if (Status s = take_page_4k(c, c.in.rcx, operand::RCX)) return s;
  pamt_.set(c.in.rcx, PG_LEVEL_4K, owned(PageType::PT_TDCX, t->tdr));
  ++t->chldcnt;
  v.tdcx.push_back(c.in.rcx);
  return TDX_SUCCESS;
}

// RCX = TDVPR (tdh_vp_init.c): the TDCX pages, the vCPU state, MAX_VCPUS;
// the vCPU is then associated with the LP (associate_vcpu_initial).
Status TdxModule::vp_init(Call& c) {
  TdVcpu* vp = nullptr;
  if (Status s = find_vcpu(c, c.in.rcx, operand::RCX, true, vp)) return s;
  if (Status s = check_build_state(c, true)) return s;
  TdVcpu& v = *vp;
  if (v.tdcx.size() < tdcx_per_vcpu_) return TDX_TDCX_NUM_INCORRECT;
  if (v.initialized) return TDX_VCPU_STATE_INCORRECT;
  if (c.td->num_vcpus() >= c.td->max_vcpus) return TDX_MAX_VCPUS_EXCEEDED;
  v.initialized = true;
  v.associated = true;  // associate_vcpu_initial: with the current LP
  v.assoc_lp = c.txn.lp;
  return TDX_SUCCESS;
}

// RCX = vcpu_handle_and_flags (vcpu_and_flags_t, tdx_api_defs.h): bits
// 11:0 and 63:54 reserved, the TDVPR in 51:12, HOST_RECOVERABILITY_HINT in
// 52, RESUME_L1 in 53. tdh_vp_enter.c refuses reserved bits first and
// checks the two flags only once the vCPU is associated: the hint needs a
// last TD exit of LAST_EXIT_ASYNC_TRAP (a cross-TD trap or a host-priority
// timeout, td_exit.c), which no TD exit of the model is, and RESUME_L1 an
// exit from an L2 VM, which the model has not. Epoch accounting of 4:
// refcount the current epoch, flush the vCPU's EPT translations if it last
// ran in an older one.
Status TdxModule::vp_enter(Call& c) {
  constexpr u64 kReserved = 0xFFFull | (~u64{0} << 54);
  constexpr u64 kHint = u64{1} << 52, kResumeL1 = u64{1} << 53;
  if (c.in.rcx & kReserved) return with_operand(TDX_OPERAND_INVALID, operand::RCX);
  TdVcpu* vp = nullptr;
  if (Status s = find_vcpu(c, c.in.rcx & ~(kHint | kResumeL1), operand::RCX, false, vp)) return s;
  if (Status s = check_build_state(c, true)) return s;
  Td* t = c.td;
  TdVcpu& v = *vp;
  if (v.tdcx.size() < tdcx_per_vcpu_) return TDX_TDCX_NUM_INCORRECT;  // map_tdvps
  if (!v.initialized) return TDX_VCPU_STATE_INCORRECT;
  // associate_vcpu (helpers.c): a vCPU associated with another LP is
  // TDX_VCPU_ASSOCIATED; a running one is associated with the LP it runs on,
  // so only another LP can ask.
  if (v.in_guest || !same_lp(v, c.txn.lp)) return TDX_VCPU_ASSOCIATED;
  if (c.in.rcx & (kHint | kResumeL1)) return with_operand(TDX_OPERAND_INVALID, operand::RCX);
  // adjust_tlb_tracking_state (the epoch lock) comes before
  // handle_stepping_filter, whose failures revert the epoch's refcount
  // (tdh_vp_enter.c): here the refcount is taken only once the filter passed.
  if (!locks_.acquire(LockKind::Epoch, t->tdr, false)) return with_operand(TDX_OPERAND_BUSY, operand::TD_EPOCH);
  if (Status s = zero_step_filter(c, v)) return s;
  const u64 e = t->epochs.enter();
  const bool flush = v.associated && e != v.vcpu_epoch;
  v.vcpu_epoch = e;
  if (!v.associated || c.txn.lp != SeamcallTxn::kUnnamedLp) v.assoc_lp = c.txn.lp;
  v.associated = true;
  v.in_guest = true;
  if (v.hw) {
    v.hw->load_secure_eptp(ept::Eptp{t->sept->root(), t->ept_levels, false}, t->shared_bit());
    if (flush) v.hw->invept_all();
  }
  if (flush) ++*epoch_flushes_;
  return TDX_SUCCESS;
}

// td_entry_stepping_filter: with GPAs logged, the SEPT tree is taken
// exclusively, and a logged GPA that would still fault to the VMM makes
// VP.ENTER return an EPT-violation exit for it (R8 = GPA, where Linux's
// tdexit_gpa reads it) instead of entering. A PENDING leaf is taken as not
// faulting to the VMM: the module handles the guest's access itself (#VE,
// then ACCEPT) [inferred; the module asks gpa_translate].
Status TdxModule::zero_step_filter(Call& c, TdVcpu& v) {
  v.zero_step.on_entry();
  if (v.zero_step.epf_gpas.empty()) return TDX_SUCCESS;
  if (!locks_.acquire(LockKind::SeptTree, c.td->tdr, true)) return with_operand(TDX_OPERAND_BUSY, operand::SEPT_TREE);
  for (Gpa gpa : v.zero_step.epf_gpas) {
    const SeptWalk w = c.td->sept->walk_to_leaf(gpa);
    if (!w.reached || (w.state != septe::SeptState::MAPPED && w.state != septe::SeptState::PENDING)) {
      c.out.r8 = gpa;
      ++*zero_step_exits_;
      return SEPTSIM_TD_EXIT_EPT_VIOLATION;
    }
  }
  return TDX_SUCCESS;
}

Cycles TdxModule::td_exit_ept_violation(Hpa tdvpr, Gpa gpa, u64 rip) {
  Td* t = td_of_vcpu(tdvpr);
  if (!t) return 0;
  TdVcpu& v = *t->vcpu(tdvpr);
  if (!v.in_guest) return 0;
  if ((gpa >> t->shared_bit()) == 0) v.zero_step.on_private_epf(gpa, rip);
  else v.zero_step.on_exit(rip);
  return td_exit(tdvpr);
}

Cycles TdxModule::td_exit(Hpa tdvpr) {
  Td* t = td_of_vcpu(tdvpr);
  if (!t) return 0;
  TdVcpu& v = *t->vcpu(tdvpr);
  if (!v.in_guest) return 0;
  const Cycles c = leave_guest(*t, v);
  *cycles_ += c;
  return c;
}

// An LP matches the vCPU's association when either side is unnamed.
bool TdxModule::same_lp(const TdVcpu& v, u32 lp) {
  return !v.associated || v.assoc_lp == SeamcallTxn::kUnnamedLp || lp == SeamcallTxn::kUnnamedLp || lp == v.assoc_lp;
}

Cycles TdxModule::leave_guest(Td& t, TdVcpu& v) {
  // A TDCALL the exit interrupts (TDG.MEM.PAGE.ACCEPT is interruptible)
  // gives up its locks: why KVM's kick makes a retried BLOCK/TRACK/REMOVE
  // succeed (tdh_do_no_vcpus).
  if (auto it = tdcall_initiator_.find(v.tdvpr); it != tdcall_initiator_.end()) locks_.release(it->second);
  t.epochs.exit(v.vcpu_epoch);
  v.in_guest = false;
  ++*td_exits_;
  if (observer_) observer_->on_td_exit(u32(&v - t.vcpus.data()));
  return timing_.td_exit;
}

// RCX = TDVPR: dissociate the vCPU from its LP (tdh_vp_flush.c: the TDVPR
// exclusively, which a running vCPU holds shared; KEYS_CONFIGURED; a vCPU
// whose TDVPS.ASSOC_LPID is not the current LP, none included, is
// TDX_VCPU_NOT_ASSOCIATED).
Status TdxModule::vp_flush(Call& c) {
  TdVcpu* vp = nullptr;
  if (Status s = find_vcpu(c, c.in.rcx, operand::RCX, true, vp)) return s;
  if (c.td->lifecycle != Lifecycle::TD_KEYS_CONFIGURED) return TDX_TD_KEYS_NOT_CONFIGURED;
  TdVcpu& v = *vp;
  if (v.tdcx.size() < tdcx_per_vcpu_) return TDX_TDCX_NUM_INCORRECT;  // map_tdvps
  if (!v.associated || !same_lp(v, c.txn.lp)) return TDX_VCPU_NOT_ASSOCIATED;
  // The module runs INVEPT single-context for the TD's Secure EPT on this LP
  // (tdh_vp_flush.c, flush_all_td_asids): nothing the vCPU cached survives.
  if (v.associated && v.hw) v.hw->invept_all();
  v.associated = false;
  v.assoc_lp = SeamcallTxn::kUnnamedLp;
  return TDX_SUCCESS;
}

// RCX = TDR. TD_HKID_ASSIGNED/KEYS_CONFIGURED -> TD_BLOCKED once no vCPU is
// associated with an LP (tdh_mng_vpflushdone.c: TDR and KOT exclusive, the
// life cycle, then TDX_FLUSHVP_NOT_DONE, counted only once the TDCS exists
// and OP_STATE is past UNINITIALIZED). The HKID waits for CACHE.WB.
Status TdxModule::mng_vpflushdone(Call& c) {
  if (Status s = find_td(c, c.in.rcx, operand::RCX, true)) return s;
  if (!locks_.acquire(LockKind::Kot, 0, true)) return with_operand(TDX_OPERAND_BUSY, operand::KOT);
  Td& t = *c.td;
  if (t.lifecycle != Lifecycle::TD_KEYS_CONFIGURED && t.lifecycle != Lifecycle::TD_HKID_ASSIGNED)
    return TDX_LIFECYCLE_STATE_INCORRECT;
  if (t.tdcs.size() >= tdcs_pages_ && t.op_state != OpState::UNINITIALIZED)
    for (const TdVcpu& v : t.vcpus)
      if (v.associated) return TDX_FLUSHVP_NOT_DONE;
  t.lifecycle = Lifecycle::TD_BLOCKED;
  t.hkid_flushed = true;
  t.wbinvd_bitmap = all_packages();  // the KOT entry's WBINVD_BITMAP = the platform's PKG_CONFIG_BITMAP
  return TDX_SUCCESS;
}

// RCX = TDR. TD_BLOCKED -> TD_TEARDOWN: the HKID is released once CACHE.WB
// has written its cache lines back on every package (tdh_mng_key_freeid.c:
// the life cycle, the KOT exclusively, then WBINVD_BITMAP != 0 is
// TDX_WBCACHE_NOT_COMPLETE).
Status TdxModule::mng_key_freeid(Call& c) {
  if (Status s = find_td(c, c.in.rcx, operand::RCX, true)) return s;
  if (c.td->lifecycle != Lifecycle::TD_BLOCKED) return TDX_LIFECYCLE_STATE_INCORRECT;
  if (!locks_.acquire(LockKind::Kot, 0, true)) return with_operand(TDX_OPERAND_BUSY, operand::KOT);
  if (c.td->wbinvd_bitmap) return TDX_WBCACHE_NOT_COMPLETE;
  c.td->lifecycle = Lifecycle::TD_TEARDOWN;
  c.td->hkid_flushed = false;
  return TDX_SUCCESS;
}

// RCX = GPA (256-byte aligned), RDX = TDR. Measures nothing beyond a
// placeholder: the model checks the mapping rules only.
Status TdxModule::mr_extend(Call& c) {
  if (Status s = find_td(c, c.in.rdx, operand::RDX, true)) return s;
  if (Status s = check_build_state(c, false)) return s;
  const Gpa gpa = c.in.rcx;
  if ((gpa & 0xFF) || (gpa >> c.td->shared_bit())) return with_operand(TDX_OPERAND_INVALID, operand::RCX);
  // check_and_walk_private_gpa_to_leaf: the walk fails unless it ends on a
  // leaf with RWX, i.e. MAPPED; tdh_mr_extend.c turns the failure into
  // TDX_EPT_ENTRY_NOT_PRESENT on RCX with the entry in RCX/RDX.
  c.w = c.td->sept->walk_to_leaf(gpa);
  c.walked = true;
  c.level = c.w.level;
  if (!c.w.reached || c.w.state != septe::SeptState::MAPPED) return sept_fail(c, TDX_EPT_ENTRY_NOT_PRESENT);
  return TDX_SUCCESS;
}

// RCX = TDR. INITIALIZED -> RUNNABLE, once the TD has a vCPU VP.INIT
// counted (tdh_mr_finalize.c: num_vcpus == 0 -> TDX_NO_VCPUS).
Status TdxModule::mr_finalize(Call& c) {
  if (Status s = find_td(c, c.in.rcx, operand::RCX, true)) return s;
  if (Status s = check_build_state(c, false)) return s;
  if (c.td->num_vcpus() == 0) return TDX_NO_VCPUS;
  c.td->op_state = OpState::RUNNABLE;
  return TDX_SUCCESS;
}

}  // namespace septsim::seam
