// The TD rules of the invariant checker (docs/invariants.md): 3 (one
// valid mirror root until teardown), 15 (mirror and Secure EPT agree, both
// ways, tables included), 16 (no private leaf dropped while the module maps
// it), 17 (no refused present -> present mirror change), 18 (external tables
// are the TD's until teardown reclaims them), 19 (nr_premapped is 0 once
// finalized), plus the model's content rule (the mapped private pages of a
// 2 MiB region keep their content tags unless the guest wrote them) and PAMT
// accounting (a private page is PT_REG of its TD; with no TD left, no
// Dynamic PAMT memory remains). Rules 9 and 22 are checked per SPTE in
// invariants.cc.
#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <utility>

#include "mmu/kvm_impl.h"
#include "mmu/sept_level.h"
#include "seam/sept_entry.h"

namespace septsim::mmu {

namespace {

// The page a Secure-EPT leaf at TDX level `level` maps: a 2M leaf partly
// accepted keeps the ACCEPT's progress in the address's low bits.
Hpa leaf_hpa(u64 entry, int level) { return seam::septe::leaf_hpa(entry, u64{1} << (kPageShift + 9 * unsigned(level))); }

}  // namespace

namespace {

using seam::septe::SeptState;

const char* state_name(SeptState s) {
  switch (s) {
    case SeptState::FREE: return "FREE";
    case SeptState::REMOVED: return "REMOVED";
    case SeptState::NL_MAPPED: return "NL_MAPPED";
    case SeptState::NL_BLOCKED: return "NL_BLOCKED";
    case SeptState::MAPPED: return "MAPPED";
    case SeptState::PENDING: return "PENDING";
    default: return "a blocked or locked leaf state";
  }
}

class TdChecker {
 public:
  TdChecker(const Kvm::Impl& k, std::vector<std::string>& out)
      : k_(k), td_(*k.td), tdx_(td_.module()), t_(td_.td()), out_(out) {}

  void run() {
    if (!common(true)) return;
    table(*k_.mirror_root, Gfn{}, ~Gfn{});
    contents();
    sept_table(t_->sept->root(), t_->sept->top_level(), 0, Gfn{}, ~Gfn{});
    if (tdx_.pamt().dynamic()) {
      // Every region with holders, and every region with a page of the TD.
      for (const auto& [region, n] : td_.pamt_holds()) pamt_regions_.insert(region);
      for (const auto& cache : td_.external_spt_caches())
        for (Hpa hpa : cache) pamt_regions_.insert(hpa >> 21);
      pamt_regions_.insert(t_->tdr >> 21);
      for (Hpa hpa : t_->tdcs) pamt_regions_.insert(hpa >> 21);
      for (const seam::TdVcpu& v : t_->vcpus) {
        pamt_regions_.insert(v.tdvpr >> 21);
        for (Hpa hpa : v.tdcx) pamt_regions_.insert(hpa >> 21);
      }
      for (u64 region : pamt_regions_) pamt_refcount(region);
    }
  }

  // The same rules over the gfn ranges [lo, hi) that changed, plus what
  // costs O(roots): the lines the hooks added since the last check, rules 3
  // and 19, and the content digests of the 2 MiB regions the ranges touch.
  void run_incremental(const std::vector<std::pair<Gfn, Gfn>>& ranges, std::vector<u64> pamt_regions) {
    whole_ = false;
    if (!common(false)) return;
    u64 last_region = ~u64{0};  // 2 MiB regions: gfn >> 9
    for (const auto& [lo, hi] : ranges) {
      table(*k_.mirror_root, lo, hi);
      sept_table(t_->sept->root(), t_->sept->top_level(), 0, lo, hi);
      for (u64 region = lo.raw() >> 9; region <= (hi - 1).raw() >> 9; ++region) {
        if (region == last_region) continue;  // ranges are sorted: a region shared with the previous one
        last_region = region;
        content_region(region);
      }
    }
    if (!tdx_.pamt().dynamic()) return;
    std::sort(pamt_regions.begin(), pamt_regions.end());
    pamt_regions.erase(std::unique(pamt_regions.begin(), pamt_regions.end()), pamt_regions.end());
    for (u64 region : pamt_regions) pamt_refcount(region);
  }

