#include "traces/invariant_report.h"

#include <algorithm>
#include <cstdio>
#include <optional>

#include "model/functional_walk.h"
#include "model/x86_pte.h"
#include "model/hex.h"
#include "mmu/tdx_vm.h"

namespace septsim::traces {

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
      now = vcpu.is_td() && shared_bit
                ? model::linear_translate(mem, eptp, vcpu.secure_eptp(), shared_bit, guest.cr3, guest.levels, addr)
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
