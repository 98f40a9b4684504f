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

// What the current tables translate a TLB entry's address to (a TD vCPU's
// private GPAs through its Secure EPT); nullopt when the entry is not
// checked (an EPTP or VPID/PCID no longer in use) or nothing maps it.
// *checked tells the two apart.
std::optional<model::FunctionalResult> translate_now(const model::Vcpu& vcpu, const model::PhysMem& mem,
                                                     unsigned shared_bit, model::TranslationKind kind,
                                                     const model::TlbContext& c, u64 addr, bool* checked) {
  *checked = false;
  const ept::Eptp& eptp = vcpu.eptp();
  if (c.eptp != eptp.encode()) return std::nullopt;  // tagged with an EPTP no longer loaded: never used
  const auto& guest = vcpu.guest();
  const auto& ctx = vcpu.context();
  if (kind == model::TranslationKind::GuestPhysical) {
    *checked = true;
    // A TD vCPU's private GPAs (shared bit clear) translate through the Secure EPT.
    const bool priv = vcpu.is_td() && shared_bit && !((addr >> shared_bit) & 1);
    return model::ept_translate(mem, priv ? vcpu.secure_eptp() : eptp, addr);
  }
  if (c.vpid != ctx.vpid || c.pcid != ctx.pcid) return std::nullopt;
  *checked = true;
  return vcpu.is_td() && shared_bit
             ? model::linear_translate(mem, eptp, vcpu.secure_eptp(), shared_bit, guest.cr3, guest.levels, addr)
             : model::linear_translate(mem, eptp, guest.cr3, guest.levels, addr);
}

std::string tlb_what(model::TranslationKind kind, u64 addr) {
  return std::string(kind == model::TranslationKind::Linear ? "gva " : "gpa ") + hex(addr);
}

}  // namespace

std::vector<std::string> InvariantReport::stale_tlb_entries(const model::Vcpu& vcpu, const model::PhysMem& mem,
                                                            unsigned shared_bit) {
  std::set<std::string> out;  // L1 and STLB copies of one translation give one line
  // A vCPU with requests pending cannot re-enter the guest before servicing
  // them (new root, flush), so its TLB cannot be used as it stands.
  if (vcpu.pending_requests()) return {};
  auto& tlb = const_cast<model::Vcpu&>(vcpu).tlb();
  tlb.for_each([&](model::TranslationKind kind, const model::TlbContext& c, u64 addr, const model::Translation& t) {
    bool checked = false;
    const std::optional<model::FunctionalResult> now = translate_now(vcpu, mem, shared_bit, kind, c, addr, &checked);
    if (!checked) return;
    const std::string what = tlb_what(kind, addr);
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

std::vector<std::string> InvariantReport::unlogged_dirty_tlb_entries(const model::Vcpu& vcpu,
                                                                     const model::PhysMem& mem, const mmu::Kvm& kvm,
                                                                     unsigned shared_bit) {
  std::set<std::string> out;
  if (vcpu.pending_requests()) return {};
  auto& tlb = const_cast<model::Vcpu&>(vcpu).tlb();
  tlb.for_each([&](model::TranslationKind kind, const model::TlbContext& c, u64 addr, const model::Translation& t) {
    if (!t.dirty || !(t.perms & model::kPermWrite)) return;
    bool checked = false;
    const std::optional<model::FunctionalResult> now = translate_now(vcpu, mem, shared_bit, kind, c, addr, &checked);
    if (!now || now->ept_dirty || !kvm.pml_logged(now->gpa)) return;
    if (vcpu.is_td() && shared_bit && !((now->gpa >> shared_bit) & 1)) return;  // private memory is not logged
    out.insert("rule dirty-log: vcpu" + std::to_string(vcpu.id()) + " caches a dirty, writable " +
               tlb_what(kind, addr) + " (gpa " + hex(now->gpa & ~(kPageSize - 1)) +
               ", PML-logged) whose EPT D bit is clear: its writes set no D bit and are never logged");
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
  const bool pml = kvm_.pml_logging();
  for (const auto& v : vcpus) {
    const mmu::TdxVm* td = kvm_.tdx_vm();
    auto stale = stale_tlb_entries(*v, mem_, td ? td->shared_bit() : 0);
    found.insert(found.end(), stale.begin(), stale.end());
    if (pml) {
      auto unlogged = unlogged_dirty_tlb_entries(*v, mem_, kvm_, td ? td->shared_bit() : 0);
      found.insert(found.end(), unlogged.begin(), unlogged.end());
    }
  }
  for (const auto& f : found) add(event_index, line, f);
}

void InvariantReport::add(u64 event_index, u64 line, const std::string& what) {
  if (violations_.size() >= kMaxReported) return;
  if (!seen_.insert(what).second) return;
  violations_.push_back("event " + std::to_string(event_index) + " (line " + std::to_string(line) + "): " + what);
}

}  // namespace septsim::traces
