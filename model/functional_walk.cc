#include "model/functional_walk.h"

#include <algorithm>

#include "model/x86_pte.h"

namespace septsim::model {

std::optional<FunctionalResult> ept_translate(const PhysMem& mem, const ept::Eptp& eptp, Gpa gpa) {
  if (eptp.root == 0) return std::nullopt;
  Hpa table = eptp.root;
  u8 perms = kPermRead | kPermWrite | kPermExec;
  for (int level = eptp.levels; level >= PG_LEVEL_4K; --level) {
    u64 e = mem.read64(table + 8 * pt_index(gpa, level));
    if (!ept::is_present(e)) return std::nullopt;
    perms &= u8(e & ept::kRwx);
    if (ept::is_leaf(e, level)) {
      FunctionalResult r;
      r.gpa = gpa;
      r.hpa = ept::leaf_frame(e, level) | (gpa & (level_size(level) - 1));
      r.level = level;
      r.perms = perms;
      r.ept_dirty = (e & ept::kDirty) != 0;
      return r;
    }
    table = ept::entry_addr(e);
  }
  return std::nullopt;
}

namespace {

// The guest walk, each GPA translated by `ept`.
template <class Ept>
std::optional<FunctionalResult> guest_walk(const PhysMem& mem, const Ept& ept, Gpa cr3, int guest_levels, Gva gva) {
  Gpa table = cr3;
  u8 perms = kPermRead | kPermWrite | kPermExec;
  for (int level = guest_levels; level >= PG_LEVEL_4K; --level) {
    auto slot = ept(table + 8 * pt_index(gva, level));
    if (!slot) return std::nullopt;
    u64 e = mem.read64(slot->hpa);
    if (!(e & x86::kPresent)) return std::nullopt;
    if (!(e & x86::kWritable)) perms &= u8(~kPermWrite);
    if (e & x86::kNoExec) perms &= u8(~kPermExec);
    if (x86::is_leaf(e, level)) {
      auto data = ept(x86::leaf_frame(e, level) | (gva & (level_size(level) - 1)));
      if (!data) return std::nullopt;
      data->level = std::min(level, data->level);
      data->perms &= perms;
      return data;
    }
    table = e & x86::kAddrMask;
  }
  return std::nullopt;
}

}  // namespace

std::optional<FunctionalResult> linear_translate(const PhysMem& mem, const ept::Eptp& eptp, Gpa cr3,
                                                 int guest_levels, Gva gva) {
  return guest_walk(mem, [&](Gpa gpa) { return ept_translate(mem, eptp, gpa); }, cr3, guest_levels, gva);
}

std::optional<FunctionalResult> linear_translate(const PhysMem& mem, const ept::Eptp& eptp,
                                                 const ept::Eptp& secure_eptp, unsigned shared_bit, Gpa cr3,
                                                 int guest_levels, Gva gva) {
  auto ept = [&](Gpa gpa) { return ept_translate(mem, (gpa >> shared_bit) & 1 ? eptp : secure_eptp, gpa); };
  return guest_walk(mem, ept, cr3, guest_levels, gva);
}

}  // namespace septsim::model
