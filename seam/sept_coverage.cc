#include "seam/sept_coverage.h"

#include <algorithm>

#include "seam/sept_state_table.h"
#include "seam/tdx_leaf.h"

namespace septsim::seam {

using septe::SeptState;

namespace {

// The leaves of the table the model implements (MEM.RD/WR are debug-TD
// leaves it does not model) and the levels their state classes are taken at.
struct LeafSpec {
  u16 leaf;
  bool tdcall;
  bool at_4k, at_2m;
};

constexpr LeafSpec kLeaves[] = {
    {u16(Leaf::TDH_MEM_PAGE_ADD), false, true, false},
    {u16(Leaf::TDH_MEM_SEPT_ADD), false, false, true},
    {u16(Leaf::TDH_MEM_PAGE_RELOCATE), false, true, false},
    {u16(Leaf::TDH_MEM_PAGE_AUG), false, true, true},
    {u16(Leaf::TDH_MEM_RANGE_BLOCK), false, true, true},
    {u16(Leaf::TDH_MEM_PAGE_DEMOTE), false, false, true},
    {u16(Leaf::TDH_MR_EXTEND), false, true, true},
    {u16(Leaf::TDH_MEM_PAGE_PROMOTE), false, false, true},
    {u16(Leaf::TDH_MEM_SEPT_RD), false, true, true},
    {u16(Leaf::TDH_MEM_PAGE_REMOVE), false, true, true},
    {u16(Leaf::TDH_MEM_SEPT_REMOVE), false, false, true},
    {u16(Leaf::TDH_MEM_RANGE_UNBLOCK), false, true, true},
    {u16(TdcallLeaf::TDG_MEM_PAGE_ACCEPT), true, true, true},
};

// The states reachable without the migration leaves (intel/tdx-module sept_manager.c).
constexpr SeptState kStates[] = {SeptState::FREE,    SeptState::NL_MAPPED, SeptState::NL_BLOCKED,
                                 SeptState::MAPPED,  SeptState::BLOCKED,   SeptState::PENDING,
                                 SeptState::PENDING_BLOCKED};

const char* kStateNames[septe::kNumStates] = {"FREE",     "REMOVED",  "NL_MAPPED", "NL_BLOCKED", "MAPPED",   "BLOCKED",
                                              "BLOCKEDW", "EXP_BLKW", "EXP_D",     "EXP_D_BLKW", "PENDING",  "PENDING_BLOCKED",
                                              "PEND_BLKW", "PEND_EXP_BLKW", "PEND_EXP_D", "PEND_EXP_D_BLKW"};

bool allowed(const LeafSpec& l, SeptState s) {
  return l.tdcall ? tdcall_sept_state_allowed(TdcallLeaf(l.leaf), s) : sept_state_allowed(Leaf(l.leaf), s);
}

// MR.EXTEND walks to whichever leaf maps the GPA: its classes are the leaf
// states; a FREE or blocked table on the way is its "walk failed".
bool has_class(const LeafSpec& l, SeptState s, int level) {
  if (level == 0 && !septe::is_leaf_state(s) && s != SeptState::FREE) return false;
  if (l.leaf == u16(Leaf::TDH_MR_EXTEND) && !l.tdcall) return septe::is_leaf_state(s);
  return true;
}

// Allowed cells with no refusal after the walk. TDH.MEM.RANGE.BLOCK takes the
// SEPT tree exclusively and checks nothing but the state, so only a guest
// holding the entry lock can refuse it, and no guest leaf holds the lock of a
// non-leaf entry, nor of a PENDING one and leaves it PENDING (an ACCEPT
// stopping above its level decides before locking, tdg_mem_page_accept.c
// check_tdaccept_failure). TDH.MR.EXTEND holds the TDR exclusively and checks
// nothing after finding a MAPPED leaf.
bool refusal_possible(const LeafSpec& l, SeptState s) {
  if (l.tdcall) return true;
  if (l.leaf == u16(Leaf::TDH_MR_EXTEND)) return s != SeptState::MAPPED;
  if (l.leaf != u16(Leaf::TDH_MEM_RANGE_BLOCK)) return true;
  return !(s == SeptState::NL_MAPPED || s == SeptState::PENDING);
}

std::string class_name(const StateClass& c) {
  if (c.walk_failed) return "walk failed";
  return std::string(kStateNames[size_t(c.state)]) + (c.level == 0 ? "@4K" : "@2M");
}

std::string leaf_label(u16 leaf, bool tdcall) {
  const char* n = tdcall ? tdcall_leaf_name(leaf) : leaf_name(leaf);
  return n ? n : std::to_string(leaf);
}

}  // namespace

void SeptCoverage::on_call(const SeamcallOutcome& o) {
  statuses_.emplace(std::tuple{o.tdcall, o.leaf, o.status}, where_);
  if (!o.walked) return;
  CoverageCell c;
  c.leaf = o.leaf;
  c.tdcall = o.tdcall;
  c.accepted = o.status == TDX_SUCCESS;
  if (!o.reached) {
    c.cls.walk_failed = true;
  } else {
    if (o.level > 1) return;
    c.cls.level = o.level;
    c.cls.state = o.state;
  }
  hits_.emplace(c, where_);
}

std::vector<CoverageCell> SeptCoverage::required() {
  std::vector<CoverageCell> r;
  for (const LeafSpec& l : kLeaves) {
    for (int level = 0; level <= 1; ++level) {
      if (!(level == 0 ? l.at_4k : l.at_2m)) continue;
      for (SeptState s : kStates) {
        if (!has_class(l, s, level)) continue;
        const StateClass cls{false, level, s};
        if (allowed(l, s)) r.push_back(CoverageCell{l.leaf, l.tdcall, cls, true});
        if (refusal_possible(l, s)) r.push_back(CoverageCell{l.leaf, l.tdcall, cls, false});
      }
    }
    r.push_back(CoverageCell{l.leaf, l.tdcall, StateClass{true, 0, SeptState::FREE}, false});
  }
  return r;
}

std::string SeptCoverage::name(const CoverageCell& c) {
  return leaf_label(c.leaf, c.tdcall) + " " + class_name(c.cls) + (c.accepted ? " accepted" : " refused");
}

std::vector<std::string> SeptCoverage::missing() const {
  std::vector<std::string> m;
  for (const CoverageCell& c : required())
    if (!hits_.count(c)) m.push_back(name(c));
  return m;
}

std::string SeptCoverage::where(const CoverageCell& c) const {
  auto it = hits_.find(c);
  return it == hits_.end() ? std::string() : it->second;
}

std::string SeptCoverage::status_markdown() const {
  std::string out = "| Leaf | Status | First returned by |\n|---|---|---|\n";
  for (const auto& [key, at] : statuses_) {
    const auto& [tdcall, leaf, status] = key;
    std::string name = status_string(status);
    if (const size_t bar = name.find('|'); bar != std::string::npos) name.replace(bar, 1, "\\|");  // Markdown cell
    out += "| " + leaf_label(leaf, tdcall) + " | " + name + " | " + at + " |\n";
  }
  return out;
}

std::string SeptCoverage::markdown() const {
  std::string out = "| Leaf | State class | Accepted by | Refused by |\n|---|---|---|---|\n";
  const std::vector<CoverageCell> req = required();
  for (size_t i = 0; i < req.size(); ++i) {
    const CoverageCell& c = req[i];
    if (i > 0 && req[i - 1].leaf == c.leaf && req[i - 1].tdcall == c.tdcall && req[i - 1].cls == c.cls) continue;
    CoverageCell acc = c, ref = c;
    acc.accepted = true;
    ref.accepted = false;
    const bool need_acc = std::find(req.begin(), req.end(), acc) != req.end();
    const bool need_ref = std::find(req.begin(), req.end(), ref) != req.end();
    out += "| " + leaf_label(c.leaf, c.tdcall) + " | " + class_name(c.cls) + " | " +
           (need_acc ? where(acc) : std::string(c.cls.walk_failed ? "-" : "(not allowed)")) + " | " +
           (need_ref ? where(ref) : std::string("(no refusal after the walk)")) + " |\n";
  }
  return out;
}

}  // namespace septsim::seam