 private:
  void report(const std::string& rule, const std::string& what) { out_.push_back("rule " + rule + ": " + what); }

  // What both checks do: the lines the MMU and the hooks recorded (`all`, or
  // those not reported yet): 17, 20 (TRACK under the write mmu_lock), 21 (no
  // allocation under it) and kvm-bug; then the torn-down rules, or 3 and 19.
  // False when there is no mirror to walk.
  bool common(bool all) {
    const auto& bugs = k_.tdp.mirror_bugs();
    for (size_t i = all ? 0 : std::min(k_.checked_mirror_bugs, bugs.size()); i < bugs.size(); ++i)
      report("17", bugs[i]);
    k_.checked_mirror_bugs = bugs.size();
    for (const auto* lines : {&td_.hook_violations(), &td_.bug_reports()}) {
      size_t& checked = lines == &td_.bug_reports() ? k_.checked_bug_reports : k_.checked_hook_violations;
      out_.insert(out_.end(), lines->begin() + std::ptrdiff_t(all ? 0 : std::min(checked, lines->size())),
                  lines->end());
      checked = lines->size();
    }
    if (td_.torn_down()) {
      torn_down();
      return false;
    }
    mirror_roots();
    if (td_.finalized() && td_.nr_premapped())
      report("19", "the TD is finalized with nr_premapped " + std::to_string(td_.nr_premapped()));
    return t_ && t_->sept && k_.mirror_root;
  }

  void torn_down() {
    if (td_.mapped_private())
      report("16", std::to_string(td_.mapped_private()) + " private pages still mapped after teardown");
    if (t_ && t_->chldcnt)
      report("16", "the TD still owns " + std::to_string(t_->chldcnt) +
                       " pages after teardown (TDR.CHLDCNT): a private or Secure-EPT page was never removed");
    if (t_) report("pamt-zero", "the TD's TDR " + hex(td_.handle().tdr) + " was not reclaimed at teardown");
    // With mmu.tdx_pamt_cache=kmem-cache the free S-EPT pages in the
    // kmem_cache keep their regions' pairs: exactly those may stay.
    std::map<u64, u32> kept;
    for (Hpa hpa : td_.kmem_cache()) ++kept[hpa >> 21];
    // The TD's own holds on the host's refcount must be gone (other TDs
    // may still hold pairs), and every pair installed must be held by some TD.
    const std::map<u64, u32> held = td_.pamt_holds();
    if (held != kept)
      report("pamt-zero", "the TD is gone but still holds " + std::to_string(held.size()) +
                              " Dynamic PAMT page pairs of the host's " + std::to_string(tdx_.pamt().pairs()) + " (" +
                              std::to_string(tdx_.pamt().pair_bytes()) + " bytes)" +
                              (kept.empty() ? std::string()
                                            : "; the kmem_cache's " + std::to_string(td_.kmem_cache().size()) +
                                                  " free S-EPT pages account for " + std::to_string(kept.size())));
    else if (tdx_.pamt().pairs() != td_.host_pamt_refcount().regions())
      report("pamt-zero", "Dynamic PAMT holds " + std::to_string(tdx_.pamt().pairs()) +
                              " page pairs but the host's refcount knows " +
                              std::to_string(td_.host_pamt_refcount().regions()) + ": a pair leaked");
  }

  void mirror_roots() {
    int mirrors = 0;
    for (const MmuPage* root : k_.tdp.roots()) mirrors += root->role.is_mirror && !root->role.invalid;
    if (mirrors != 1 || !k_.mirror_root || k_.mirror_root->role.invalid || !k_.mirror_root->role.is_mirror)
      report("3", "the live TD has " + std::to_string(mirrors) +
                      " valid mirror roots; exactly one, never invalidated before teardown, is expected");
  }

