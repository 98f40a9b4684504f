#include "model/walk/page_walker.h"

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "model/x86_pte.h"

namespace septsim::model {

namespace {

constexpr u8 kPermAll = kPermRead | kPermWrite | kPermExec;
constexpr unsigned kEntryBytes = 8;
// Deferred EPT PSC fills: at most (5 guest tables + data) nested walks x 4 non-leaf levels.
constexpr unsigned kMaxEptFills = 24;

// Rights a guest entry grants, in the kPerm* encoding (supervisor access, CR0.WP=1, EFER.NXE=1).
inline u8 guest_rights(u64 e) {
  return u8(kPermRead | ((e & x86::kWritable) ? kPermWrite : 0) | ((e & x86::kNoExec) ? 0 : kPermExec));
}

}  // namespace

// State of one walk. Paging-structure-cache fills are buffered and committed
// when the walk ends, so a walk never hits on entries it created itself: with
// cold caches it makes the architectural (n+1)(m+1)-1 references whatever the
// layout of the tables in guest-physical memory.
struct PageWalker::Impl {
  struct Fill {  // trivially constructible: the buffers stay uninitialised
    u64 addr;
    Hpa next;
    u8 perms;
    u8 level;
    u64 tag;  // EPT fills: the EPTP the entry came from
  };
  struct Leaf {  // result of one GPA -> HPA translation
    Hpa hpa;
    int level;
    u8 perms;
    bool dirty;
  };

  PageWalker& w;
  const WalkRequest& req;
  WalkResult& r;
  sc_core::sc_time delay;
  Cycles mem_cycles = 0;  // line accesses (memory.model = hierarchy)
  bool free_ept = false;  // guest.native: EPT translations cost nothing
  unsigned lookups = 0;
  unsigned n_ept_fills = 0, n_guest_fills = 0;
  Fill ept_fills[kMaxEptFills];
  Fill guest_fills[4];

  Impl(PageWalker& walker, const WalkRequest& request, WalkResult& result) : w(walker), req(request), r(result) {}

  // dim: 0 guest, 1 EPT; level of the entry.
  u64 read(Hpa a, unsigned dim, int level) {
    if (!w.l1d_) [[likely]]
      return w.read_entry(a, delay);
    sc_core::sc_time ignored;  // the bytes' transport latency: the hierarchy decides
    w.l1d_->prefetch_below(a);  // host-side only: the L2 and LLC sets load while the entry is read
    const u64 v = w.read_entry(a, ignored);
    mem_cycles += w.line(a, false, dim, level);
    return v;
  }
  // A/D updates are write transactions: their latency is charged, but they are
  // not references (the SDM's reference counts are the entry reads).
  void write_ad(Hpa a, u64 v) {
    ++*w.ad_writes_;
    if (!w.l1d_) [[likely]]
      return w.write_entry(a, v, delay);
    sc_core::sc_time ignored;
    w.write_entry(a, v, ignored);
    mem_cycles += w.line(a, true, 0, 0);
  }

  // Nested walks of one 2D walk often share upper EPT entries: fill each once.
  void add_ept_fill(Gpa gpa, Hpa next, u8 perms, int level, u64 tag) {
    const unsigned shift = level_shift(level);
    for (unsigned i = 0; i < n_ept_fills; ++i) {
      const Fill& f = ept_fills[i];
      if (f.level == level && (f.addr >> shift) == (gpa >> shift) && f.next == next && f.tag == tag) return;
    }
    if (n_ept_fills < kMaxEptFills) ept_fills[n_ept_fills++] = Fill{gpa, next, perms, u8(level), tag};
  }

  // A TD's private GPAs (shared bit clear) are translated by the Secure EPT.
  bool is_private(Gpa gpa) const { return req.secure_eptp && !((gpa >> req.shared_bit) & 1); }

