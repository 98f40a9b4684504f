// TD life-cycle and vCPU leaves: MNG.CREATE .. MNG.INIT, VP.CREATE .. VP.ENTER,
// VP.FLUSH, MNG.VPFLUSHDONE, MNG.KEY.FREEID, MR.EXTEND, MR.FINALIZE
// (tdx-seam.md 2, 2.1, 3.4, 4, 9).
#include "model/vcpu.h"
#include "seam/tdx_module.h"
#include "seam/tdx_module_call.h"

namespace septsim::seam {

namespace {
PamtEntry owned(PageType pt, Hpa tdr) { return PamtEntry{pt, tdr, 0}; }
}  // namespace

// RCX = new TDR page, RDX = HKID.
Status TdxModule::mng_create(Call& c) {
  const Hpa tdr = c.in.rcx;
  if (c.in.rdx == 0 || c.in.rdx > 0xFFFF) return with_operand(TDX_OPERAND_INVALID, operand::RDX);
  if (Status s = take_page_4k(c, tdr, operand::RCX)) return s;
  Td& t = tds_[tdr];
  t.tdr = tdr;
  t.hkid = u16(c.in.rdx);
  pamt_.set(tdr, PG_LEVEL_4K, owned(PageType::PT_TDR, tdr));
  pages_given_ = true;
  return TDX_SUCCESS;
}

// RCX = TDR.
Status TdxModule::mng_key_config(Call& c) {
  if (Status s = find_td(c, c.in.rcx, operand::RCX, true)) return s;
  if (c.td->lifecycle != Lifecycle::TD_HKID_ASSIGNED) return TDX_LIFECYCLE_STATE_INCORRECT;
  c.td->lifecycle = Lifecycle::TD_KEYS_CONFIGURED;
  return TDX_SUCCESS;
}

// RCX = TDCS page, RDX = TDR. The fourth page becomes the SEPT root.
Status TdxModule::mng_addcx(Call& c) {
  if (Status s = find_td(c, c.in.rdx, operand::RDX, true)) return s;
  Td& t = *c.td;
  if (t.lifecycle != Lifecycle::TD_KEYS_CONFIGURED) return TDX_TD_KEYS_NOT_CONFIGURED;
  if (t.op_state != OpState::UNINITIALIZED || t.tdcs.size() >= tdcs_pages_) return TDX_OP_STATE_INCORRECT;
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
  Td& t = *c.td;
  if (t.lifecycle != Lifecycle::TD_KEYS_CONFIGURED) return TDX_TD_KEYS_NOT_CONFIGURED;
  if (t.tdcs.size() < tdcs_pages_) return TDX_TDCS_NOT_ALLOCATED;
  if (t.op_state != OpState::UNINITIALIZED) return TDX_OP_STATE_INCORRECT;
  const Hpa params = c.in.rdx;
  if ((params & (kTdParamsAlign - 1)) || (params >> kHkidShift)) return with_operand(TDX_OPERAND_INVALID, operand::RDX);
  const TdParams p = td_params_.read(params);
  if (Status s = verify_td_params(p)) return s;
  t.gpaw = td_params_gpaw(p);
  t.ept_levels = td_params_ept_levels(p);
  t.max_vcpus = p.max_vcpus;
  t.sept = std::make_unique<SeptTree>(mem_, t.sept->root(), t.ept_levels);
  t.epochs = Epochs{};
  t.op_state = OpState::INITIALIZED;
  return TDX_SUCCESS;
}

// RCX = TDVPR page, RDX = TDR.
Status TdxModule::vp_create(Call& c) {
  if (Status s = find_td(c, c.in.rdx, operand::RDX, false)) return s;
  Td& t = *c.td;
  if (t.lifecycle != Lifecycle::TD_KEYS_CONFIGURED) return TDX_TD_KEYS_NOT_CONFIGURED;
  if (t.tdcs.size() < tdcs_pages_) return TDX_TDCS_NOT_ALLOCATED;
  if (t.op_state != OpState::INITIALIZED && t.op_state != OpState::RUNNABLE) return TDX_OP_STATE_INCORRECT;
  if (t.vcpus.size() >= t.max_vcpus) return TDX_MAX_VCPUS_EXCEEDED;
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

// RCX = TDCX page, RDX = TDVPR.
Status TdxModule::vp_addcx(Call& c) {
  Td* t = td_of_vcpu(c.in.rdx);
  if (!t) return with_operand(TDX_PAGE_METADATA_INCORRECT, operand::RDX);
  TdVcpu& v = *t->vcpu(c.in.rdx);
  if (v.initialized || v.tdcx.size() >= tdcx_per_vcpu_) return TDX_OP_STATE_INCORRECT;
  if (!locks_.acquire(LockKind::Tdr, c.in.rdx, true)) return with_operand(TDX_OPERAND_BUSY, operand::RDX);
  if (Status s = take_page_4k(c, c.in.rcx, operand::RCX)) return s;
  pamt_.set(c.in.rcx, PG_LEVEL_4K, owned(PageType::PT_TDCX, t->tdr));
  ++t->chldcnt;
  v.tdcx.push_back(c.in.rcx);
  return TDX_SUCCESS;
}

// RCX = TDVPR.
Status TdxModule::vp_init(Call& c) {
  Td* t = td_of_vcpu(c.in.rcx);
  if (!t) return with_operand(TDX_PAGE_METADATA_INCORRECT, operand::RCX);
  TdVcpu& v = *t->vcpu(c.in.rcx);
  if (v.initialized || v.tdcx.size() < tdcx_per_vcpu_) return TDX_OP_STATE_INCORRECT;
  v.initialized = true;
  return TDX_SUCCESS;
}

// RCX = TDVPR. Epoch accounting of 4: refcount the current epoch, flush the
// vCPU's EPT translations if it last ran in an older one.
Status TdxModule::vp_enter(Call& c) {
  Td* t = td_of_vcpu(c.in.rcx);
  if (!t) return with_operand(TDX_PAGE_METADATA_INCORRECT, operand::RCX);
  c.td = t;
  if (t->fatal) return TDX_TD_FATAL;
  if (t->lifecycle != Lifecycle::TD_KEYS_CONFIGURED) return TDX_TD_KEYS_NOT_CONFIGURED;
  if (!op_state_needs_tracking(t->op_state)) return TDX_OP_STATE_INCORRECT;  // RUNNABLE / LIVE_*
  TdVcpu& v = *t->vcpu(c.in.rcx);
  if (!v.initialized) return TDX_OP_STATE_INCORRECT;
  if (v.in_guest || !locks_.acquire(LockKind::Tdr, v.tdvpr, true))
    return with_operand(TDX_OPERAND_BUSY, operand::TDVPR);
  if (Status s = zero_step_filter(c, v)) return s;
  if (!locks_.acquire(LockKind::Epoch, t->tdr, false)) return with_operand(TDX_OPERAND_BUSY, operand::TD_EPOCH);
  const u64 e = t->epochs.enter();
  const bool flush = v.associated && e != v.vcpu_epoch;
  v.vcpu_epoch = e;
  v.associated = true;
  v.in_guest = true;
  if (v.hw) {
    v.hw->set_secure_eptp(ept::Eptp{t->sept->root(), t->ept_levels, false}, t->shared_bit());
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
  t->epochs.exit(v.vcpu_epoch);
  v.in_guest = false;
  ++*td_exits_;
  *cycles_ += timing_.td_exit;
  return timing_.td_exit;
}

// RCX = TDVPR: dissociate the vCPU from its LP.
Status TdxModule::vp_flush(Call& c) {
  Td* t = td_of_vcpu(c.in.rcx);
  if (!t) return with_operand(TDX_PAGE_METADATA_INCORRECT, operand::RCX);
  TdVcpu& v = *t->vcpu(c.in.rcx);
  if (v.in_guest) return with_operand(TDX_OPERAND_BUSY, operand::TDVPR);
  // The module runs INVEPT single-context for the TD's Secure EPT on this LP
  // (tdh_vp_flush.c, flush_all_td_asids): nothing the vCPU cached survives.
  if (v.associated && v.hw) v.hw->invept_all();
  v.associated = false;
  return TDX_SUCCESS;
}

// RCX = TDR. TD_HKID_ASSIGNED/KEYS_CONFIGURED -> TD_BLOCKED once no vCPU is
// associated with an LP (tdh_mng_vpflushdone.c: else TDX_FLUSHVP_NOT_DONE).
Status TdxModule::mng_vpflushdone(Call& c) {
  if (Status s = find_td(c, c.in.rcx, operand::RCX, true)) return s;
  Td& t = *c.td;
  if (t.lifecycle != Lifecycle::TD_KEYS_CONFIGURED && t.lifecycle != Lifecycle::TD_HKID_ASSIGNED)
    return TDX_LIFECYCLE_STATE_INCORRECT;
  for (const TdVcpu& v : t.vcpus)
    if (v.associated || v.in_guest) return TDX_FLUSHVP_NOT_DONE;
  t.lifecycle = Lifecycle::TD_BLOCKED;
  return TDX_SUCCESS;
}

// RCX = TDR. TD_BLOCKED -> TD_TEARDOWN: the HKID is released.
Status TdxModule::mng_key_freeid(Call& c) {
  if (Status s = find_td(c, c.in.rcx, operand::RCX, true)) return s;
  if (c.td->lifecycle != Lifecycle::TD_BLOCKED) return TDX_LIFECYCLE_STATE_INCORRECT;
  c.td->lifecycle = Lifecycle::TD_TEARDOWN;
  return TDX_SUCCESS;
}

// RCX = GPA (256-byte aligned), RDX = TDR. Measures nothing beyond a
// placeholder: the model checks the mapping rules only.
Status TdxModule::mr_extend(Call& c) {
  if (Status s = find_td(c, c.in.rdx, operand::RDX, true)) return s;
  if (Status s = check_build_state(c, false)) return s;
  const Gpa gpa = c.in.rcx;
  if ((gpa & 0xFF) || (gpa >> c.td->shared_bit())) return with_operand(TDX_OPERAND_INVALID, operand::RCX);
  c.w = c.td->sept->walk_to_leaf(gpa);
  c.walked = true;
  c.level = c.w.level;
  if (!c.w.reached) return with_operand(TDX_EPT_ENTRY_NOT_PRESENT, operand::RCX);
  if (c.w.state != septe::SeptState::MAPPED) return TDX_EPT_ENTRY_NOT_PRESENT;
  return TDX_SUCCESS;
}

// RCX = TDR. INITIALIZED -> RUNNABLE, once the TD has a vCPU
// (tdh_mr_finalize.c: num_vcpus == 0 -> TDX_NO_VCPUS).
Status TdxModule::mr_finalize(Call& c) {
  if (Status s = find_td(c, c.in.rcx, operand::RCX, true)) return s;
  if (Status s = check_build_state(c, false)) return s;
  if (c.td->vcpus.empty()) return TDX_NO_VCPUS;
  c.td->op_state = OpState::RUNNABLE;
  return TDX_SUCCESS;
}

}  // namespace septsim::seam
