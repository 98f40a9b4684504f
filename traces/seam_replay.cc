#include "traces/seam_replay.h"

#include "model/hex.h"
#include "traces/replayer.h"

namespace septsim::traces {

using namespace seam;
using R = TdxEventFields::Reg;

void SeamReplay::fail(const Event& e, const std::string& msg) const {
  throw ReplayError(path_ + ":" + std::to_string(e.line) + ": " + msg);
}

Hpa SeamReplay::page(int pg_level, Cycles& cycles, Cycles now) {
  const Hpa hpa = mem_.alloc(pg_level) << kPageShift;
  if (pg_level == PG_LEVEL_4K && tdx_.pamt().dynamic()) dpamt_.get(hpa, cycles, 0, now);
  return hpa;
}

Cycles SeamReplay::start_of(const Event& e, Cycles sequential) {
  last_start_ = e.tdx.concurrent ? last_start_ : sequential;
  return last_start_;
}

Hpa SeamReplay::tdr_of(const Event& e) const {
  const auto it = tds_.find(e.tdx.td);
  return it == tds_.end() ? Hpa{} : it->second.tdr;
}

// A td_handle_and_flags register (1.3) given with only its flag bits (below
// the TDR's page frame) adds the flags to the TD's TDR instead of replacing it.
bool SeamReplay::given_flags_only(const Event& e, unsigned reg) const {
  return (e.tdx.reg_mask & (1u << reg)) && e.tdx.regs[reg] < kPageSize && tds_.count(e.tdx.td);
}

void SeamReplay::check(const Event& e, const SeamcallRegs& out, const char* what) {
  const std::string where = path_ + ":" + std::to_string(e.line) + ": " + what;
  if (e.tdx.has_expect && !status_matches(out.rax, e.tdx.expect, e.tdx.expect_exact))
    mismatches_.push_back(where + " returned " + status_string(out.rax) + ", expected " + status_string(e.tdx.expect));
  const u64 got[] = {out.rax, out.rcx, out.rdx, out.r8, out.r9, out.r10, out.r11, out.r12, out.r13};
  for (unsigned i = 1; i < TdxEventFields::kNumRegs; ++i)
    if ((e.tdx.expect_out_mask >> i & 1) && got[i] != e.tdx.expect_out[i])
      mismatches_.push_back(where + " returned " + TdxEventFields::kRegNames[i] + " = " + hex(got[i]) + ", expected " +
                            hex(e.tdx.expect_out[i]));
}

Cycles SeamReplay::run(const Event& e, Cycles now) {
  switch (e.type) {
    case EventType::TdCreate: return td_create(e, now);
    case EventType::Seamcall: return seamcall(e, now);
    case EventType::Tdcall: return tdcall(e, now);
    case EventType::TdVcpu: return td_vcpu(e, now);
    default: return 0;
  }
}

Cycles SeamReplay::td_create(const Event& e, Cycles now) {
  if (!tdx_.configure_dynamic_pamt(e.tdx.dynamic_pamt))
    fail(e, "field 'dynamic_pamt': the TDX module is already configured with" +
                std::string(e.tdx.dynamic_pamt ? "out" : "") + " Dynamic PAMT");
  TdCreateParams p;
  p.vcpus = e.tdx.vcpus;
  p.gpaw = e.tdx.gpaw;
  p.ept_levels = e.tdx.ept_levels;
  p.hkid = u16(e.tdx.td + 1);
  p.create_only = e.tdx.create_only;
  TdHandle h;
  // The VMM builds the TD on LP 0: its vCPUs are associated with LP 0 until
  // a VP.FLUSH there (the trace's lp fields default to 0 as well).
  const TdBuildResult r = build_td(tdx_, mem_, dpamt_, p, h, 0, now, 0);
  if (r.status != TDX_SUCCESS) fail(e, "td_create: " + r.failed_leaf + " returned " + status_string(r.status));
  tds_[e.tdx.td] = h;
  return r.cycles;
}

// RCX = gpa|level, RDX = TDR (or RCX = TDR for leaves that take it there),
// R8 = a fresh page for leaves that consume one (MNG.CREATE: RCX, with the
// HKID of TD `td` in RDX), R12/R13 = a PAMT pair for a
// Dynamic PAMT 2M demote.
void SeamReplay::fill_defaults(const Event& e, SeamcallRegs& r, Cycles& cycles, Cycles now) {
  const Leaf leaf = Leaf(e.tdx.leaf);
  const Hpa tdr = tdr_of(e);
  const u64 given = e.tdx.reg_mask;
  auto want = [&](R reg) { return !(given & (1u << reg)); };
  switch (leaf) {
    case Leaf::TDH_MEM_TRACK:
    case Leaf::TDH_MR_FINALIZE:
    case Leaf::TDH_MNG_VPFLUSHDONE:
    case Leaf::TDH_MNG_KEY_FREEID:
    case Leaf::TDH_MNG_KEY_CONFIG:
    case Leaf::TDH_MNG_INIT:
      r.rcx = tdr;
      return;
    case Leaf::TDH_MR_EXTEND:
      r.rcx = e.tdx.gpa;
      r.rdx = tdr;
      return;
    case Leaf::TDH_VP_FLUSH:
    case Leaf::TDH_VP_INIT: {
      const auto it = tds_.find(e.tdx.td);
      r.rcx = it == tds_.end() ? 0 : it->second.tdvpr.at(e.tdx.vcpu).raw();
      return;
    }
    case Leaf::TDH_PHYMEM_CACHE_WB: return;  // RCX = 0: start a write-back
    case Leaf::TDH_MNG_CREATE:
      // RCX = a fresh TDR page, RDX = the HKID td_create gives TD `td`.
      if (want(R::RCX)) r.rcx = page(PG_LEVEL_4K, cycles, now);
      r.rdx = e.tdx.td + 1;
      return;
    default: break;
  }
  r.rcx = page_info(e.tdx.gpa, e.tdx.level);
  r.rdx = tdr;
  switch (leaf) {
    case Leaf::TDH_MEM_SEPT_ADD:
    case Leaf::TDH_MEM_PAGE_RELOCATE:
      if (want(R::R8)) r.r8 = page(PG_LEVEL_4K, cycles, now);
      break;
    case Leaf::TDH_MEM_PAGE_ADD:
      if (want(R::R8)) r.r8 = page(PG_LEVEL_4K, cycles, now);
      if (want(R::R9)) r.r9 = mem_.alloc() << kPageShift;
      break;
    case Leaf::TDH_MEM_PAGE_AUG:
      if (want(R::R8)) r.r8 = page(e.tdx.level == 1 ? PG_LEVEL_2M : PG_LEVEL_4K, cycles, now);
      break;
    case Leaf::TDH_MEM_PAGE_DEMOTE:
      if (want(R::R8)) r.r8 = page(PG_LEVEL_4K, cycles, now);
      if (tdx_.pamt().dynamic() && e.tdx.level == 1) {
        if (want(R::R12)) r.r12 = mem_.alloc() << kPageShift;
        if (want(R::R13)) r.r13 = mem_.alloc() << kPageShift;
      }
      break;
    default: break;
  }
}

Cycles SeamReplay::seamcall(const Event& e, Cycles now) {
  Cycles cycles = 0;
  SeamcallTxn t;
  fill_defaults(e, t.in, cycles, now);
  t.in.rax = leaf_rax(Leaf(e.tdx.leaf), e.tdx.version);
  u64* regs[] = {&t.in.rax, &t.in.rcx, &t.in.rdx, &t.in.r8, &t.in.r9, &t.in.r10, &t.in.r11, &t.in.r12, &t.in.r13};
  for (unsigned i = 0; i < TdxEventFields::kNumRegs; ++i)
    if (e.tdx.reg_mask & (1u << i)) *regs[i] = e.tdx.regs[i];
  // MNG.CREATE's RDX is an HKID, not a TD handle.
  if (Leaf(e.tdx.leaf) != Leaf::TDH_MNG_CREATE && given_flags_only(e, R::RDX)) t.in.rdx |= tdr_of(e);
  t.initiator = e.tdx.lp;
  t.lp = e.tdx.lp;
  t.host_interrupt = e.tdx.interrupt;
  t.start = start_of(e, now + cycles);
  const Cycles lat = tdx_.transport(t);
  check(e, t.out, leaf_name(e.tdx.leaf) ? leaf_name(e.tdx.leaf) : "seamcall");
  // A concurrent call overlaps the previous one: it adds no time of its own.
  return e.tdx.concurrent ? cycles : cycles + lat;
}

Cycles SeamReplay::tdcall(const Event& e, Cycles now) {
  const TdHandle& h = tds_.at(e.tdx.td);
  const Hpa tdvpr = h.tdvpr.at(e.tdx.vcpu);
  const Td* td = tdx_.td(h.tdr);
  if (!td || !const_cast<Td*>(td)->vcpu(tdvpr)->in_guest)
    fail(e, "field 'vcpu': vCPU " + std::to_string(e.tdx.vcpu) + " of TD " + std::to_string(e.tdx.td) +
                " is not in the guest (send td_vcpu enter first)");
  SeamcallTxn t;
  t.in.rax = e.tdx.leaf;
  t.in.rcx = (e.tdx.reg_mask & (1u << R::RCX)) ? e.tdx.regs[R::RCX] : page_info(e.tdx.gpa, e.tdx.level);
  t.tdcall = true;
  t.tdvpr = tdvpr;
  t.initiator = 0x10000 + e.tdx.vcpu;
  t.host_interrupt = e.tdx.interrupt;
  t.start = start_of(e, now);
  const Cycles lat = tdx_.transport(t);
  check(e, t.out, tdcall_leaf_name(e.tdx.leaf));
  return e.tdx.concurrent ? 0 : lat;
}

Cycles SeamReplay::td_vcpu(const Event& e, Cycles now) {
  const TdHandle& h = tds_.at(e.tdx.td);
  const Hpa tdvpr = h.tdvpr.at(e.tdx.vcpu);
  if (!e.tdx.enter)
    return e.tdx.has_gpa ? tdx_.td_exit_ept_violation(tdvpr, e.tdx.gpa, e.tdx.rip) : tdx_.td_exit(tdvpr);
  SeamcallTxn t;
  t.in.rax = leaf_rax(Leaf::TDH_VP_ENTER);
  t.in.rcx = tdvpr;
  // An "rcx" with no bit of the TDVPR field (51:12) is flag bits added to
  // the vCPU's TDVPR; any other replaces it.
  if (e.tdx.reg_mask & (1u << R::RCX)) {
    constexpr u64 kTdvprField = ((u64{1} << 52) - 1) & ~(kPageSize - 1);
    const u64 v = e.tdx.regs[R::RCX];
    t.in.rcx = (v & kTdvprField) ? v : tdvpr | v;
  }
  t.initiator = e.tdx.lp;
  t.lp = e.tdx.lp;
  // "concurrent": the VP.ENTER starts with the previous seamcall (a TRACK's
  // epoch lock, tdh_vp_enter.c) and adds no time of its own.
  t.start = e.tdx.concurrent ? last_start_ : now;
  const Cycles lat = tdx_.transport(t);
  check(e, t.out, "TDH.VP.ENTER");
  return e.tdx.concurrent ? 0 : lat;
}

}  // namespace septsim::traces
