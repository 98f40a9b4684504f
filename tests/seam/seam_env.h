// Test helpers for the TDX module: a module over a fresh PhysMem with one TD
// built by the VMM's creation sequence, and one-line wrappers per leaf.
#pragma once
#include <memory>
#include <string>

#include "model/config.h"
#include "model/phys_mem.h"
#include "model/stats.h"
#include "seam/pamt_refcount.h"
#include "seam/td_builder.h"
#include "seam/tdx_module.h"

namespace septsim::seamtest {

using namespace septsim::seam;

inline std::string unique_name(const std::string& base) {
  static unsigned n = 0;
  return base + "_" + std::to_string(n++);
}

inline model::Config make_config(bool dynamic, const char* maxphyaddr = nullptr) {
  model::Config c;
  c.set("host.mem_gib", "8");
  c.set("seam.dynamic_pamt", dynamic ? "true" : "false");
  if (maxphyaddr) c.set("host.maxphyaddr", maxphyaddr);
  return c;
}

constexpr Gpa kGpa = 0x40000000;  // 1 GiB: private (below the shared bit)

struct SeamEnv {
  model::Config cfg;
  model::StatsRegistry stats;
  model::PhysMem mem;
  TdxModule tdx;
  PamtRefcount dpamt;
  TdHandle td;
  Cycles now = 0;  // calls run back to back on initiator 0 unless told otherwise

  // `maxphyaddr`: host.maxphyaddr if not the default (the module's MAX_PA).
  explicit SeamEnv(bool dynamic = false, u32 vcpus = 2, bool build = true, const char* maxphyaddr = nullptr)
      : SeamEnv(make_config(dynamic, maxphyaddr), vcpus, build) {}
  // With a config of the test's own (make_config plus its keys); the TD's
  // vCPUs are VP.INITed on `lp` (unnamed by default).
  SeamEnv(model::Config c, u32 vcpus, bool build, u32 lp = SeamcallTxn::kUnnamedLp)
      : cfg(std::move(c)), mem(8ull << 30), tdx(unique_name("tdx").c_str(), cfg, mem, stats), dpamt(tdx, mem) {
    if (build) {
      TdCreateParams p;
      p.vcpus = vcpus;
      TdBuildResult r = build_td(tdx, mem, dpamt, p, td, 0, 0, lp);
      if (r.status != TDX_SUCCESS) throw std::runtime_error("build_td failed at " + r.failed_leaf);
      now = r.cycles;
    }
  }
  // One call that names the LP it runs on (initiator = the LP).
  Status call_on(u32 lp, Leaf leaf, u64 rcx, u64 rdx = 0, bool interrupt = false) {
    SeamcallTxn t;
    t.in.rax = leaf_rax(leaf);
    t.in.rcx = rcx, t.in.rdx = rdx;
    t.initiator = lp;
    t.lp = lp;
    t.host_interrupt = interrupt;
    t.start = now;
    now += tdx.transport(t);
    return t.out.rax;
  }

  const Td& state() const { return *tdx.td(td.tdr); }

  // A page from the host allocator (4K or 2M), its DPAMT pair installed for 4K.
  Hpa page(int pg_level = PG_LEVEL_4K, bool pamt = true) {
    Hpa hpa = mem.alloc(pg_level) << kPageShift;
    Cycles c = 0;
    if (pamt && pg_level == PG_LEVEL_4K && tdx.pamt().dynamic()) dpamt.get(hpa, c);
    return hpa;
  }

