// Which cells of the SEPT state table (the module's sept_state_tables) a run exercised: for
// every leaf of the table and every state class (an entry state at 4K or 2M,
// or "walk failed" when no entry exists at the requested level), whether a
// call in that class was accepted (TDX_SUCCESS) and whether one was refused
// (any other status, warnings included); and which operand-id paths it
// reached: a status, with its operand id, that a leaf returns on one path of
// the module source. The scenario library in tests/seam/traces must hit every
// required cell and reach every required path.
#pragma once
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "seam/seamcall_observer.h"

namespace septsim::seam {

// A state class column: a SEPT state at TDX level 0 (4K) or 1 (2M), or the
// walk stopping above the requested level.
struct StateClass {
  bool walk_failed = false;
  int level = 0;                                  // 0 or 1; unused when walk_failed
  septe::SeptState state = septe::SeptState::FREE;  // unused when walk_failed
  auto operator<=>(const StateClass&) const = default;
};

struct CoverageCell {
  u16 leaf = 0;
  bool tdcall = false;
  StateClass cls;
  bool accepted = false;
  auto operator<=>(const CoverageCell&) const = default;
};

// One operand-id path of the module source: `leaf` returns exactly `status`
// (class, details and operand id) somewhere, at `source` (an intel/tdx-module
// TDX_1.5.01 file and function).
struct StatusPath {
  u16 leaf = 0;
  bool tdcall = false;
  Status status = TDX_SUCCESS;
  const char* source = "";
};

class SeptCoverage : public SeamcallObserver {
 public:
  // Label ("FILE:LINE") recorded with the cells that later calls hit first.
  void set_where(std::string where) { where_ = std::move(where); }
  void on_call(const SeamcallOutcome& o) override;

  // Every cell the library must hit, in table order.
  static std::vector<CoverageCell> required();
  // Every operand-id path the library must reach, SEAMCALL leaves first,
  // then the TDCALL ones.
  static const std::vector<StatusPath>& required_statuses();
  // Required cells no call hit and required paths no call reached, as names
  // ("TDH.MEM.PAGE.AUG FREE@2M refused", "TDH.MEM.TRACK never returned
  // TDX_OPERAND_BUSY|TD_EPOCH(169) (tdh_mem_track.c)").
  std::vector<std::string> missing() const;
  // Where a cell was first hit, or empty.
  std::string where(const CoverageCell& c) const;
  // The table as Markdown: one row per leaf and class, the first
  // accepting and refusing call's label in each cell.
  std::string markdown() const;

  static std::string name(const CoverageCell& c);
  // Whether any call of `leaf` returned exactly `status`, walked or not.
  bool returned(bool tdcall, u16 leaf, Status status) const { return statuses_.count({tdcall, leaf, status}) != 0; }
  // Every status (with its operand id) each leaf returned, and the first
  // call that returned it, as Markdown, SEAMCALL leaves by number first.
  std::string status_markdown() const;
  // The required operand-id paths as Markdown: leaf, status, module source,
  // the first call that returned it (or "not reached").
  std::string required_status_markdown() const;

 private:
  std::map<CoverageCell, std::string> hits_;
  std::map<std::tuple<bool, u16, Status>, std::string> statuses_;
  std::string where_;
};

}  // namespace septsim::seam