  // Mirror -> Secure EPT, one mirror table at a time, the entries over [lo, hi).
  void table(const MmuPage& sp, Gfn lo, Gfn hi) {
    const int level = sp.role.level;
    const auto [first, last] = entries_over(sp.gfn, level, lo, hi);
    for (unsigned i = first; i < last; ++i) {
      const u64 spte = sp.spt[i];
      if (!is_shadow_present_pte(spte)) continue;
      const Gfn gfn = sp.gfn + i * pages_per_level(level);
      if (is_last_spte(spte, level))
        leaf(gfn, level, spte);
      else if (const MmuPage* child = k_.tdp.sp_of_table(spte_to_pfn(spte)))
        nonleaf(gfn, level, *child, lo, hi);
    }
  }

  void nonleaf(Gfn gfn, int level, const MmuPage& child, Gfn lo, Gfn hi) {
    const Gpa gpa = gfn_to_gpa(gfn);
    const Hpa ext = Hpa{child.external_spt} << kPageShift;
    const int tdx_level = pg_level_to_tdx_sept_level(level).value;
    const seam::SeptWalk w = t_->sept->walk(gpa, tdx_level);
    // Formatted only for a report: this runs for every entry a check visits.
    auto name = [&] { return "mirror table for gpa " + hex(gpa) + " level " + std::to_string(tdx_level); };
    // Merge policy C leaves a split range NL_BLOCKED until its next violation.
    const SplitPrivateRanges::Range* range = level == PG_LEVEL_2M ? k_.split_ranges.find(gfn) : nullptr;
    const bool merge_blocked = range && range->blocked;
    const SeptState expected = merge_blocked ? SeptState::NL_BLOCKED : SeptState::NL_MAPPED;
    if (!w.reached || w.state != expected || seam::septe::hpa_of(w.entry) != ext)
      report("15", name() + " has external_spt " + hex(ext) + " but the Secure-EPT entry is " +
                       (w.reached ? std::string(state_name(w.state)) + " -> " + hex(seam::septe::hpa_of(w.entry))
                                  : std::string("unreachable")));
    if (!k_.mem.is_allocated(ext >> kPageShift))
      report("18", "external_spt " + hex(ext) + " of the " + name() + " was freed to the host while the TD links it");
    const seam::PamtEntry e = tdx_.pamt().get(ext, PG_LEVEL_4K);
    if (whole_) pamt_regions_.insert(ext >> 21);
    if (e.pt != seam::PageType::PT_EPT || e.owner != td_.handle().tdr)
      report("18", "external_spt " + hex(ext) + " of the " + name() + " has PAMT type " + std::to_string(int(e.pt)) +
                       " owner " + hex(e.owner) + " while the TD lives");
    // A walk stops at an NL_BLOCKED entry: its leaves are read from its page.
    const Hpa outer = std::exchange(blocked_table_, merge_blocked ? ext : blocked_table_);
    table(child, lo, hi);
    blocked_table_ = outer;
  }