  bool ept_violation(Gpa gpa, u64 qual) {
    r.outcome = WalkOutcome::EptViolation;
    r.gpa = gpa;
    r.exit_qualification = qual;
    return false;
  }
  void guest_fault(u32 code) {
    r.outcome = WalkOutcome::GuestPageFault;
    r.guest_error_code = code;
  }

  // EPT entries under guest.native (free_ept): read and A/D-updated without
  // references, latency or paging-structure caches.
  u64 read_free(Hpa a) {
    sc_core::sc_time ignored;
    return w.read_entry(a, ignored);
  }
  void write_ept_ad(Hpa a, u64 v) {
    if (!free_ept) return write_ad(a, v);
    sc_core::sc_time ignored;
    w.write_entry(a, v, ignored);
  }

  // Translates `gpa` through the EPT. `need`: rights the access requires;
  // `write`: the access writes for EPT A/D purposes; `qual`: exit-qualification
  // bits describing the access (0-2, 7, 8), used if it faults. With free_ept
  // the same checks and A/D updates, for free.
  bool translate(Gpa gpa, u8 need, bool write, u64 qual, Leaf& out) {
    const bool priv = is_private(gpa);
    const ept::Eptp& eptp = priv ? *req.secure_eptp : req.eptp;
    const u64 tag = priv ? eptp.encode() : req.ctx.eptp;
    const int m = eptp.levels;
    const bool ad = eptp.ad_enabled;
    int level = m;
    Hpa table = eptp.root;
    u8 acc = kPermAll;
    if (!free_ept) {
      ++lookups;
      if (auto hit = w.psc_.lookup_ept(tag, m, gpa)) {
        level = hit->level;
        table = hit->e.next_table;
        acc = hit->e.perms;
      }
    }
    for (;; --level) {
      const Hpa ea = table + pt_index(gpa, level) * kEntryBytes;
      const u64 e = free_ept ? read_free(ea) : read(ea, 1, level);
      r.ept_refs += !free_ept;
      if (!ept::is_present(e)) return ept_violation(gpa, qual);  // rights bits: AND includes this 0 entry
      // ept::is_leaf treats PS as a leaf at any level, so PS in a PML4E/PML5E is checked here.
      if (ept::is_misconfigured(e, level, w.maxphyaddr_) || (level >= PG_LEVEL_512G && (e & ept::kLarge))) {
        r.outcome = WalkOutcome::EptMisconfig;
        r.gpa = gpa;
        return false;
      }
      acc &= u8(e & ept::kRwx);
      if (!ept::is_leaf(e, level)) {
        if (ad && !(e & ept::kAccessed)) write_ept_ad(ea, e | ept::kAccessed);
        table = ept::entry_addr(e);
        if (!free_ept) add_ept_fill(gpa, table, acc, level, tag);
        continue;
      }
      if ((acc & need) != need) return ept_violation(gpa, qual | (u64(acc) << 3));
      if (ad) {
        const u64 ne = e | ept::kAccessed | (write ? ept::kDirty : 0);
        if (ne != e) write_ept_ad(ea, ne);
        out.dirty = (ne & ept::kDirty) != 0;
      } else {
        out.dirty = true;  // EPT D is not tracked: nothing to set on a later write
      }
      out.hpa = ept::leaf_frame(e, level) | (gpa & (level_size(level) - 1));
      out.level = level;
      out.perms = acc;
      return true;
    }
  }

  void walk_1d() {
    const AccessType a = req.access;
    Leaf leaf;
    if (!translate(req.addr, u8(ept::access_perm(a)), a == AccessType::Write, ept::access_qual(a), leaf)) return;
    r.gpa = req.addr;
    r.t.level = u8(leaf.level);
    r.t.frame = align_down(leaf.hpa, leaf.level);
    r.t.perms = leaf.perms;
    r.t.dirty = leaf.dirty;
    r.t.global = false;
  }

