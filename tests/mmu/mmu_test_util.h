// Test harness for mmu/: a fake vCPU that records what KVM asks of it, a
// minimal EPT walk over PhysMem (what the hardware would see), and a VM
// fixture that turns guest accesses into EPT violations.
#pragma once
#include <catch2/catch.hpp>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mmu/kvm.h"
#include "model/ept.h"

namespace septsim::mmu::test {

constexpr u64 KiB = 1ull << 10, MiB = 1ull << 20, GiB = 1ull << 30;

class FakeVcpu : public model::VcpuControl {
 public:
  explicit FakeVcpu(unsigned id = 0) : id_(id) {}
  unsigned id() const override { return id_; }
  const ept::Eptp& eptp() const override { return eptp_; }
  void load_eptp(const ept::Eptp& e) override {
    eptp_ = e;
    loads.push_back(e);
  }
  void invept_single(const ept::Eptp& e) override { invepts.push_back(e); }
  void invept_all() override { ++invept_alls; }
  void load_secure_eptp(const ept::Eptp& e, unsigned) override { secure_eptp = e; }
  void make_request(u32 r) override { requests |= r; }
  Cycles local_time() const override { return now; }
  void charge(Cycles c) override { charged += c; }
  u32 take_requests() { return std::exchange(requests, 0u); }

  std::vector<ept::Eptp> loads, invepts;
  u32 requests = 0;
  Cycles now = 0;      // the local time the test places this vCPU at
  Cycles charged = 0;  // cycles KVM made it spend (remote-flush IPIs)
  unsigned invept_alls = 0;
  ept::Eptp secure_eptp{0, 4, false};

 private:
  unsigned id_;
  ept::Eptp eptp_{0, 4, true};
};

// What a 1D EPT walk finds for gpa: the last entry read and, when a leaf is
// present, the permissions ANDed over the path.
struct EptLookup {
  bool present = false;
  int level = 0;
  Hpa sptep = 0;
  u64 spte = 0;
  u64 perms = 0;  // R/W/X
};

inline EptLookup ept_lookup(const model::PhysMem& mem, const ept::Eptp& eptp, Gpa gpa) {
  EptLookup w;
  Hpa table = eptp.root;
  u64 perms = ept::kRwx;
  for (int level = eptp.levels; level >= PG_LEVEL_4K && table; --level) {
    w.level = level;
    w.sptep = table + pt_index(gpa, level) * 8;
    w.spte = mem.read64(w.sptep);
    if (!ept::is_present(w.spte)) return w;
    perms &= w.spte & ept::kRwx;
    if (ept::is_leaf(w.spte, level)) {
      w.present = true;
      w.perms = perms;
      return w;
    }
    table = ept::entry_addr(w.spte);
  }
  return w;
}

struct Vm {
  explicit Vm(std::initializer_list<std::pair<const char*, const char*>> overrides = {}, u64 host_bytes = 64 * GiB)
      : mem(host_bytes) {
    for (const auto& [k, v] : overrides) cfg.set(k, v);
    timing = model::Timing::from(cfg);
    kvm = std::make_unique<Kvm>(cfg, timing, mem, stats);
    kvm->add_vcpu(vcpu);
  }

  u64 stat(const std::string& name) const { return stats.value(name); }
  Cycles enter() { return kvm->service_requests(vcpu, vcpu.take_requests()); }
  EptLookup lookup(Gpa gpa) const { return ept_lookup(mem, vcpu.eptp(), gpa); }

  // The exit qualification the CPU reports for `a` at gpa in the current EPT.
  u64 qualification(Gpa gpa, AccessType a) const {
    EptLookup w = lookup(gpa);
    return ept::access_qual(a) | (w.present ? w.perms << 3 : 0);
  }
  Cycles fault(Gpa gpa, AccessType a) { return kvm->handle_ept_violation(vcpu, gpa, qualification(gpa, a)); }

  // A guest access: enters if needed, takes EPT violations until the EPT
  // allows it (at most 3), then sets A/D as the CPU would. Returns the
  // number of violations.
  int access(Gpa gpa, AccessType a) {
    int faults = 0;
    for (;;) {
      if (vcpu.requests || vcpu.eptp().root == 0) enter();
      EptLookup w = lookup(gpa);
      if (w.present && (w.perms & ept::access_perm(a))) {
        if (vcpu.eptp().ad_enabled) {
          u64 e = w.spte | ept::kAccessed | (a == AccessType::Write ? ept::kDirty : 0);
          if (e != w.spte) mem.write64(w.sptep, e);
        }
        return faults;
      }
      if (faults == 3) return faults;
      fault(gpa, a);
      ++faults;
    }
  }

  std::vector<std::string> violations() const { return kvm->check_invariants(); }
  void require_clean() const {
    auto v = violations();
    INFO((v.empty() ? std::string("") : v.front()));
    REQUIRE(v.empty());
  }

  model::Config cfg;
  model::Timing timing;
  model::PhysMem mem;
  model::StatsRegistry stats;
  FakeVcpu vcpu;
  std::unique_ptr<Kvm> kvm;
};

inline MemslotSpec slot(u32 id, Gpa gpa, u64 size, HostBacking backing = HostBacking::Page4K, u32 flags = 0,
                        u64 hva = 0) {
  MemslotSpec s;
  s.id = id;
  s.gpa = gpa;
  s.size = size;
  s.backing = backing;
  s.flags = flags;
  s.userspace_addr = hva;
  return s;
}

// SystemC wants distinct module names within one process.
inline std::string unique_tdx_name() {
  static unsigned n = 0;
  return "tdx_mmu_" + std::to_string(n++);
}

inline bool has_rule(const std::vector<std::string>& v, int rule) {
  std::string prefix = "rule " + std::to_string(rule) + ":";
  for (const auto& s : v)
    if (s.rfind(prefix, 0) == 0) return true;
  return false;
}

}  // namespace septsim::mmu::test
