// Test helpers for the page walker: EPT and guest page-table builders over a
// PhysMem, and a PageWalker bound to a HostMemoryTarget. The simulation is
// never started, so every TEST_CASE can create its own (uniquely named)
// modules, also when all cases run in one process.
#pragma once
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <tlm_utils/multi_passthrough_target_socket.h>

#include "model/config.h"
#include "model/ept.h"
#include "model/phys_mem.h"
#include "model/stats.h"
#include "model/timing.h"
#include "model/walk/host_memory_target.h"
#include "model/walk/page_walker.h"
#include "model/x86_pte.h"

namespace septsim::walktest {

using namespace septsim::model;

inline std::string unique_name(const std::string& base) {
  static unsigned n = 0;
  return base + "_" + std::to_string(n++);
}

// SystemC completes a multi-passthrough target socket's binding (its callback
// binders learn their initiator and callbacks) only at the end of elaboration.
// Tests do it by hand after binding, because they never call sc_start; the
// target then also grants DMI, as it does from the end of elaboration on.
template <class... Sockets>
void complete_binding(HostMemoryTarget& target, Sockets&... initiators) {
  using Binder = tlm_utils::callback_binder_fw<tlm::tlm_base_protocol_types>;
  auto reg = [](sc_core::sc_port_base& port) {
    auto* binder = dynamic_cast<Binder*>(port.get_interface());
    if (!binder) throw std::logic_error("complete_binding: socket is not bound to a multi-passthrough target");
    binder->register_port(port, "tlm_fw_transport_if");
  };
  (reg(initiators.get_base_port()), ...);
  target.socket.end_of_elaboration();
  target.end_of_elaboration();
}

constexpr u64 kWb = ept::kMemTypeWb << ept::kMemTypeShift;
constexpr u64 kGuestRw = x86::kPresent | x86::kWritable;

inline Hpa alloc_table(PhysMem& mem) { return mem.alloc_table() << kPageShift; }

// An EPT hierarchy. Non-leaf entries are RWX without A; leaves get `perms`,
// WB memory type and PS above 4K.
struct Ept {
  PhysMem& mem;
  int levels;
  Hpa root;

  Ept(PhysMem& m, int lv) : mem(m), levels(lv), root(alloc_table(m)) {}

  ept::Eptp eptp(bool ad = true) const { return ept::Eptp{root, levels, ad}; }

  // HPA of the entry at `level` translating `gpa`; creates missing tables above it.
  Hpa entry_hpa(Gpa gpa, int level) {
    Hpa table = root;
    for (int l = levels; l > level; --l) {
      const Hpa ea = table + pt_index(gpa, l) * 8;
      u64 e = mem.read64(ea);
      if (!ept::is_present(e)) {
        e = alloc_table(mem) | ept::kRwx;
        mem.write64(ea, e);
      }
      if (l <= PG_LEVEL_1G && (e & ept::kLarge)) throw std::logic_error("Ept: a large leaf is in the way");
      table = ept::entry_addr(e);
    }
    return table + pt_index(gpa, level) * 8;
  }
  void map(Gpa gpa, Hpa hpa, int level = PG_LEVEL_4K, u64 perms = ept::kRwx, u64 extra = kWb) {
    set(gpa, level, align_down(hpa, level) | perms | extra | (level > PG_LEVEL_4K ? ept::kLarge : 0));
  }
  u64 get(Gpa gpa, int level) { return mem.read64(entry_hpa(gpa, level)); }
  void set(Gpa gpa, int level, u64 v) { mem.write64(entry_hpa(gpa, level), v); }
};

// Guest page tables at guest-physical addresses from `table_base` upwards
// (4 KiB apart). Each table's GPA is mapped by the EPT: with a 4K leaf per
// table, or with one leaf of `table_map_level` covering the whole region.
struct Guest {
  PhysMem& mem;
  Ept& ept;
  int levels;
  Gpa next_gpa;
  Gpa region_gpa;
  int table_map_level;
  Hpa region_hpa = 0;
  std::map<Gpa, Hpa> tables;  // table GPA -> HPA
  Gpa cr3 = 0;

  Guest(PhysMem& m, Ept& e, int lv, Gpa table_base = 0x10000000, int map_level = PG_LEVEL_4K)
      : mem(m), ept(e), levels(lv), next_gpa(table_base), region_gpa(table_base), table_map_level(map_level) {
    if (table_map_level > PG_LEVEL_4K) {
      region_hpa = mem.alloc(table_map_level) << kPageShift;
      ept.map(region_gpa, region_hpa, table_map_level);
    }
    cr3 = new_table();
  }

