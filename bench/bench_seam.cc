// TDX-module throughput and memory (issue 3's bench):
//   septsim-bench seam-loop   AUG -> BLOCK -> TRACK -> REMOVE on 4K pages (target >= 5 M SEAMCALLs/s)
//   septsim-bench seam-memory SEPT + PAMT bytes per mapped private 4K page, static and Dynamic PAMT
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/phys_mem.h"
#include "model/stats.h"
#include "seam/pamt_refcount.h"
#include "seam/seamcall.h"
#include "seam/sept_tree.h"
#include "seam/td_builder.h"
#include "seam/tdx_leaf.h"
#include "seam/tdx_module.h"

using namespace septsim;
using namespace septsim::seam;

namespace {

struct Td1 {
  model::Config cfg;
  model::StatsRegistry stats;
  model::PhysMem mem;
  TdxModule tdx;
  PamtRefcount dpamt;
  TdHandle td;
  Cycles now = 0;
  u64 calls = 0;

  Td1(const char* name, bool dynamic)
      : cfg(config(dynamic)), mem(64ull << 30), tdx(name, cfg, mem, stats), dpamt(tdx, mem) {
    TdCreateParams p;
    if (build_td(tdx, mem, dpamt, p, td).status != TDX_SUCCESS) throw std::runtime_error("build_td failed");
    expect(call(Leaf::TDH_MR_FINALIZE, td.tdr, 0, 0), "MR.FINALIZE");
  }
  static model::Config config(bool dynamic) {
    model::Config c;
    c.set("host.mem_gib", "64");
    c.set("seam.dynamic_pamt", dynamic ? "true" : "false");
    return c;
  }
  Status call(Leaf leaf, u64 rcx, u64 rdx, u64 r8) {
    SeamcallTxn t;
    t.in.rax = leaf_rax(leaf);
    t.in.rcx = rcx, t.in.rdx = rdx, t.in.r8 = r8;
    t.start = now;
    now += tdx.transport(t);
    ++calls;
    return t.out.rax;
  }
  static void expect(Status s, const char* what) {
    if (s != TDX_SUCCESS) {
      std::fprintf(stderr, "bench: %s returned 0x%016llx\n", what, static_cast<unsigned long long>(s));
      std::exit(1);
    }
  }
  // SEPT pages down to the 4K tables of [gpa, gpa + size).
  void tables(Gpa gpa, u64 size) {
    for (int l = 3; l >= 1; --l)
      for (Gpa g = gpa & ~(tdx_level_size(l) - 1); g < gpa + size; g += tdx_level_size(l)) {
        Status s = call(Leaf::TDH_MEM_SEPT_ADD, page_info(g, l), td.tdr, mem.alloc() << kPageShift);
        if (s != TDX_SUCCESS && (s >> 32) != (TDX_EPT_ENTRY_NOT_FREE >> 32)) expect(s, "SEPT.ADD");
      }
  }
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int seam_bench(const std::string& which) {
  const Gpa base = 0x40000000;
  if (which == "seam-loop") {
    Td1 t("tdx", false);
    t.tables(base, 2ull << 20);
    std::vector<Hpa> pages;
    for (int i = 0; i < 512; ++i) pages.push_back(t.mem.alloc() << kPageShift);
    const u64 rounds = 2'000'000;
    u64 calls0 = t.calls;
    double t0 = now_s();
    for (u64 i = 0; i < rounds; ++i) {
      Gpa gpa = base + (i % 512) * kPageSize;
      Td1::expect(t.call(Leaf::TDH_MEM_PAGE_AUG, page_info(gpa, 0), t.td.tdr, pages[i % 512]), "AUG");
      Td1::expect(t.call(Leaf::TDH_MEM_RANGE_BLOCK, page_info(gpa, 0), t.td.tdr, 0), "BLOCK");
      Td1::expect(t.call(Leaf::TDH_MEM_TRACK, t.td.tdr, 0, 0), "TRACK");
      Td1::expect(t.call(Leaf::TDH_MEM_PAGE_REMOVE, page_info(gpa, 0), t.td.tdr, 0), "REMOVE");
    }
    double secs = now_s() - t0;
    double rate = double(t.calls - calls0) / secs;
    std::printf("%-13s %14.0f %-12s target >= 5000000  %s\n", "seam-loop", rate, "SEAMCALLs/s",
                rate >= 5e6 ? "ok" : "BELOW TARGET");
    return 0;
  }
  if (which == "seam-memory") {
    const u64 pages = 65536;  // 256 MiB of private memory
    for (bool dynamic : {false, true}) {
      Td1 t(dynamic ? "tdx_dpamt" : "tdx_static", dynamic);
      u64 pamt0 = t.tdx.pamt().bytes(), sept0 = t.tdx.sept_pages();
      t.tables(base, pages * kPageSize);
      for (u64 i = 0; i < pages; ++i) {
        Hpa hpa = t.mem.alloc() << kPageShift;
        Cycles c = 0;
        if (dynamic) Td1::expect(t.dpamt.get(hpa, c), "PAMT.ADD");
        Td1::expect(t.call(Leaf::TDH_MEM_PAGE_AUG, page_info(base + i * kPageSize, 0), t.td.tdr, hpa), "AUG");
      }
      double sept = double((t.tdx.sept_pages() - sept0) * kPageSize) / double(pages);
      double pamt = double(t.tdx.pamt().bytes() - pamt0) / double(pages);
      std::printf("%-13s SEPT %.2f B/page, PAMT %s %.2f B/page%s\n", "seam-memory", sept,
                  dynamic ? "dynamic (page pairs)" : "static", dynamic ? pamt : 16.0,
                  dynamic ? " + bitmap and 2M/1G tables fixed per GiB of TDMR" : " (16-byte 4K entries over all TDMR memory)");
    }
    return 0;
  }
  return -1;
}
