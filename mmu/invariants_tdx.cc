// The TD rules of the invariant checker: kvm-mmu.md section 10 rules 15
// (the VM's private mappings and the Secure EPT agree, both ways), 16 (a
// private page is never dropped while still mapped) and 18 (external tables
// are the TD's until teardown reclaims them), plus the model's own
// content rule (a mapped private page keeps its content tag unless the guest
// wrote it) and PAMT accounting (a private page is PT_REG of its TD; with no
// TD left, no Dynamic PAMT memory remains).
#include <functional>

#include "mmu/kvm_impl.h"
#include "seam/sept_entry.h"

namespace septsim::mmu {

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

}  // namespace

void check_tdx_invariants(const TdxVm& td, const model::PhysMem& mem, std::vector<std::string>& out) {
  auto report = [&](const std::string& rule, const std::string& what) { out.push_back("rule " + rule + ": " + what); };
  const seam::TdxModule& tdx = td.module();
  const seam::Td* t = td.td();
  out.insert(out.end(), td.hook_violations().begin(), td.hook_violations().end());

  if (td.torn_down()) {
    if (!td.private_pages().empty())
      report("16", std::to_string(td.private_pages().size()) + " private pages still recorded after teardown");
    if (t) report("pamt-zero", "the TD's TDR " + hex(td.handle().tdr) + " was not reclaimed at teardown");
    if (tdx.pamt().pair_bytes())
      report("pamt-zero", "no TD is left but Dynamic PAMT holds " + std::to_string(tdx.pamt().pair_bytes()) +
                              " bytes in " + std::to_string(tdx.pamt().pairs()) + " page pairs");
    return;
  }
  if (!t || !t->sept) return;

  // VM -> Secure EPT: each recorded private page is a leaf at the same GPA,
  // level and HPA, and its PAMT entry says the TD owns it.
  for (const auto& [gfn, p] : td.private_pages()) {
    const Gpa gpa = gfn << kPageShift;
    const std::string name = "private gpa " + hex(gpa) + " level " + std::to_string(p.level) + " hpa " + hex(p.hpa);
    const seam::SeptWalk w = t->sept->walk_to_leaf(gpa);
    if (!w.reached) {
      report("15", name + " has no Secure-EPT leaf");
    } else if (w.level != p.level - 1 || seam::septe::hpa_of(w.entry) != p.hpa) {
      report("15", name + " but the Secure-EPT leaf is at TDX level " + std::to_string(w.level) + " hpa " +
                       hex(seam::septe::hpa_of(w.entry)));
    } else if (w.state != SeptState::MAPPED && w.state != SeptState::PENDING) {
      report("15", name + " but its Secure-EPT leaf is " + state_name(w.state));
    }
    const seam::PamtEntry e = tdx.pamt().get(p.hpa, p.level);
    if (e.pt != seam::PageType::PT_REG || e.owner != td.handle().tdr)
      report("pamt", name + " has PAMT type " + std::to_string(int(e.pt)) + " owner " + hex(e.owner) +
                         ", expected PT_REG of TDR " + hex(td.handle().tdr));
    const Pfn pfn = p.hpa >> kPageShift;
    if (mem.is_allocated(pfn) && mem.tag(pfn) != p.tag)
      report("content", name + " content tag changed from " + hex(p.tag) + " to " + hex(mem.tag(pfn)) +
                            " while mapped");
  }

  // Rule 18: an external table stays the TD's (PT_EPT) until teardown reclaims it.
  for (const auto& [key, page] : td.sept_tables()) {
    const seam::PamtEntry e = tdx.pamt().get(page, PG_LEVEL_4K);
    if (e.pt != seam::PageType::PT_EPT || e.owner != td.handle().tdr)
      report("18", "Secure-EPT table page " + hex(page) + " has PAMT type " + std::to_string(int(e.pt)) +
                       " owner " + hex(e.owner) + " while the TD lives");
  }

  // Secure EPT -> VM: every leaf the module still maps is recorded, so no
  // page is dropped from the VM's view while the TD can reach it.
  std::function<void(Hpa, int, Gpa)> walk = [&](Hpa table, int level, Gpa base) {
    for (unsigned i = 0; i < 512; ++i) {
      const u64 e = mem.read64(table + 8 * i);
      const SeptState s = seam::septe::state_or_free(e);
      if (s == SeptState::FREE || s == SeptState::REMOVED) continue;
      const Gpa gpa = base + (Gpa(i) << (kPageShift + 9 * unsigned(level)));
      if (seam::septe::is_leaf_state(s)) {
        auto it = td.private_pages().find(gpa >> kPageShift);
        if (it == td.private_pages().end() || it->second.hpa != seam::septe::hpa_of(e))
          report("16", "Secure-EPT leaf gpa " + hex(gpa) + " TDX level " + std::to_string(level) + " hpa " +
                           hex(seam::septe::hpa_of(e)) + " (" + state_name(s) + ") is not a private page of the VM");
      } else if (level > 0) {
        walk(seam::septe::hpa_of(e), level - 1, gpa);
      }
    }
  };
  walk(t->sept->root(), t->sept->top_level(), 0);
}

}  // namespace septsim::mmu
