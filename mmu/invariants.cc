// docs/invariants.md rules 1, 2, 6, 7, 8, 9, 12, 13 and 22, checked by walking
// every root's tables as they sit in PhysMem: all of them (a full sweep), or
// only the entries over the gfn ranges that changed (CheckLog), where the
// totals of rules 1 and 12 and double links are not counted.
#include <algorithm>
#include <unordered_set>

#include "mmu/invariant_rules.h"
#include "mmu/kvm_impl.h"

namespace septsim::mmu {

std::pair<unsigned, unsigned> entries_over(Gfn base, int level, Gfn lo, Gfn hi) {
  const u64 per = pages_per_level(level);
  const Gfn end = base + per * kPtesPerTable;
  if (hi <= base || lo >= end) return {0, 0};
  const unsigned first = lo > base ? unsigned((lo - base) / per) : 0;
  const unsigned last = hi < end ? unsigned((hi - base + per - 1) / per) : kPtesPerTable;
  return {first, last};
}

namespace {

class Checker {
 public:
  // `whole`: every table is visited once, so the totals and double links can
  // be counted; otherwise only the entries over the ranges given to root().
  Checker(const Kvm::Impl& k, std::vector<std::string>& out, bool whole = true) : k_(k), out_(out), whole_(whole) {}

  // The root's own rules, then every entry under it.
  void root(const MmuPage& root) {
    root_only(root);
    range(root, Gfn{}, ~Gfn{});
  }
  // The entries of the root's tables over [lo, hi).
  void range(const MmuPage& root, Gfn lo, Gfn hi) { table(root, root.role, 0, lo, hi); }

  void root_only(const MmuPage& root) {
    int holders = 0;
    for (const auto& v : k_.vcpus) holders += v.root == &root;
    holders += k_.mirror_root == &root;
    int expected = holders + (root.role.invalid ? root.tdp_mmu_scheduled_root_to_zap : 1);
    // Names are formatted only for a report (this runs for every table an incremental check visits).
    auto name = [&] { return "root " + hex(root.spt_pfn << kPageShift); };
    if (root.tdp_mmu_root_count != expected)
      report(2, name() + (root.role.invalid ? " (invalid)" : " (valid)") + " has tdp_mmu_root_count " +
                    std::to_string(root.tdp_mmu_root_count) + ", expected " + std::to_string(expected) + " (" +
                    std::to_string(holders) + " vCPU references" + (root.role.invalid ? "" : " + the TDP MMU's") + ")");
    if (k_.tdp.sp_of_table(root.spt_pfn) != &root) report(1, name() + ": its table page's owner is not its MmuPage");
    in_valid_root_ = !root.role.invalid;
    if (root.role.level != u32(k_.root_level) || root.ptep || root.gfn)
      report(1, name() + " has level " + std::to_string(root.role.level) + ", gfn " + hex(root.gfn) + ", ptep " +
                    hex(root.ptep) + "; expected level " + std::to_string(k_.root_level) + ", gfn 0, ptep 0");
  }

  void totals() {
    if (tables_ != k_.tdp.nr_sps())
      report(1, std::to_string(k_.tdp.nr_sps()) + " MmuPages exist but " + std::to_string(tables_) +
                    " table pages are reachable from tdp_mmu_roots");
    static const char* names[] = {"", "pages_4k", "pages_2m", "pages_1g"};
    for (int level = PG_LEVEL_4K; level <= PG_LEVEL_1G; ++level)
      if (leaves_[level] != *k_.stats.pages[level])
        report(12, std::string(names[level]) + " is " + std::to_string(*k_.stats.pages[level]) + " but " +
                       std::to_string(leaves_[level]) + " present leaves exist at that level");
    if (k_.stats.mmu_pages != k_.tdp.nr_sps())
      report(12, "mmu_pages is " + std::to_string(k_.stats.mmu_pages) + " but " + std::to_string(k_.tdp.nr_sps()) +
                     " MmuPages exist");
  }

 private:
  void report(int rule, const std::string& what) { out_.push_back("rule " + std::to_string(rule) + ": " + what); }

  static std::string where(Gfn gfn, int level, u64 spte) {
    return "gfn " + hex(gfn) + " level " + std::to_string(level) + " spte " + hex(spte);
  }

