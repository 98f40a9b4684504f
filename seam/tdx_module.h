// The TDX module as a SystemC module: TD control state, the Secure-EPT of
// every TD in host memory, TLB-tracking epochs, the PAMT and the module's
// locks, driven by SEAMCALL/TDCALL transactions (intel/tdx-module src/vmm_dispatcher/api_calls). Each leaf
// mirrors the check order of the module's handler; every failure commits
// nothing.
#pragma once
#include <map>
#include <string>
#include <vector>
#include <systemc>

#include "model/config.h"
#include "model/phys_mem.h"
#include "model/stats.h"
#include "seam/pamt.h"
#include "seam/pamt_refcount.h"
#include "seam/seam_locks.h"
#include "seam/seam_timing.h"
#include "seam/seamcall.h"
#include "seam/seamcall_observer.h"
#include "seam/td_params.h"
#include "seam/td_state.h"
#include "seam/tdx_leaf.h"

namespace septsim::seam {

class TdxModule : public sc_core::sc_module, public SeamTransport {
 public:
  // Config keys seam.*, latency.seam.*, host.mem_gib; counters "seam.*".
  TdxModule(sc_core::sc_module_name name, const model::Config& cfg, model::PhysMem& mem, model::StatsRegistry& stats);

  Cycles transport(SeamcallTxn& txn) override;

  // Convenience wrappers: `regs` in, outputs back in `regs`; returns the status.
  Status seamcall(Leaf leaf, SeamcallRegs& regs, unsigned initiator = 0, Cycles start = 0, unsigned version = 0);
  Status tdcall(TdcallLeaf leaf, Hpa tdvpr, SeamcallRegs& regs, unsigned initiator = 0, Cycles start = 0);
  // A TD exit of the vCPU (asynchronous or after a TDCALL the VMM handles).
  Cycles td_exit(Hpa tdvpr);
  // A TD exit for an EPT violation on `gpa` with the guest at `rip`; a
  // private GPA feeds the zero-step filter that VP.ENTER applies.
  Cycles td_exit_ept_violation(Hpa tdvpr, Gpa gpa, u64 rip);
  // Lets VP.ENTER load the Secure-EPT root into a hardware vCPU and flush its
  // TLBs when the TD epoch changed.
  void bind_vcpu(Hpa tdvpr, model::VcpuControl* hw);

  // Initiators whose clocks may lag the latest call by up to `cycles` (vCPUs
  // within a quantum): lock windows are kept that long past their end.
  void set_lock_retain(Cycles cycles) { locks_.set_retain(cycles); }
  // TDH.SYS.CONFIG's Dynamic PAMT switch; only before any page is TDX-owned.
  bool configure_dynamic_pamt(bool on);
  // The VMM writes a TD_PARAMS structure at `hpa` for TDH.MNG.INIT to read.
  void write_td_params(Hpa hpa, const TdParams& p) { td_params_.write(hpa, p); }
  // Every later call is reported to `o` (nullptr: none); the module does not own it.
  void set_observer(SeamcallObserver* o) { observer_ = o; }

  const Td* td(Hpa tdr) const;
  Td* td_of_vcpu(Hpa tdvpr);
  const Pamt& pamt() const { return pamt_; }
  const SeamTiming& timing() const { return timing_; }
  u64 sept_pages() const { return sept_pages_; }
  unsigned tdcs_pages() const { return tdcs_pages_; }
  unsigned tdcx_per_vcpu() const { return tdcx_per_vcpu_; }
  // host.packages, and the package an LP is on (lp_info.pkg; an unnamed LP: 0).
  unsigned packages() const { return packages_; }
  // The host kernel's Dynamic PAMT refcount (arch/x86/virt/vmx/tdx/tdx.c:
  // tdx_pamt_get/put), one per host: every TD on this module shares it.
  PamtRefcount& host_pamt_refcount() { return host_dpamt_; }
  // TDX_FEATURES0.ENHANCE_DEMOTE_INTERRUPTIBILITY (seam.enhance_demote_interruptibility).
  bool enhance_demote_interruptibility() const { return demote_uninterruptible_; }
  unsigned package_of(u32 lp) const {
    return lp == SeamcallTxn::kUnnamedLp ? 0 : (lp / lps_per_package_) % packages_;
  }
  // The first LP of package `pkg`, for callers that must run a leaf there.
  u32 first_lp_of(unsigned pkg) const { return pkg * lps_per_package_; }
  // Every LP of the platform (host.packages x host.lps_per_package).
  u32 lps() const { return packages_ * lps_per_package_; }
  u64 all_packages() const { return packages_ == 64 ? ~u64{0} : (u64{1} << packages_) - 1; }

 public:  // to the module's own .cc files (tdx_module_call.h)
  struct Call;
  struct MemRule;

 private:

  Status dispatch(Call& c);
  Status dispatch_tdcall(Call& c);
  void update_gauges();
  void report(const Call& c, Status s, Cycles cost) const;

