// The hardware page walker: 1D walks of the EPT for guest-physical accesses
// and 2D walks for guest-linear accesses, where every guest paging-structure
// read is itself translated through the EPT (SDM Vol. 3C 29.3). Paging-
// structure memory is read and written (A/D updates) through a TLM-2.0
// initiator socket; the memory target annotates the latency of each
// reference, so users can plug in their own cache or DRAM model.
//
// When the target grants TLM DMI for a page (HostMemoryTarget does), later
// references to it read and write through the pointer and add the granted
// latency, as the transport would have; the target revokes grants through
// invalidate_direct_mem_ptr.
//
// Contract (implemented in page_walker.cc):
//  - With cold paging-structure caches a walk makes exactly (n+1)(m+1)-1
//    references for an n-level guest under an m-level EPT (24 for 4x4, 35 for
//    5x5) and m for a 1D walk.
//  - Paging-structure caches (psc.h) are looked up deepest first; a hit skips
//    the levels the SDM says it skips (4.10.3, 29.4.1).
//  - A/D: guest A on every guest entry used, guest D on the leaf for writes;
//    with EPTP A/D enabled, EPT A on every EPT entry used and EPT D on the EPT
//    leaf of a written GPA; guest paging-structure accesses count as writes
//    for EPT A/D (SDM 29.3.5), so they may set EPT D and fault as writes.
//  - An EPT violation reports the SDM exit qualification (ept.h qual::*),
//    with GLA valid/translated bits for 2D walks; a misconfigured entry ends
//    the walk with EptMisconfig. A non-present guest entry gives
//    GuestPageFault with a #PF error code.
//  - With an L1D attached (memory.model = hierarchy, attach_l1d) every entry
//    read and A/D write is also a 64-byte line access through that cache and
//    costs what the hierarchy says; the entry's bytes still come through DMI
//    or the socket, whose annotated latency is then not charged. Counters
//    "<prefix>.mem.pte.{guest,ept}.l<level>.{l1d,l2,llc,dram}" say where each
//    reference was served.
//  - guest.native: a guest-linear walk reads only the guest tables (1D); the
//    GPAs of the tables and of the data are turned into HPAs through the EPT
//    for free (no references, no latency, no EPT paging-structure caches),
//    as a bare-metal OS would find its tables at those frames.
#pragma once
#include <systemc>
#include <tlm>
#include <tlm_utils/simple_initiator_socket.h>
#include <vector>

#include "model/cache/cache.h"
#include "model/config.h"
#include "model/ept.h"
#include "model/stats.h"
#include "model/timing.h"
#include "model/translation.h"
#include "model/walk/psc.h"

namespace septsim::model {

struct GuestPaging {
  Gpa cr3 = 0;     // guest-physical address of the guest's root table
  int levels = 4;  // 4 or 5
};

struct WalkRequest {
  TranslationKind kind = TranslationKind::GuestPhysical;
  u64 addr = 0;  // GVA for Linear, GPA for GuestPhysical
  AccessType access = AccessType::Read;
  TlbContext ctx;          // tags for the paging-structure caches
  ept::Eptp eptp;          // EPT in use (for a TD vCPU: the shared EPT)
  GuestPaging guest;       // only for Linear
  // TD vCPUs: GPAs with bit `shared_bit` clear are private and walk the
  // Secure EPT (`secure_eptp`); set ones walk `eptp`. Absent: every GPA walks `eptp`.
  const ept::Eptp* secure_eptp = nullptr;
  unsigned shared_bit = 0;  // 47 or 51 by the TD's GPAW
};

enum class WalkOutcome : u8 { Ok, EptViolation, EptMisconfig, GuestPageFault };

struct WalkResult {
  WalkOutcome outcome = WalkOutcome::Ok;
  Translation t;                // Ok: what the TLB may cache
  Gpa gpa = 0;                  // Ok: GPA of the access; violation/misconfig: the faulting GPA
  u64 exit_qualification = 0;   // EptViolation
  u32 guest_error_code = 0;     // GuestPageFault
  unsigned guest_refs = 0;      // guest paging-structure references
  unsigned ept_refs = 0;        // EPT references (nested and final)
  Cycles cycles = 0;            // paging-structure cache lookups + memory latency
  unsigned refs() const { return guest_refs + ept_refs; }
};

class PageWalker : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<PageWalker> mem;

  // Config keys pwc.*, host.maxphyaddr, latency.pwc_hit; counters under
  // "<prefix>.walk.*" (walks, refs, per-outcome counts, cycles histogram).
  PageWalker(sc_core::sc_module_name name, const Config& cfg, const Timing& timing, StatsRegistry& stats,
             const std::string& prefix);

  WalkResult walk(const WalkRequest& req);
  // Host-side only, no simulated effect: loads into the host's caches, in
  // four stages called a few operations apart, what a later walk of `req`
  // will read from memory that is probably not cached: (0) the guest PDE's
  // line, (1) the DMI grant of the guest page table, (2) the guest PTE's line,
  // (3) the line of the EPT entry that maps the data's GPA, when its EPT page
  // directory is known (a GPA: the EPT leaf's line in stage 0), so that the
  // memory latency of independent walks overlaps. It reads entries through DMI grants only
  // (asking the target for grants it has not given yet), touches no
  // paging-structure cache, counter or A/D bit, and stops at the first entry
  // that is not present, a leaf above the last stage, or not granted.
  struct Lookahead {
    u64 op = 0;      // the caller's tag of the operation (0: none)
    u8 stage = 0;    // the next stage
    Hpa entry = 0;   // stages 1 to 3: the guest entry to read or prefetch
  };
  void prefetch(const WalkRequest& req, Lookahead& la);
  PagingStructureCaches& psc() { return psc_; }
  // Sends every paging-structure reference through `l1d` (null: flat latency).
  void attach_l1d(Cache* l1d);
  bool native() const { return native_; }