  void table(const MmuPage& sp, MmuPageRole role, Hpa ptep, Gfn lo, Gfn hi) {
    auto name = [&] { return "table " + hex(sp.spt_pfn << kPageShift); };
    if (whole_ && !seen_.insert(sp.spt_pfn).second) {
      report(1, name() + " is linked more than once");
      return;
    }
    tables_ += whole_;
    if (sp.role.word() != role.word())
      report(1, name() + " has role " + hex(sp.role.word()) + ", expected " + hex(role.word()) +
                    " (the parent's with level - 1)");
    int level = int(role.level);
    if (sp.ptep != ptep) report(1, name() + " has ptep " + hex(sp.ptep) + " but is linked from " + hex(ptep));
    if (sp.gfn & (pages_per_level(level + 1) - 1))
      report(1, name() + " has gfn " + hex(sp.gfn) + ", not aligned to its parent entry");
    const auto [first, last] = entries_over(sp.gfn, level, lo, hi);
    for (unsigned i = first; i < last; ++i) {
      u64 spte = sp.spt[i];
      Gfn gfn = sp.gfn + i * pages_per_level(level);
      if (is_frozen_spte(spte)) {
        report(9, where(gfn, level, spte) + ": FROZEN outside a hook call");
        continue;
      }
      if (!is_shadow_present_pte(spte)) {
        if (spte != SHADOW_NONPRESENT_VALUE)
          report(6, where(gfn, level, spte) + ": not MMU-present but not SHADOW_NONPRESENT_VALUE" +
                        (ept::is_present(spte) ? " (the CPU sees it present)" : ""));
        continue;
      }
      if (!ept::is_present(spte) || ept::is_misconfigured(spte, level, k_.maxphyaddr)) {
        report(6, where(gfn, level, spte) + ": MMU-present but " +
                      (ept::is_present(spte) ? "misconfigured for the CPU" : "not present to the CPU"));
        continue;
      }
      if (is_last_spte(spte, level)) {
        leaf(spte, gfn, level, role.is_mirror);
        continue;
      }
      const MmuPage* child = k_.tdp.sp_of_table(spte_to_pfn(spte));
      if (!child) {
        report(1, where(gfn, level, spte) + ": non-leaf points at a page with no MmuPage");
        continue;
      }
      MmuPageRole child_role = role;
      child_role.level = u32(level - 1);
      child_role.invalid = 0;  // only roots are invalidated
      Hpa child_ptep = (sp.spt_pfn << kPageShift) + i * 8;
      if (child->gfn != gfn)
        report(1, where(gfn, level, spte) + ": child table has gfn " + hex(child->gfn));
      table(*child, child_role, child_ptep, lo, hi);
    }
  }

  void leaf(u64 spte, Gfn root_gfn, int level, bool mirror) {
    auto at = [&] { return where(root_gfn, level, spte); };
    // A TD's direct root maps shared gfns with the shared bit (gfn_direct_bits).
    const Gfn gfn = root_gfn & ~k_.gfn_direct_bits();
    if (k_.td && k_.attrs.is_private(gfn) != mirror)
      report(22, at() + (mirror ? ": mirror leaf for a shared gfn (a conversion to shared missed the mirror root)"
                              : ": shared leaf for a private gfn (a conversion to private missed the direct root)"));
    if (level > PG_LEVEL_1G) {
      report(7, at() + ": leaf above 1G");
      return;
    }
    ++leaves_[level];
    if (!spte_writable_invariants_hold(spte)) report(7, at() + ": breaks W => MMU-writable => host-writable");
    if (level == PG_LEVEL_4K && is_large_pte(spte)) report(7, at() + ": 4K leaf with the large bit");
    const Memslot* slot = k_.slots.find(gfn);
    if (!slot || gfn + pages_per_level(level) > slot->end_gfn()) {
      report(8, at() + ": leaf maps gfns outside any memslot (a zap was missed)");
      return;
    }
    if (slot->readonly() && is_host_writable_spte(spte)) report(7, at() + ": host-writable leaf in read-only memslot");
    if (is_writable_pte(spte) && level > PG_LEVEL_4K && slot->dirty_track_enabled())
      report(7, at() + ": writable huge leaf in dirty-logged memslot " + std::to_string(slot->id));
    // Write-protect dirty logging: a vCPU writes through a valid root's
    // writable leaf without an exit, so its gfn must already be dirty.
    if (in_valid_root_ && !mirror && !k_.use_pml())
      if (std::string v = check_dirty_log_leaf(*slot, gfn, level, spte); !v.empty()) out_.push_back(std::move(v));
    Pfn host_pfn = slot->host.lookup(slot->gfn_to_hva(gfn));
    if (spte_to_pfn(spte) != host_pfn)
      report(8, at() + ": maps pfn " + hex(spte_to_pfn(spte)) + " but the host backs the gfn with pfn " + hex(host_pfn));
    if (level == PG_LEVEL_4K) return;
    if (slot->disallow_lpage(gfn, level))
      report(13, at() + ": huge leaf where disallow_lpage is " + std::to_string(slot->disallow_lpage(gfn, level)));
    int host_level = slot->host.mapping_level(slot->gfn_to_hva(gfn));
    if (host_level < level) report(13, at() + ": huge leaf over a host mapping of level " + std::to_string(host_level));
    if (level > k_.max_huge_level) report(13, at() + ": huge leaf above mmu.max_huge_level");
    if (slot->dirty_track_enabled() && k_.eager_page_split)
      report(13, at() + ": huge leaf in dirty-logged memslot " + std::to_string(slot->id) + " despite eager split");
  }

