#include "seam/td_builder.h"

#include <algorithm>

namespace septsim::seam {

namespace {

struct Builder {
  TdxModule& tdx;
  model::PhysMem& mem;
  PamtRefcount& dpamt;
  unsigned initiator;
  Cycles start;
  TdBuildResult r;

  // A page for the TDX module, with its DPAMT pair installed if needed.
  Hpa page() {
    const Hpa hpa = mem.alloc() << kPageShift;
    if (tdx.pamt().dynamic()) {
      const Status s = dpamt.get(hpa, r.cycles, initiator, start);
      if (s != TDX_SUCCESS) fail(Leaf::TDH_PHYMEM_PAMT_ADD, s);
    }
    return hpa;
  }
  bool call(Leaf leaf, SeamcallRegs regs, u32 lp = SeamcallTxn::kUnnamedLp) {
    if (r.status != TDX_SUCCESS) return false;
    SeamcallTxn t;
    t.in = regs;
    t.in.rax = leaf_rax(leaf);
    t.initiator = initiator;
    t.lp = lp;
    t.start = start + r.cycles;
    r.cycles += tdx.transport(t);
    if (t.status() != TDX_SUCCESS) fail(leaf, t.status());
    return r.status == TDX_SUCCESS;
  }
  void fail(Leaf leaf, Status s) {
    if (r.status != TDX_SUCCESS) return;
    r.status = s;
    r.failed_leaf = leaf_name(u16(leaf));
  }
};

}  // namespace

TdBuildResult build_td(TdxModule& tdx, model::PhysMem& mem, PamtRefcount& dpamt, const TdCreateParams& p,
                       TdHandle& out, unsigned initiator, Cycles start, u32 lp) {
  Builder b{tdx, mem, dpamt, initiator, start, {}};
  out.tdr = b.page();
  b.call(Leaf::TDH_MNG_CREATE, {0, out.tdr, p.hkid});
  if (p.create_only) return b.r;
  // KVM runs KEY.CONFIG on one CPU of each package (tdx_td_init's
  // smp_call_on_cpu per package); the module needs every package's key.
  for (unsigned pkg = 0; pkg < tdx.packages(); ++pkg)
    b.call(Leaf::TDH_MNG_KEY_CONFIG, {0, out.tdr}, tdx.first_lp_of(pkg));
  for (unsigned i = 0; i < tdx.tdcs_pages(); ++i) b.call(Leaf::TDH_MNG_ADDCX, {0, b.page(), out.tdr});
  const Hpa params = mem.alloc() << kPageShift;  // shared: no PAMT pair
  tdx.write_td_params(params, p.td_params ? *p.td_params : td_params_for(p.gpaw, p.ept_levels, std::max(p.vcpus, 1u)));
  b.call(Leaf::TDH_MNG_INIT, {0, out.tdr, params});
  mem.free(params >> kPageShift);  // the module copied what it needs, as KVM frees it after MNG.INIT
  for (u32 v = 0; v < p.vcpus && b.r.status == TDX_SUCCESS; ++v) {
    const Hpa tdvpr = b.page();
    if (!b.call(Leaf::TDH_VP_CREATE, {0, tdvpr, out.tdr})) break;
    out.tdvpr.push_back(tdvpr);
    for (unsigned i = 0; i < tdx.tdcx_per_vcpu(); ++i) b.call(Leaf::TDH_VP_ADDCX, {0, b.page(), tdvpr});
    b.call(Leaf::TDH_VP_INIT, {0, tdvpr}, v < p.vcpu_lps.size() ? p.vcpu_lps[v] : lp);
  }
  return b.r;
}

}  // namespace septsim::seam
