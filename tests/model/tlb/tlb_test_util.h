// Shared helpers for the TLB tests.
#pragma once
#include <map>
#include <string>

#include "model/config.h"
#include "model/stats.h"
#include "model/tlb/tlb_hierarchy.h"

namespace septsim::model::test {

constexpr TranslationKind kLin = TranslationKind::Linear;
constexpr TranslationKind kGpa = TranslationKind::GuestPhysical;
constexpr u8 kRWX = kPermRead | kPermWrite | kPermExec;

// EPTPs: root | A/D enable (0x40) | 4-level walk (0x18) | WB (0x6).
constexpr u64 kEptpA = 0x1000 | 0x5e;
constexpr u64 kEptpB = 0x2000 | 0x5e;
constexpr u64 kEptpC = 0x3000 | 0x5e;
constexpr u64 kEptpANoAd = 0x1000 | 0x1e;  // same EP4TA as kEptpA

using Overrides = std::map<std::string, std::string>;

// Skylake-SP geometry spelled out, so the tests do not follow preset edits.
inline Config tlb_config(const Overrides& overrides = {}) {
  Config cfg;
  const std::map<std::string, std::string> base = {
      {"tlb.l1d.4k.entries", "64"}, {"tlb.l1d.4k.ways", "4"},   {"tlb.l1d.2m.entries", "32"},
      {"tlb.l1d.2m.ways", "4"},     {"tlb.l1d.1g.entries", "4"}, {"tlb.l1d.1g.ways", "4"},
      {"tlb.stlb.entries", "1536"}, {"tlb.stlb.ways", "12"},    {"tlb.stlb_1g.entries", "16"},
      {"tlb.stlb_1g.ways", "4"},    {"tlb.replacement", "lru"}, {"latency.l1_tlb_hit", "2"},
      {"latency.stlb_hit", "7"},    {"sim.seed", "1"},
  };
  for (const auto& [k, v] : base) cfg.set(k, v);
  for (const auto& [k, v] : overrides) cfg.set(k, v);
  return cfg;
}

inline Translation tr(Hpa frame, u8 level, u8 perms = kRWX, bool dirty = true, bool global = false) {
  Translation t;
  t.frame = frame;
  t.level = level;
  t.perms = perms;
  t.dirty = dirty;
  t.global = global;
  return t;
}

struct TlbFixture {
  explicit TlbFixture(const Overrides& overrides = {})
      : cfg(tlb_config(overrides)), tlb(cfg, stats, "cpu0") {}
  Config cfg;
  StatsRegistry stats;
  TlbHierarchy tlb;

  TlbLookup read(TranslationKind k, const TlbContext& c, u64 a) { return tlb.lookup(k, c, a, AccessType::Read); }
  bool hits(TranslationKind k, const TlbContext& c, u64 a) { return read(k, c, a).hit; }
  u64 stat(const std::string& name) const { return stats.value("cpu0." + name); }
};

}  // namespace septsim::model::test