  void leaf(Gfn gfn, int level, u64 spte) {
    const Gpa gpa = gfn_to_gpa(gfn);
    const Hpa hpa = spte_to_pfn(spte) << kPageShift;
    auto name = [&] { return "private gpa " + hex(gpa) + " level " + std::to_string(level) + " hpa " + hex(hpa); };
    const seam::SeptWalk w = blocked_table_ ? child_of(blocked_table_, gpa) : t_->sept->walk_to_leaf(gpa);
    if (!w.reached)
      report("15", name() + " has no Secure-EPT leaf");
    else if (w.level != pg_level_to_tdx_sept_level(level).value || leaf_hpa(w.entry, w.level) != hpa)
      report("15", name() + " but the Secure-EPT leaf is at TDX level " + std::to_string(w.level) + " hpa " +
                       hex(leaf_hpa(w.entry, w.level)));
    else if (w.state != SeptState::MAPPED && w.state != SeptState::PENDING)
      report("15", name() + " but its Secure-EPT leaf is " + state_name(w.state));
    const seam::PamtEntry e = tdx_.pamt().get(hpa, level);
    if (e.pt != seam::PageType::PT_REG || e.owner != td_.handle().tdr)
      report("pamt", name() + " has PAMT type " + std::to_string(int(e.pt)) + " owner " + hex(e.owner) +
                         ", expected PT_REG of TDR " + hex(td_.handle().tdr));
    if (whole_) {
      digests_[gfn.raw() >> 9] += content(gfn, level, hpa);
      pamt_regions_.insert(hpa >> 21);
    }
  }

  // Dynamic PAMT: the refcount of a 2 MiB host region (PamtRefcount) is the
  // number of its 4K pages the module assigned to the TD (the PAMT_4K
  // entries that are not NDA: private pages, Secure-EPT and control pages)
  // plus the Secure-EPT pages waiting in the hooks' caches if they got their
  // reference when topped up (mmu.tdx_dpamt_series=rfc-v5; v6 takes it at
  // SEPT.ADD), and (kmem-cache) the free pages of the
  // kmem_cache, which keep the reference their constructor took.
  void pamt_refcount(u64 region) {
    const Hpa base = Hpa{region} << 21;
    u32 cached = 0;
    if (td_.cached_sept_pages_hold_pamt())
      for (const auto& cache : td_.external_spt_caches())
        for (Hpa hpa : cache) cached += (hpa >> 21) == region;
    for (Hpa hpa : td_.kmem_cache()) cached += (hpa >> 21) == region;
    // The refcount is the host's: other TDs' pages may share the region, so
    // only this TD's holds and pages are compared.
    u32 used = 0;
    for (u64 i = 0; i < kPtesPerTable; ++i) {
      const seam::PamtEntry e = tdx_.pamt().get(base + i * kPageSize, PG_LEVEL_4K);
      used += e.pt != seam::PageType::PT_NDA && e.owner == td_.handle().tdr;
    }
    const u32 have = td_.pamt_holders(base);
    if (have != used + cached)
      report("pamt-refcount", "the 2M host region at " + hex(base) + " has Dynamic PAMT refcount " +
                                  std::to_string(have) + " but " + std::to_string(used) +
                                  " of its 4K pages are the TD's and " + std::to_string(cached) +
                                  " wait in the Secure-EPT page caches or the kmem_cache");
  }

  u64 content(Gfn gfn, int level, Hpa hpa) const {
    u64 d = 0;
    for (u64 j = 0; j < pages_per_level(level); ++j) {
      const Pfn pfn = (hpa >> kPageShift) + j;
      d += TdxVm::content_term(gfn + j, k_.mem.is_allocated(pfn) ? k_.mem.tag(pfn) : 0);
    }
    return d;
  }

  // The digest of the mirror leaves in [lo, hi) under table sp.
  u64 digest(const MmuPage& sp, Gfn lo, Gfn hi) const {
    const int level = sp.role.level;
    const auto [first, last] = entries_over(sp.gfn, level, lo, hi);
    u64 d = 0;
    for (unsigned i = first; i < last; ++i) {
      const u64 spte = sp.spt[i];
      if (!is_shadow_present_pte(spte)) continue;
      const Gfn gfn = sp.gfn + i * pages_per_level(level);
      if (is_last_spte(spte, level))
        d += content(gfn, level, spte_to_pfn(spte) << kPageShift);
      else if (const MmuPage* child = k_.tdp.sp_of_table(spte_to_pfn(spte)))
        d += digest(*child, lo, hi);
    }
    return d;
  }

