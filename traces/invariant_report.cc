#include "traces/invariant_report.h"

#include <algorithm>
#include <cstdio>
#include <optional>

#include "model/functional_walk.h"
#include "model/x86_pte.h"
#include "model/hex.h"
#include "mmu/tdx_vm.h"

namespace septsim::traces {

namespace {

// GVA -> GPA -> HPA as model::linear_translate, but for a TD vCPU each GPA
// (guest table or data) goes through the Secure EPT when private (shared
// bit clear) and through the shared EPT otherwise.
std::optional<model::FunctionalResult> td_linear_translate(const model::PhysMem& mem, const model::Vcpu& vcpu,
                                                           unsigned shared_bit, Gpa cr3, int levels, Gva gva) {
  auto ept = [&](Gpa gpa) {
    bool priv = !((gpa >> shared_bit) & 1);
    return model::ept_translate(mem, priv ? vcpu.secure_eptp() : vcpu.eptp(), gpa);
  };
  Gpa table = cr3;
  u8 perms = model::kPermRead | model::kPermWrite | model::kPermExec;
  for (int level = levels; level >= PG_LEVEL_4K; --level) {
    auto slot = ept(table + 8 * pt_index(gva, level));
    if (!slot) return std::nullopt;
    u64 e = mem.read64(slot->hpa);
    if (!(e & x86::kPresent)) return std::nullopt;
    if (!(e & x86::kWritable)) perms &= u8(~model::kPermWrite);
    if (e & x86::kNoExec) perms &= u8(~model::kPermExec);
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

std::vector<std::string> InvariantReport::stale_tlb_entries(const model::Vcpu& vcpu, const model::PhysMem& mem,
                                                            unsigned shared_bit) {
  std::set<std::string> out;  // L1 and STLB copies of one translation give one line
  // A vCPU with requests pending cannot re-enter the guest before servicing
  // them (new root, flush), so its TLB cannot be used as it stands.
  if (vcpu.pending_requests()) return {};
  const ept::Eptp& eptp = vcpu.eptp();
  u64 current = eptp.encode();
  const auto& guest = vcpu.guest();
  const auto& ctx = vcpu.context();
  auto& tlb = const_cast<model::Vcpu&>(vcpu).tlb();
  tlb.for_each([&](model::TranslationKind kind, const model::TlbContext& c, u64 addr, const model::Translation& t) {
    if (c.eptp != current) return;  // tagged with an EPTP no longer loaded: never used
    std::optional<model::FunctionalResult> now;
    if (kind == model::TranslationKind::GuestPhysical) {
      // A TD vCPU's private GPAs (shared bit clear) translate through the Secure EPT.
      const bool priv = vcpu.is_td() && shared_bit && !((addr >> shared_bit) & 1);
      now = model::ept_translate(mem, priv ? vcpu.secure_eptp() : eptp, addr);
    } else {
      if (c.vpid != ctx.vpid || c.pcid != ctx.pcid) return;
      now = vcpu.is_td() && shared_bit ? td_linear_translate(mem, vcpu, shared_bit, guest.cr3, guest.levels, addr)
                                       : model::linear_translate(mem, eptp, guest.cr3, guest.levels, addr);
    }
    std::string what = std::string(kind == model::TranslationKind::Linear ? "gva " : "gpa ") + hex(addr);
    if (!now) {
      out.insert("stale-tlb: vcpu" + std::to_string(vcpu.id()) + " caches " + what + " -> hpa " + hex(t.frame) +
                    " but the tables no longer map it");
      return;
    }
    Hpa frame = now->hpa & ~(level_size(t.level) - 1);
    if (frame != t.frame || (t.perms & ~now->perms) != 0)
      out.insert("stale-tlb: vcpu" + std::to_string(vcpu.id()) + " caches " + what + " -> hpa " + hex(t.frame) +
                    " perms " + std::to_string(t.perms) + " but the tables give hpa " + hex(frame) + " perms " +
                    std::to_string(now->perms));
  });
  return {out.begin(), out.end()};
}

void InvariantReport::check(const std::vector<std::unique_ptr<model::Vcpu>>& vcpus, u64 event_index, u64 line) {
  ++checks_;
  std::vector<std::string> found = kvm_.check_invariants();
  if (nested_) {
    auto n = nested_->check_invariants();
    found.insert(found.end(), n.begin(), n.end());
  }
  for (const auto& v : vcpus) {
    const mmu::TdxVm* td = kvm_.tdx_vm();
    auto stale = stale_tlb_entries(*v, mem_, td ? td->shared_bit() : 0);
    found.insert(found.end(), stale.begin(), stale.end());
  }
  for (const auto& f : found) {
    if (violations_.size() >= kMaxReported) return;
    if (!seen_.insert(f).second) continue;
    violations_.push_back("event " + std::to_string(event_index) + " (line " + std::to_string(line) + "): " + f);
  }
}

}  // namespace septsim::traces