  const Kvm::Impl& k_;
  std::vector<std::string>& out_;
  const bool whole_;
  u64 leaves_[4] = {};
  u64 tables_ = 0;
  bool in_valid_root_ = true;
  std::unordered_set<Pfn> seen_;  // membership only; never iterated
};

}  // namespace

void Kvm::Impl::check_internal(std::vector<std::string>& out, bool all) const {
  const auto& errors = tdp.internal_errors();
  for (size_t i = all ? 0 : std::min(checked_internal_errors, errors.size()); i < errors.size(); ++i)
    out.push_back("rule internal: " + errors[i]);
  checked_internal_errors = errors.size();
}

void Kvm::Impl::check_vcpu_roots(std::vector<std::string>& out) const {
  for (const Vcpu& v : vcpus)
    if (v.root && std::find(tdp.roots().begin(), tdp.roots().end(), v.root) == tdp.roots().end())
      out.push_back("rule 2: vCPU " + std::to_string(v.ctl->id()) + " holds a root that is not in tdp_mmu_roots");
}

std::vector<std::string> Kvm::Impl::check_invariants() const {
  std::vector<std::string> out;
  Checker checker(*this, out);
  for (const MmuPage* root : tdp.roots()) checker.root(*root);
  check_vcpu_roots(out);
  check_internal(out, true);
  checker.totals();
  out.insert(out.end(), install_violations.begin(), install_violations.end());
  if (td) check_tdx_invariants(out);
  return out;
}

std::vector<std::pair<Gfn, Gfn>> Kvm::Impl::checked_ranges(const CheckLog& log) const {
  // Both gfn spaces of a TD (private, and shared with the shared bit), sorted and merged.
  const Gfn bits = gfn_direct_bits();
  std::vector<std::pair<Gfn, Gfn>> r;
  r.reserve(log.ranges.size() * (bits ? 2 : 1));
  for (const auto& [gfn, pages] : log.ranges) {
    const Gfn g = gfn & ~bits;
    r.emplace_back(g, g + pages);
    if (bits) r.emplace_back(g | bits, (g | bits) + pages);
  }
  if (!std::is_sorted(r.begin(), r.end())) std::sort(r.begin(), r.end());
  std::vector<std::pair<Gfn, Gfn>> merged;
  for (const auto& x : r) {
    if (!merged.empty() && x.first <= merged.back().second)
      merged.back().second = std::max(merged.back().second, x.second);
    else
      merged.push_back(x);
  }
  return merged;
}

std::vector<std::string> Kvm::Impl::check_invariants_incremental(const CheckLog& log) const {
  std::vector<std::string> out;
  const auto ranges = checked_ranges(log);
  Checker checker(*this, out, false);
  for (const MmuPage* root : tdp.roots()) {
    checker.root_only(*root);
    for (const auto& [lo, hi] : ranges) checker.range(*root, lo, hi);
  }
  check_vcpu_roots(out);
  check_internal(out, false);
  if (td) check_tdx_invariants_incremental(out, ranges, log.pamt_regions);
  return out;
}

std::vector<std::string> Kvm::check_invariants_incremental(const CheckLog& log) const {
  return impl_->check_invariants_incremental(log);
}

}  // namespace septsim::mmu