  // Common prologue of the TD-scoped memory leaves (3.4). check_build_state
  // is the module's check_td_in_correct_build_state + the OP_STATE check.
  Status find_td(Call& c, u64 tdr_reg, u32 operand, bool exclusive);
  // The TDVPR operand of the VP leaves (check_and_lock_explicit_4k_private_hpa
  // with PT_TDVPR); sets c.td.
  Status find_vcpu(Call& c, u64 tdvpr_reg, u32 operand, bool exclusive, TdVcpu*& v);
  // pamt_walk: the PAMT entries above the page's leaf shared, the leaf
  // (`target_pg`, or a PT_REG leaf above it) in `exclusive` mode.
  bool lock_pamt_walk(Hpa hpa, int target_pg, bool exclusive);
  // pamt_implicit_get_and_lock: the entry at `pg` exclusively.
  bool lock_pamt_entry(Hpa hpa, int pg);
  Status check_build_state(Call& c, bool op_lock);
  Status decode_page_info(Call& c, int min_level, int max_level);
  Status walk_and_lock(Call& c, bool tree_exclusive);
  Status sept_fail(Call& c, Status base);
  Status mem_prologue(Call& c, const MemRule& rule);
  bool tt_gate(const Call& c) const;
  bool tracked(const Call& c, Hpa page, int pg_level) const;
  Status take_page_4k(Call& c, Hpa hpa, u32 operand);

  // Leaves (one handler per leaf, grouped by file).
  Status mng_create(Call& c);
  Status mng_key_config(Call& c);
  Status mng_addcx(Call& c);
  Status mng_init(Call& c);
  Status vp_create(Call& c);
  Status vp_addcx(Call& c);
  Status vp_init(Call& c);
  Status vp_enter(Call& c);
  Status zero_step_filter(Call& c, TdVcpu& v);
  Status vp_flush(Call& c);
  Status mng_vpflushdone(Call& c);
  Status mng_key_freeid(Call& c);
  Status mr_extend(Call& c);
  Status mr_finalize(Call& c);
  Status mem_sept_add(Call& c);
  Status sept_add_checked(Call& c, u64 (&pages)[4]);
  Status mem_page_add(Call& c);
  Status mem_page_aug(Call& c);
  Status mem_range_block(Call& c);
  Status mem_range_unblock(Call& c);
  Status mem_track(Call& c);
  Status mem_page_remove(Call& c);
  Status mem_sept_remove(Call& c);
  // A SEPT page leaves the tree (SEPT.REMOVE, PROMOTE): counts and PAMT
  // follow; returns the RCX output (the page, with the DPAMT removal hint).
  u64 release_sept_page(Call& c, Hpa child);
  // The table page under a non-leaf entry about to leave the tree (SEPT.REMOVE,
  // PROMOTE): its PAMT lock, and under the TT-gate blocked and tracked.
  Status claim_blocked_table(Call& c, Hpa child);
  Status mem_sept_rd(Call& c);
  Status mem_page_promote(Call& c);
  Status mem_page_demote(Call& c);
  Status mem_page_relocate(Call& c);
  Status host_interrupt_restart(Call& c);
  Status phymem_page_reclaim(Call& c);
  Status phymem_page_wbinvd(Call& c);
  Status phymem_page_rdmd(Call& c);
  Status phymem_cache_wb(Call& c);
  Status phymem_pamt_add(Call& c);
  Status phymem_pamt_remove(Call& c);
  Status pair_operands_ok(const Hpa (&pages)[2], const u32 (&ops)[2]) const;
  Status pair_pages_free(const Hpa (&pages)[2], const u32 (&ops)[2], Hpa region);
  Status mem_page_accept(Call& c);
  Status accept_exit(Call& c);
  Status accept_interrupted(Call& c);
  Cycles accept_cost(const Call& c) const;
  Cycles lock_hold(const Call& c, Status s, Cycles cost) const;
  // The vCPU's TD exit: epoch reference dropped, counted; returns its cycles.
  Cycles leave_guest(Td& t, TdVcpu& v);
  static bool same_lp(const TdVcpu& v, u32 lp);

  model::PhysMem& mem_;
  SeamTiming timing_;
  Pamt pamt_;
  SeamLocks locks_;
  std::map<Hpa, unsigned> tdcall_initiator_;  // a TD vCPU's (TDVPR's) TDCALL initiator, for leave_guest
  std::map<Hpa, Td> tds_;            // by TDR
  std::map<Hpa, Hpa> vcpu_owner_;    // TDVPR -> TDR
  unsigned tdcs_pages_;
  unsigned tdcx_per_vcpu_;
  u64 sept_pages_ = 0;
  bool pages_given_ = false;
  unsigned max_pa_;  // host.maxphyaddr: the platform's MAX_PA
  unsigned packages_;         // host.packages
  unsigned lps_per_package_;  // host.lps_per_package
  bool demote_uninterruptible_;  // seam.enhance_demote_interruptibility
  // Each package's WBT entry: sub-blocks an interrupted CACHE.WB wrote back.
  std::vector<u64> cachewb_intr_point_;
  SeamcallObserver* observer_ = nullptr;
  TdParamsPages td_params_;

  model::Counter* calls_[SeamTiming::kLeaves] = {};
  model::Counter* leaf_cycles_[SeamTiming::kLeaves] = {};  // seam.leaf_cycles.<leaf>
  model::Counter* tdcall_cycles_ = nullptr;
  model::Counter *tdcalls_, *errors_, *busy_, *cycles_, *td_exits_, *epoch_flushes_, *zero_step_exits_;
  model::Counter *g_pamt_bytes_, *g_pamt_static_, *g_pamt_pairs_bytes_, *g_pamt_pairs_, *g_sept_pages_,
      *g_sept_bytes_, *g_tds_, *g_private_4k_;
  PamtRefcount host_dpamt_;  // host_pamt_refcount
};

}  // namespace septsim::seam