 private:
  struct Impl;
  // A page the target granted DMI for: 16 bytes, so that the grants of a
  // large guest's tables fit the host's caches. `key` holds the frame number
  // (bits 40:0; all ones, above any 52-bit address's frame: the slot is
  // empty) and the index of the grant's access and latencies in grant_kinds_
  // (bits 63:41).
  struct DirectPage {
    u64 key = kPfnBits;
    unsigned char* bytes = nullptr;  // the frame's first byte
    Pfn pfn() const { return key & kPfnBits; }
    unsigned kind() const { return unsigned(key >> 41); }
  };
  static constexpr u64 kPfnBits = (u64{1} << 41) - 1;
  struct GrantKind {
    bool writable = false;          // write access granted too
    sc_core::sc_time read_latency;  // per reference, as granted
    sc_core::sc_time write_latency;
  };
  // Direct-mapped by frame number; 32768 slots (512 KiB) hold the grants of
  // every table of a 64 GiB guest and its EPT (128 MiB of tables).
  static constexpr unsigned kDirectPages = 32768;
  DirectPage& direct_page(Pfn pfn) { return direct_[pfn & (kDirectPages - 1)]; }

  // Reads or writes one 8-byte paging-structure entry: through a DMI pointer
  // when the page has one, else through the socket.
  u64 read_entry(Hpa hpa, sc_core::sc_time& delay);
  void write_entry(Hpa hpa, u64 value, sc_core::sc_time& delay);
  void transport(tlm::tlm_command cmd, Hpa hpa, sc_core::sc_time& delay);
  void request_direct_page(Hpa hpa);
  void invalidate_direct_mem_ptr(sc_dt::uint64 start, sc_dt::uint64 end);
  // The bytes of the page of `hpa` through a DMI grant (asked for if not
  // held); null when the target does not grant it.
  const unsigned char* direct_bytes(Hpa hpa);
  // prefetch(): GPA -> HPA of `gpa` through the EPT (`eptp`), entries read
  // through DMI; false when an entry is missing or not granted.
  bool peek_ept(const ept::Eptp& eptp, Gpa gpa, Hpa& hpa, bool prefetch_leaf);
  // prefetch(): the HPA of the EPT page directory that maps `gpa` (through
  // ept_dir_memo_, else entries read through DMI); false when an entry above
  // it is missing, a leaf, or not granted.
  bool ept_directory(const ept::Eptp& eptp, Gpa gpa, Hpa& dir);

  // One line access of a reference (dim 0 guest, 1 EPT; level 1..5) or, with
  // level 0, of an A/D write; counts where it was served.
  Cycles line(Hpa hpa, bool write, unsigned dim, int level) {
    LineAccess info;
    const Cycles c = l1d_->access(hpa, write, info);
    ++*(level ? pte_served_[dim][level][unsigned(info.served)] : ad_served_[unsigned(info.served)]);
    if (info.served == MemLevel::DRAM) ++*(info.row_hit ? row_hits_ : row_misses_);
    return c;
  }

  const Timing& timing_;
  StatsRegistry& stats_;
  std::string prefix_;
  Cache* l1d_ = nullptr;
  bool native_;
  Counter* pte_served_[2][6][kMemLevels] = {};
  Counter* ad_served_[kMemLevels] = {};
  Counter *row_hits_ = nullptr, *row_misses_ = nullptr, *walks_native_ = nullptr;
  unsigned maxphyaddr_;
  PagingStructureCaches psc_;
  tlm::tlm_generic_payload payload_;
  u64 buffer_ = 0;
  sc_core::sc_time half_cycle_;  // rounds the walk's delay to the nearest cycle
  std::vector<DirectPage> direct_;  // kDirectPages DMI grants, see direct_page()
  std::vector<GrantKind> grant_kinds_;  // the distinct kinds of grant seen (a few)
  // prefetch(): guest-table frames (GPA -> HPA) translated lately, so that
  // the look-ahead walks the EPT only for the last level's table. A hint:
  // a stale entry only prefetches the wrong line.
  struct TableMemo {
    u64 eptp = ~u64{0};
    Gpa gfn = ~Gpa{0};
    Hpa page = 0;
  };
  static constexpr unsigned kTableMemo = 256;
  std::vector<TableMemo> table_memo_;
  // prefetch(): the page directory (its HPA) that maps each 1 GiB lately
  // looked ahead, so that the look-ahead starts at the PDE instead of the
  // root. Guest side: by CR3, EPTP, paging levels and linear address bits
  // 63:30 (stage 0 starts at the guest PDE); EPT side: by EPTP and GPA bits
  // 63:30 (peek_ept() starts at the EPT PDE). Hints like table_memo_.
  struct DirMemo {
    u64 cr3 = ~u64{0};   // guest side; 0 on the EPT side
    u64 eptp = ~u64{0};  // encoded
    u64 gib = ~u64{0};   // address >> 30; guest side: | levels << 40
    Hpa page = 0;
  };
  static constexpr unsigned kDirMemo = 256;
  std::vector<DirMemo> guest_dir_memo_, ept_dir_memo_;
  // Counters.
  Counter *walks_1d_, *walks_2d_, *refs_guest_, *refs_ept_, *violations_, *misconfigs_, *guest_faults_, *ad_writes_;
  Histogram* walk_cycles_;
  friend struct Impl;
};

}  // namespace septsim::model