  void walk_2d() {
    const int n = req.guest.levels;
    const Gva gva = req.addr;
    const AccessType a = req.access;
    const bool is_write = a == AccessType::Write, is_fetch = a == AccessType::Fetch;
    const u32 pf_access = (is_write ? x86::pferr::kWrite : 0) | (is_fetch ? x86::pferr::kFetch : 0);
    // Guest paging-structure accesses: writes for EPT when A/D is enabled (SDM 29.3.5);
    // a violation then reports both read and write (Table 28-7, bit 1 note).
    const bool ps_write = req.eptp.ad_enabled;
    const u8 ps_need = ps_write ? kPermWrite : kPermRead;
    const u64 ps_qual = (ps_write ? ept::qual::kRead | ept::qual::kWrite : ept::qual::kRead) | ept::qual::kGlaValid;

    int level = n;
    Gpa table_gpa = req.guest.cr3 & x86::kAddrMask;
    Hpa table_hpa = 0;
    bool have_hpa = false;
    u8 acc = kPermAll;
    ++lookups;
    if (auto hit = w.psc_.lookup_guest(req.ctx, n, gva)) {
      level = hit->level;
      table_hpa = hit->e.next_table;
      acc = hit->e.perms;
      have_hpa = true;
    }

    u64 e = 0;
    Hpa ea = 0;
    for (;; --level) {
      const unsigned idx = pt_index(gva, level);
      if (have_hpa) {
        ea = table_hpa + idx * kEntryBytes;
        have_hpa = false;
      } else {
        Leaf t;
        if (!translate(table_gpa + idx * kEntryBytes, ps_need, ps_write, ps_qual, t)) return;
        ea = t.hpa;
        // The entry one level up pointed at this table: cache the combined mapping.
        if (level < n) guest_fills[n_guest_fills++] = Fill{gva, ea & ~(kPageSize - 1), acc, u8(level + 1), 0};
      }
      e = read(ea, 0, level);
      ++r.guest_refs;
      if (!(e & x86::kPresent)) return guest_fault(pf_access);
      if (level >= PG_LEVEL_512G && (e & x86::kLarge))  // PS is reserved in PML4Es and PML5Es
        return guest_fault(x86::pferr::kPresent | x86::pferr::kRsvd | pf_access);
      acc &= guest_rights(e);
      if (x86::is_leaf(e, level)) break;
      if (!(e & x86::kAccessed)) write_ad(ea, e | x86::kAccessed);
      table_gpa = e & x86::kAddrMask;
    }

    const int guest_level = level;
    if ((is_write && !(acc & kPermWrite)) || (is_fetch && !(acc & kPermExec)))
      return guest_fault(x86::pferr::kPresent | pf_access);
    const u64 ne = e | x86::kAccessed | (is_write ? x86::kDirty : 0);
    if (ne != e) write_ad(ea, ne);

    const Gpa gpa = x86::leaf_frame(e, guest_level) | (gva & (level_size(guest_level) - 1));
    Leaf leaf;
    if (!translate(gpa, u8(ept::access_perm(a)), is_write,
                   ept::access_qual(a) | ept::qual::kGlaValid | ept::qual::kGlaTranslated, leaf))
      return;
    const int lvl = guest_level < leaf.level ? guest_level : leaf.level;
    r.gpa = gpa;
    r.t.level = u8(lvl);
    r.t.frame = align_down(leaf.hpa, lvl);
    r.t.perms = u8(acc & leaf.perms);
    r.t.dirty = (ne & x86::kDirty) && leaf.dirty;
    r.t.global = (e & x86::kGlobal) != 0;
  }