  Status call(Leaf leaf, SeamcallRegs& r, unsigned initiator = 0, unsigned version = 0) {
    SeamcallTxn t;
    t.in = r;
    t.in.rax = leaf_rax(leaf, version);
    t.initiator = initiator;
    t.start = now;
    now += tdx.transport(t);
    r = t.out;
    return t.out.rax;
  }
  Status call(Leaf leaf, u64 rcx, u64 rdx = 0, u64 r8 = 0) {
    SeamcallRegs r;
    r.rcx = rcx, r.rdx = rdx, r.r8 = r8;
    return call(leaf, r);
  }
  Status mem_op(Leaf leaf, Gpa gpa, int level, u64 r8 = 0, SeamcallRegs* out = nullptr) {
    SeamcallRegs r;
    r.rcx = page_info(gpa, level), r.rdx = td.tdr, r.r8 = r8;
    Status s = call(leaf, r);
    if (out) *out = r;
    return s;
  }
  // page_info must be aligned to the entry's level (1.2): the table's base GPA.
  Status sept_add(Gpa gpa, int level) {
    return mem_op(Leaf::TDH_MEM_SEPT_ADD, gpa & ~(tdx_level_size(level) - 1), level, page());
  }
  // SEPT.ADD for every missing table above `level`.
  void tables_for(Gpa gpa, int level) {
    for (int l = state().sept->top_level(); l > level; --l) sept_add(gpa, l);
  }
  Status aug(Gpa gpa, int level, Hpa hpa = 0) {
    if (!hpa) hpa = page(level == 0 ? PG_LEVEL_4K : PG_LEVEL_2M);
    return mem_op(Leaf::TDH_MEM_PAGE_AUG, gpa, level, hpa);
  }
  // The 512 4K pieces of the 2M host page `big`, AUGed in order over the 2M
  // range at `gpa` (its tables already added): what PROMOTE can merge.
  // Returns how many AUGs succeeded (512 when all did).
  unsigned aug_512(Gpa gpa, Hpa big) {
    unsigned ok = 0;
    for (unsigned i = 0; i < kPtesPerTable; ++i) ok += aug(gpa + i * kPageSize, 0, big + i * kPageSize) == TDX_SUCCESS;
    return ok;
  }
  Status add(Gpa gpa) {
    SeamcallRegs r;
    r.rcx = page_info(gpa, 0), r.rdx = td.tdr, r.r8 = page(), r.r9 = mem.alloc() << kPageShift;
    return call(Leaf::TDH_MEM_PAGE_ADD, r);
  }
  Status block(Gpa gpa, int level) { return mem_op(Leaf::TDH_MEM_RANGE_BLOCK, gpa, level); }
  Status unblock(Gpa gpa, int level) { return mem_op(Leaf::TDH_MEM_RANGE_UNBLOCK, gpa, level); }
  Status remove(Gpa gpa, int level, SeamcallRegs* out = nullptr) {
    return mem_op(Leaf::TDH_MEM_PAGE_REMOVE, gpa, level, 0, out);
  }
  Status track() { return call(Leaf::TDH_MEM_TRACK, td.tdr); }
  Status finalize() { return call(Leaf::TDH_MR_FINALIZE, td.tdr); }
  Status enter(unsigned v) { return call(Leaf::TDH_VP_ENTER, td.tdvpr.at(v)); }
  void exit(unsigned v) { now += tdx.td_exit(td.tdvpr.at(v)); }
  Status accept(unsigned v, Gpa gpa, int level) {
    SeamcallRegs r;
    r.rcx = page_info(gpa, level);
    SeamcallTxn t;
    t.in = r;
    t.in.rax = u64(TdcallLeaf::TDG_MEM_PAGE_ACCEPT);
    t.tdcall = true;
    t.tdvpr = td.tdvpr.at(v);
    t.initiator = 100 + v;
    t.start = now;
    now += tdx.transport(t);
    return t.out.rax;
  }
  // SEPT.RD: public state number of the entry at (gpa, level), or -1 on failure.
  int sept_state(Gpa gpa, int level) {
    SeamcallRegs out;
    Status s = mem_op(Leaf::TDH_MEM_SEPT_RD, gpa, level, 0, &out);
    return s == TDX_SUCCESS ? int((out.rdx >> 8) & 0xff) : -1;
  }
  // A 4K private page mapped through AUG + ACCEPT at runtime.
  void map_4k(Gpa gpa, unsigned vcpu = 0) {
    tables_for(gpa, 0);
    aug(gpa, 0);
    enter(vcpu);
    accept(vcpu, gpa, 0);
    exit(vcpu);
  }
};

// One call on `initiator` starting at `start` (the env's clock is left alone).
inline Status at(SeamEnv& env, Leaf leaf, SeamcallRegs r, unsigned initiator, Cycles start) {
  SeamcallTxn t;
  t.in = r;
  t.in.rax = leaf_rax(leaf);
  t.initiator = initiator;
  t.start = start;
  env.tdx.transport(t);
  return t.status();
}

// Public state numbers (3.2).
constexpr int kFree = 0, kMapped = 4, kBlocked = 1, kPending = 2, kPendingBlocked = 3, kNlMapped = 0x84,
              kNlBlocked = 0x81;

}  // namespace septsim::seamtest
