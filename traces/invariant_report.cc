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

std::string Violation::text() const {
  return "event " + std::to_string(event) + " (line " + std::to_string(line) + "): " + (said_rule ? "rule " : "") +
         rule + ": " + details;
}

InvariantReport::~InvariantReport() {
  if (attached_) attached_->set_check_log(nullptr);
}

void InvariantReport::attach(mmu::Kvm& kvm) {
  attached_ = &kvm;
  kvm.set_check_log(&log_);
  log_.full = true;  // nothing checked yet
}

void InvariantReport::touch_gpa_range(Gpa gpa, u64 size) {
  const Gfn first = gpa_to_gfn(gpa), end = gpa_to_gfn(gpa + size + kPageSize - 1);
  if (end > first) log_.touch(first, end - first);
}

std::vector<std::string> InvariantReport::violations() const {
  std::vector<std::string> out;
  out.reserve(records_.size());
  for (const auto& v : records_) out.push_back(v.text());
  return out;
}

u64 InvariantReport::rules() const {
  // docs/invariants.md: 1, 2, 5, 6, 7, 8, 9, 12, 13, 22, stale-tlb, internal
  // for every VM; a TD adds 3, 15-21, content, pamt, pamt-zero, pamt-refcount and kvm-bug.
  return 12 + (saw_td_ ? 13 : 0);
}

void InvariantReport::record(const std::string& found, u64 event_index, u64 line) {
  if (records_.size() >= kMaxReported) return;
  if (!seen_.insert(found).second) return;
  Violation v;
  v.event = event_index;
  v.line = line;
  // "rule R: details" or "NAME: details"
  v.said_rule = found.starts_with("rule ");
  std::string rest = v.said_rule ? found.substr(5) : found;
  const size_t colon = rest.find(": ");
  v.rule = colon == std::string::npos ? rest : rest.substr(0, colon);
  v.details = colon == std::string::npos ? "" : rest.substr(colon + 2);
  records_.push_back(std::move(v));
}

void InvariantReport::check(const std::vector<std::unique_ptr<model::Vcpu>>& vcpus, u64 event_index, u64 line,
                            bool full) {
  ++checks_;
  const mmu::TdxVm* td = kvm_.tdx_vm();
  saw_td_ |= td != nullptr;
  full = full || !attached_ || log_.full || (full_sweep_interval_ && checks_ % full_sweep_interval_ == 0);
  full_sweeps_ += full;
  std::vector<std::string> found = full ? kvm_.check_invariants() : kvm_.check_invariants_incremental(log_);
  if (nested_) {
    auto n = nested_->check_invariants();
    found.insert(found.end(), n.begin(), n.end());
  }
  // A vCPU's TLB is compared after a change that may have left it stale,
  // until it is compared with no request pending (one pending cannot use it).
  // Entries of another EPTP, VPID, PCID or CR3 are not compared; a vCPU that
  // switched back to them is compared again.
  const bool pml = kvm_.pml_logging();
  tlb_due_.resize(vcpus.size(), true);
  tlb_seen_.resize(vcpus.size());
  for (size_t i = 0; i < vcpus.size(); ++i) {
    const model::Vcpu& v = *vcpus[i];
    // PML: a dirty, writable TLB entry over a clean EPT leaf loses writes.
    // Cheap and only while a PML slot is logged: every check.
    if (pml) {
      auto unlogged = unlogged_dirty_tlb_entries(v, mem_, kvm_, td ? td->shared_bit() : 0);
      found.insert(found.end(), unlogged.begin(), unlogged.end());
    }
    const TlbSeen now{v.context(), v.eptp().encode(), v.guest().cr3};
    if (full || log_.tlb_may_be_stale || !(tlb_seen_[i] == now)) tlb_due_[i] = true;
    tlb_seen_[i] = now;
    if (!tlb_due_[i]) continue;
    if (!v.pending_requests()) tlb_due_[i] = false;
    auto stale = stale_tlb_entries(v, mem_, td ? td->shared_bit() : 0);
    found.insert(found.end(), stale.begin(), stale.end());
  }
  // A frame freed while not allocated (PhysMem::free left it alone).
  const auto& bad = mem_.bad_frees();
  for (size_t i = full ? 0 : std::min(bad_frees_seen_, bad.size()); i < bad.size(); ++i)
    found.push_back("rule internal: host frame " + hex(bad[i] << kPageShift) +
                    " was freed while not allocated (freed twice?); the allocator kept it out");
  bad_frees_seen_ = bad.size();
  log_.clear();
  for (const auto& f : found) record(f, event_index, line);
}

void InvariantReport::add(u64 event_index, u64 line, const std::string& what) {
  record(what, event_index, line);
}

}  // namespace septsim::traces