  void commit() {
    for (unsigned i = 0; i < n_ept_fills; ++i) {
      const Fill& f = ept_fills[i];
      const int m = is_private(f.addr) ? req.secure_eptp->levels : req.eptp.levels;
      w.psc_.fill_ept(f.tag, m, f.addr, f.level, PscEntry{f.next, f.perms});
    }
    for (unsigned i = 0; i < n_guest_fills; ++i) {
      const Fill& f = guest_fills[i];
      w.psc_.fill_guest(req.ctx, req.guest.levels, f.addr, f.level, PscEntry{f.next, f.perms});
    }
  }
};

PageWalker::PageWalker(sc_core::sc_module_name name, const Config& cfg, const Timing& timing, StatsRegistry& stats,
                       const std::string& prefix)
    : sc_core::sc_module(name),
      mem("mem"),
      timing_(timing),
      stats_(stats),
      prefix_(prefix),
      native_(cfg.b("guest.native")),
      maxphyaddr_(unsigned(cfg.u("host.maxphyaddr"))),
      psc_(cfg, stats, prefix),
      half_cycle_(sc_core::sc_time::from_value(timing.to_ps(1) / 2)),
      direct_(kDirectPages),
      table_memo_(kTableMemo),
      guest_dir_memo_(kDirMemo),
      ept_dir_memo_(kDirMemo) {
  mem.register_invalidate_direct_mem_ptr(this, &PageWalker::invalidate_direct_mem_ptr);
  payload_.set_data_ptr(reinterpret_cast<unsigned char*>(&buffer_));
  payload_.set_data_length(sizeof buffer_);
  payload_.set_streaming_width(sizeof buffer_);
  payload_.set_byte_enable_ptr(nullptr);
  payload_.set_byte_enable_length(0);
  payload_.set_dmi_allowed(false);

  const std::string p = prefix + ".walk.";
  walks_1d_ = &stats.counter(p + "walks_1d", "1D walks (guest-physical accesses)");
  walks_2d_ = &stats.counter(p + "walks_2d", "2D walks (guest-linear accesses)");
  refs_guest_ = &stats.counter(p + "refs.guest", "guest paging-structure entry reads");
  refs_ept_ = &stats.counter(p + "refs.ept", "EPT entry reads (nested and final)");
  ad_writes_ = &stats.counter(p + "ad_writes", "A/D flag writes (guest and EPT); not counted as references");
  violations_ = &stats.counter(p + "ept_violations", "walks ending in an EPT violation");
  misconfigs_ = &stats.counter(p + "ept_misconfigs", "walks ending in an EPT misconfiguration");
  guest_faults_ = &stats.counter(p + "guest_page_faults", "walks ending in a guest page fault");
  walk_cycles_ = &stats.histogram(p + "cycles", "cycles per walk (PSC lookups + memory latency)");
  if (native_)
    walks_native_ = &stats.counter(p + "walks_native", "guest-linear walks made natively (guest.native: 1D, no EPT)");
}

void PageWalker::attach_l1d(Cache* l1d) {
  l1d_ = l1d;
  if (!l1d || row_hits_) return;
  const std::string p = prefix_ + ".mem.";
  static const char* const kDim[2] = {"guest", "ept"};
  for (unsigned d = 0; d < 2; ++d)
    for (int level = 1; level <= 5; ++level)
      for (unsigned m = 0; m < kMemLevels; ++m)
        pte_served_[d][level][m] = &stats_.counter(
            p + "pte." + kDim[d] + ".l" + std::to_string(level) + "." + kMemLevelNames[m],
            std::string(kDim[d]) + " paging-structure entry reads at level " + std::to_string(level) + " served by " +
                kMemLevelNames[m]);
  for (unsigned m = 0; m < kMemLevels; ++m)
    ad_served_[m] = &stats_.counter(p + "ad." + kMemLevelNames[m],
                                    std::string("A/D flag writes served by ") + kMemLevelNames[m]);
  row_hits_ = &stats_.counter(p + "dram.row_hits", "line accesses DRAM served from an open row (walks and data)");
  row_misses_ = &stats_.counter(p + "dram.row_misses", "line accesses DRAM served by opening a row (walks and data)");
}

WalkResult PageWalker::walk(const WalkRequest& req) {
  if ((req.eptp.levels != 4 && req.eptp.levels != 5) ||
      (req.secure_eptp && ((req.secure_eptp->levels != 4 && req.secure_eptp->levels != 5) || req.shared_bit > 51)) ||
      (req.kind == TranslationKind::Linear && req.guest.levels != 4 && req.guest.levels != 5)) [[unlikely]]
    throw std::invalid_argument("page walk: paging levels must be 4 or 5");
  WalkResult r;
  Impl s(*this, req, r);
  if (req.kind == TranslationKind::Linear) {
    if (native_) {
      ++*walks_native_;
      s.free_ept = true;
    } else {
      ++*walks_2d_;
    }
    s.walk_2d();
  } else {
    ++*walks_1d_;
    s.walk_1d();
  }
  s.commit();
  // One sc_time -> cycles conversion per walk, rounded (to_ps truncates per reference).
  r.cycles = timing_.from_time(s.delay + half_cycle_) + Cycles(s.lookups) * timing_.pwc_hit + s.mem_cycles;
  *refs_guest_ += r.guest_refs;
  *refs_ept_ += r.ept_refs;
  switch (r.outcome) {
    case WalkOutcome::EptViolation: ++*violations_; break;
    case WalkOutcome::EptMisconfig: ++*misconfigs_; break;
    case WalkOutcome::GuestPageFault: ++*guest_faults_; break;
    case WalkOutcome::Ok: break;
  }
  walk_cycles_->add(r.cycles);
  return r;
}

const unsigned char* PageWalker::direct_bytes(Hpa hpa) {
  const Pfn pfn = hpa >> kPageShift;
  const DirectPage& d = direct_page(pfn);
  if (d.pfn() == pfn) [[likely]]
    return d.bytes;
  payload_.set_command(tlm::TLM_READ_COMMAND);
  payload_.set_address(hpa & ~(kPageSize - 1));
  request_direct_page(hpa);
  return d.pfn() == pfn ? d.bytes : nullptr;
}

bool PageWalker::ept_directory(const ept::Eptp& eptp, Gpa gpa, Hpa& dir) {
  const u64 enc = eptp.encode();
  DirMemo& m = ept_dir_memo_[(gpa >> 30) & (kDirMemo - 1)];
  if (m.eptp == enc && m.gib == gpa >> 30) {
    dir = m.page;
    return true;
  }
  Hpa table = eptp.root;
  for (int level = eptp.levels; level > PG_LEVEL_2M; --level) {
    const unsigned char* bytes = direct_bytes(table);
    if (!bytes) return false;
    u64 e;
    std::memcpy(&e, bytes + pt_index(gpa, level) * kEntryBytes, sizeof e);
    if (!ept::is_present(e) || (e & ept::kLarge) || ept::is_leaf(e, level)) return false;
    table = ept::entry_addr(e);
  }
  m = DirMemo{0, enc, gpa >> 30, table};
  dir = table;
  return true;
}

bool PageWalker::peek_ept(const ept::Eptp& eptp, Gpa gpa, Hpa& hpa, bool prefetch_leaf) {
  Hpa table = eptp.root;
  int level = eptp.levels;
  if (ept_directory(eptp, gpa, table)) level = PG_LEVEL_2M;
  for (; level >= PG_LEVEL_4K; --level) {
    const unsigned char* bytes = direct_bytes(table);
    if (!bytes) return false;
    const unsigned char* at = bytes + pt_index(gpa, level) * kEntryBytes;
    if (prefetch_leaf && level <= PG_LEVEL_2M) __builtin_prefetch(at);
    u64 e;
    std::memcpy(&e, at, sizeof e);
    if (!ept::is_present(e) || (level >= PG_LEVEL_512G && (e & ept::kLarge))) return false;
    if (ept::is_leaf(e, level)) {
      hpa = ept::leaf_frame(e, level) | (gpa & (level_size(level) - 1));
      return true;
    }
    table = ept::entry_addr(e);
  }
  return false;
}

void PageWalker::prefetch(const WalkRequest& req, Lookahead& la) {
  constexpr u8 kDone = 4;
  if (native_ || l1d_) return;  // native: no EPT walk to overlap; hierarchy: its line accesses dominate
  auto eptp_of = [&](Gpa gpa) -> const ept::Eptp& {
    return req.secure_eptp && !((gpa >> req.shared_bit) & 1) ? *req.secure_eptp : req.eptp;
  };
  const u8 stage = la.stage;
  la.stage = kDone;
  if (req.kind != TranslationKind::Linear) {
    Hpa hpa;
    if (stage == 0) peek_ept(eptp_of(req.addr), req.addr, hpa, true);
    return;
  }
  const Gva gva = req.addr;
  if (stage == 0) {
    if (req.guest.levels != 4 && req.guest.levels != 5) return;  // walk() refuses it
    // The page directory of this GiB, found lately or through tables the
    // look-ahead translated lately.
    const u64 gib = gva >> 30 | u64(req.guest.levels) << 40, eptp_enc = req.eptp.encode();
    DirMemo& dm = guest_dir_memo_[(gva >> 30) & (kDirMemo - 1)];
    Hpa page = dm.page;
    if (!(dm.gib == gib && dm.cr3 == req.guest.cr3 && dm.eptp == eptp_enc)) {
      Gpa table = req.guest.cr3 & x86::kAddrMask;
      for (int level = req.guest.levels;; --level) {
        const ept::Eptp& eptp = eptp_of(table);
        TableMemo& m = table_memo_[(table >> kPageShift) & (kTableMemo - 1)];
        if (m.gfn == table >> kPageShift && m.eptp == eptp.encode()) {
          page = m.page;
        } else {
          if (!peek_ept(eptp, table, page, false)) return;
          m = TableMemo{eptp.encode(), table >> kPageShift, page};
        }
        if (level == PG_LEVEL_2M) break;
        const unsigned char* bytes = direct_bytes(page);
        if (!bytes) return;
        u64 e;
        std::memcpy(&e, bytes + pt_index(gva, level) * kEntryBytes, sizeof e);
        if (!(e & x86::kPresent) || x86::is_leaf(e, level)) return;
        table = e & x86::kAddrMask;
      }
      dm = DirMemo{req.guest.cr3, eptp_enc, gib, page};
    }
    const unsigned char* bytes = direct_bytes(page);
    if (!bytes) return;
    __builtin_prefetch(bytes + pt_index(gva, PG_LEVEL_2M) * kEntryBytes);
    la.entry = page + pt_index(gva, PG_LEVEL_2M) * kEntryBytes;
    la.stage = 1;
    return;
  }
  const unsigned char* bytes = direct_bytes(la.entry);
  if (!bytes) return;
  if (stage == 2) {
    __builtin_prefetch(bytes + (la.entry & (kPageSize - 1)));
    la.stage = 3;
    return;
  }
  if (stage == 3) {
    // The PTE is cached now: the EPT PDE of the data's GPA (its leaf for a
    // 2M mapping), read by no stage (its line is what a walk waits for).
    u64 e;
    std::memcpy(&e, bytes + (la.entry & (kPageSize - 1)), sizeof e);
    if (!(e & x86::kPresent)) return;
    const Gpa gpa = e & x86::kAddrMask;
    Hpa dir;
    if (!ept_directory(eptp_of(gpa), gpa, dir)) return;
    if (const unsigned char* d = direct_bytes(dir)) __builtin_prefetch(d + pt_index(gpa, PG_LEVEL_2M) * kEntryBytes);
    return;
  }
  // Stage 1: the PDE is cached now; find the page table and load its grant.
  u64 e;
  std::memcpy(&e, bytes + (la.entry & (kPageSize - 1)), sizeof e);
  if (!(e & x86::kPresent) || x86::is_leaf(e, PG_LEVEL_2M)) return;
  const Gpa table = e & x86::kAddrMask;
  Hpa page;
  if (!peek_ept(eptp_of(table), table, page, false)) return;
  __builtin_prefetch(&direct_page(page >> kPageShift));
  la.entry = page + pt_index(gva, PG_LEVEL_4K) * kEntryBytes;
  la.stage = 2;
}

namespace {
[[noreturn, gnu::cold]] void bad_response(const tlm::tlm_generic_payload& p, const char* what) {
  std::string msg = std::string(what) + " of paging-structure entry at HPA 0x";
  char buf[20];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(p.get_address()));
  msg += buf;
  msg += " failed: " + p.get_response_string();
  SC_REPORT_ERROR("septsim/walk", msg.c_str());
  throw std::runtime_error(msg);  // reached only if the report handler does not throw
}
}  // namespace