  // The content rule for one 2 MiB region, as contents() checks every region.
  void content_region(u64 region) {
    const auto& expected = td_.content_digests();
    const auto it = expected.find(region);
    if (it == expected.end()) return;
    const u64 actual = digest(*k_.mirror_root, Gfn{region << 9}, Gfn{(region + 1) << 9});
    if (actual != it->second) content_mismatch(region, actual, it->second);
  }

  void content_mismatch(u64 region, u64 actual, u64 expected) {
    report("content", "the private pages of the 2M region at gpa " + hex(region << 21) +
                          " changed content while mapped (digest " + hex(actual) + ", expected " + hex(expected) + ")");
  }

  void contents() {
    for (const auto& [region, expected] : td_.content_digests()) {
      auto it = digests_.find(region);
      const u64 actual = it == digests_.end() ? 0 : it->second;
      if (actual != expected) content_mismatch(region, actual, expected);
    }
  }

  // Secure EPT -> mirror: every leaf the module still maps is a mirror leaf,
  // so no page is dropped from the VM's view while the TD can reach it.
  void sept_table(Hpa table, int level, Gpa base, Gfn lo, Gfn hi) {
    const auto [first, last] = entries_over(gpa_to_gfn(base), tdx_sept_level_to_pg_level(TdxLevel{level}), lo, hi);
    for (unsigned i = first; i < last; ++i) {
      const u64 e = k_.mem.read64(table + 8 * i);
      const SeptState s = seam::septe::state_or_free(e);
      if (s == SeptState::FREE || s == SeptState::REMOVED) continue;
      const Gpa gpa = base + (Gpa(i) << (kPageShift + 9 * unsigned(level)));
      if (seam::septe::is_leaf_state(s)) {
        u64 spte = 0;
        int mlevel = 0;
        const_cast<TdpMmu&>(k_.tdp).fast_pf_get_last_sptep(*k_.mirror_root, gpa_to_gfn(gpa), &spte, &mlevel);
        if (!is_present_leaf(spte, mlevel) || (spte_to_pfn(spte) << kPageShift) != leaf_hpa(e, level))
          report("16", "Secure-EPT leaf gpa " + hex(gpa) + " TDX level " + std::to_string(level) + " hpa " +
                           hex(leaf_hpa(e, level)) + " (" + state_name(s) + ") is not a mirror leaf of the VM");
      } else if (level > 0) {
        sept_table(seam::septe::hpa_of(e), level - 1, gpa, lo, hi);
      }
    }
  }

  const Kvm::Impl& k_;
  const TdxVm& td_;
  const seam::TdxModule& tdx_;
  const seam::Td* t_;
  std::vector<std::string>& out_;
  std::map<u64, u64> digests_;  // recomputed content digests by 2 MiB region (gfn >> 9)
  Hpa blocked_table_ = 0;       // the Secure-EPT page under an NL_BLOCKED entry being checked
  bool whole_ = true;           // a full sweep (digests_ sums every region)
  std::set<u64> pamt_regions_;  // full sweep: 2 MiB host regions of the TD's pages

  // The 4K entry for gpa in Secure-EPT page `table`, as a walk would report it.
  seam::SeptWalk child_of(Hpa table, Gpa gpa) const {
    seam::SeptWalk w;
    w.reached = true;
    w.entry_hpa = table + 8 * seam::SeptTree::index(gpa, 0);
    w.entry = t_->sept->read(w.entry_hpa);
    w.state = seam::septe::state_or_free(w.entry);
    return w;
  }
};

}  // namespace

void Kvm::Impl::check_tdx_invariants(std::vector<std::string>& out) const { TdChecker(*this, out).run(); }

void Kvm::Impl::check_tdx_invariants_incremental(std::vector<std::string>& out,
                                                 const std::vector<std::pair<Gfn, Gfn>>& ranges,
                                                 const std::vector<u64>& pamt_regions) const {
  TdChecker(*this, out).run_incremental(ranges, pamt_regions);
}

}  // namespace septsim::mmu