  Gpa new_table() {
    const Gpa g = next_gpa;
    next_gpa += kPageSize;
    Hpa h;
    if (table_map_level == PG_LEVEL_4K) {
      h = alloc_table(mem);
      ept.map(g, h);
    } else {
      h = region_hpa + (g - region_gpa);
    }
    tables[g] = h;
    return g;
  }
  Hpa table_hpa(Gpa g) const { return tables.at(g); }

  // GPA of the table holding the entry at `level` for `gva`; creates missing tables.
  Gpa table_gpa(Gva gva, int level) {
    Gpa table = cr3;
    for (int l = levels; l > level; --l) {
      const Hpa ea = table_hpa(table) + pt_index(gva, l) * 8;
      u64 e = mem.read64(ea);
      if (!(e & x86::kPresent)) {
        e = new_table() | kGuestRw;
        mem.write64(ea, e);
      }
      if (x86::is_leaf(e, l)) throw std::logic_error("Guest: a large leaf is in the way");
      table = e & x86::kAddrMask;
    }
    return table;
  }
  Gpa entry_gpa(Gva gva, int level) { return table_gpa(gva, level) + pt_index(gva, level) * 8; }
  Hpa entry_hpa(Gva gva, int level) { return table_hpa(table_gpa(gva, level)) + pt_index(gva, level) * 8; }

  void map(Gva gva, Gpa gpa, int level = PG_LEVEL_4K, u64 flags = kGuestRw) {
    set(gva, level, align_down(gpa, level) | flags | (level > PG_LEVEL_4K ? x86::kLarge : 0));
  }
  u64 get(Gva gva, int level) { return mem.read64(entry_hpa(gva, level)); }
  void set(Gva gva, int level, u64 v) { mem.write64(entry_hpa(gva, level), v); }
};

// The flat memory model (latency.walk_ref per reference), which the walk
// tests' cycle counts are worked out for: named, since the presets default
// to the cache hierarchy.
inline Config flat_config() {
  Config c;
  c.set("memory.model", "flat");
  return c;
}

// A walker bound to a HostMemoryTarget over a fresh PhysMem, with one EPT.
// Counters live under the prefix "t".
struct Env {
  Config cfg;
  Timing timing;
  StatsRegistry stats;
  PhysMem mem;
  Ept ept;
  std::unique_ptr<HostMemoryTarget> target;
  std::unique_ptr<PageWalker> walker;
  bool ad = true;

  explicit Env(int ept_levels = 4, const Config& c = flat_config())
      : cfg(c), timing(Timing::from(cfg)), mem(u64{64} << 30), ept(mem, ept_levels) {
    target = std::make_unique<HostMemoryTarget>(unique_name("hostmem").c_str(), mem, timing);
    walker = std::make_unique<PageWalker>(unique_name("walker").c_str(), cfg, timing, stats, "t");
    walker->mem.bind(target->socket);
    complete_binding(*target, walker->mem);
  }

  TlbContext ctx(u16 vpid = 1, u16 pcid = 0) const { return TlbContext{vpid, pcid, ept.eptp(ad).encode()}; }

  WalkRequest gpa_req(Gpa gpa, AccessType a = AccessType::Read) const {
    WalkRequest r;
    r.kind = TranslationKind::GuestPhysical;
    r.addr = gpa;
    r.access = a;
    r.eptp = ept.eptp(ad);
    r.ctx = ctx();
    return r;
  }
  WalkRequest gva_req(const Guest& g, Gva gva, AccessType a = AccessType::Read, u16 vpid = 1, u16 pcid = 0) const {
    WalkRequest r;
    r.kind = TranslationKind::Linear;
    r.addr = gva;
    r.access = a;
    r.eptp = ept.eptp(ad);
    r.ctx = ctx(vpid, pcid);
    r.guest = GuestPaging{g.cr3, g.levels};
    return r;
  }
  WalkResult walk_gpa(Gpa gpa, AccessType a = AccessType::Read) { return walker->walk(gpa_req(gpa, a)); }
  WalkResult walk_gva(const Guest& g, Gva gva, AccessType a = AccessType::Read) {
    return walker->walk(gva_req(g, gva, a));
  }
  u64 stat(const std::string& name) const { return stats.value("t." + name); }
};

}  // namespace septsim::walktest