u64 PageWalker::read_entry(Hpa hpa, sc_core::sc_time& delay) {
  const DirectPage& d = direct_page(hpa >> kPageShift);
  if (d.pfn() == hpa >> kPageShift) [[likely]] {
    delay += grant_kinds_[d.kind()].read_latency;
    u64 v;
    std::memcpy(&v, d.bytes + (hpa & (kPageSize - 1)), sizeof v);
    return v;
  }
  transport(tlm::TLM_READ_COMMAND, hpa, delay);
  return buffer_;
}

void PageWalker::write_entry(Hpa hpa, u64 value, sc_core::sc_time& delay) {
  const DirectPage& d = direct_page(hpa >> kPageShift);
  if (d.pfn() == hpa >> kPageShift && grant_kinds_[d.kind()].writable) {
    delay += grant_kinds_[d.kind()].write_latency;
    std::memcpy(d.bytes + (hpa & (kPageSize - 1)), &value, sizeof value);
    return;
  }
  buffer_ = value;
  transport(tlm::TLM_WRITE_COMMAND, hpa, delay);
}

void PageWalker::transport(tlm::tlm_command cmd, Hpa hpa, sc_core::sc_time& delay) {
  payload_.set_command(cmd);
  payload_.set_address(hpa);
  payload_.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  payload_.set_dmi_allowed(false);
  mem->b_transport(payload_, delay);
  if (payload_.is_response_error()) [[unlikely]]
    bad_response(payload_, cmd == tlm::TLM_READ_COMMAND ? "read" : "write");
  if (payload_.is_dmi_allowed()) request_direct_page(hpa);
}

// Caches the grant for the page of `hpa` if it covers the whole page.
void PageWalker::request_direct_page(Hpa hpa) {
  tlm::tlm_dmi dmi;
  if (!mem->get_direct_mem_ptr(payload_, dmi) || !dmi.is_read_allowed()) return;
  const Hpa page = hpa & ~(kPageSize - 1);
  if (dmi.get_start_address() > page || dmi.get_end_address() < page + kPageSize - 1) return;
  if ((page >> kPageShift) >= kPfnBits) return;
  const GrantKind kind{dmi.is_write_allowed(), dmi.get_read_latency(), dmi.get_write_latency()};
  size_t k = 0;
  while (k < grant_kinds_.size() && !(grant_kinds_[k].writable == kind.writable &&
                                      grant_kinds_[k].read_latency == kind.read_latency &&
                                      grant_kinds_[k].write_latency == kind.write_latency))
    ++k;
  if (k == grant_kinds_.size()) {
    if (k >> 23) return;  // more kinds than the key holds: use the transport
    grant_kinds_.push_back(kind);
  }
  DirectPage& d = direct_page(page >> kPageShift);
  d.key = (page >> kPageShift) | (u64(k) << 41);
  d.bytes = dmi.get_dmi_ptr() + (page - dmi.get_start_address());
}

void PageWalker::invalidate_direct_mem_ptr(sc_dt::uint64 start, sc_dt::uint64 end) {
  const Pfn first = start >> kPageShift, last = end >> kPageShift;
  if (last - first < kDirectPages) {
    for (Pfn p = first; p <= last; ++p)
      if (direct_page(p).pfn() == p) direct_page(p) = DirectPage{};
    return;
  }
  for (DirectPage& d : direct_)
    if (d.pfn() >= first && d.pfn() <= last) d = DirectPage{};
}

}  // namespace septsim::model
