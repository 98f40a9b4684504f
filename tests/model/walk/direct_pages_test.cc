// TLM DMI between the page walker and HostMemoryTarget: what the target
// grants, and that walks through granted pointers read and write what the
// transport would, charge the same latency, and stop using a frame once
// PhysMem::free() releases it.
#include <catch2/catch.hpp>
#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>

#include "walk_env.h"

using namespace septsim;
using namespace septsim::walktest;

namespace {

constexpr Gpa kD0 = 0x80000000ull;    // data GPA
constexpr Hpa kH0 = 0x4000000000ull;  // data HPA (never touched by the walker)

// Passes everything between an initiator and the target, counting the
// transactions that did not go through a DMI pointer.
struct CountingBus : sc_core::sc_module {
  tlm_utils::simple_target_socket<CountingBus> in;
  tlm_utils::simple_initiator_socket<CountingBus> out;
  unsigned transports = 0;
  unsigned invalidations = 0;  // invalidate_direct_mem_ptr calls from the target

  explicit CountingBus(sc_core::sc_module_name n) : sc_core::sc_module(n), in("in"), out("out") {
    in.register_b_transport(this, &CountingBus::b_transport);
    in.register_get_direct_mem_ptr(this, &CountingBus::get_direct_mem_ptr);
    out.register_invalidate_direct_mem_ptr(this, &CountingBus::invalidate_direct_mem_ptr);
  }
  void b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay) {
    ++transports;
    out->b_transport(p, delay);
  }
  bool get_direct_mem_ptr(tlm::tlm_generic_payload& p, tlm::tlm_dmi& dmi) { return out->get_direct_mem_ptr(p, dmi); }
  void invalidate_direct_mem_ptr(sc_dt::uint64 start, sc_dt::uint64 end) {
    ++invalidations;
    if (in.get_base_port().get_interface()) in->invalidate_direct_mem_ptr(start, end);  // an initiator is bound
  }
};

// A walker whose references pass through a CountingBus to HostMemoryTarget.
struct CountedWalker {
  Config cfg = flat_config();
  Timing timing = Timing::from(cfg);
  StatsRegistry stats;
  PhysMem mem{u64{64} << 30};
  Ept ept{mem, 4};
  HostMemoryTarget target{unique_name("hostmem").c_str(), mem, timing};
  CountingBus bus{unique_name("bus").c_str()};
  PageWalker walker{unique_name("walker").c_str(), cfg, timing, stats, "t"};

  CountedWalker() {
    walker.mem.bind(bus.in);
    bus.out.bind(target.socket);
    complete_binding(target, bus.out);
    ept.map(kD0, kH0);
  }
  // A cold-PSC 1D walk of kD0.
  WalkResult walk(AccessType a) {
    walker.psc().invalidate_all();
    WalkRequest r;
    r.kind = TranslationKind::GuestPhysical;
    r.addr = kD0;
    r.access = a;
    r.eptp = ept.eptp();
    r.ctx.eptp = r.eptp.encode();
    return walker.walk(r);
  }
};

// Asks for DMI to `hpa` through `bus`.
bool request_dmi(CountingBus& bus, Hpa hpa, tlm::tlm_dmi& dmi) {
  tlm::tlm_generic_payload p;
  p.set_command(tlm::TLM_READ_COMMAND);
  p.set_address(hpa);
  return bus.out->get_direct_mem_ptr(p, dmi);
}

}  // namespace

TEST_CASE("HostMemoryTarget grants DMI per frame: read-write if allocated, none without contents", "[walk]") {
  Config cfg = flat_config();
  Timing timing = Timing::from(cfg);
  PhysMem mem(u64{1} << 30);
  HostMemoryTarget target(unique_name("hostmem").c_str(), mem, timing);
  CountingBus bus(unique_name("bus").c_str());
  bus.out.bind(target.socket);
  complete_binding(target, bus.out);
  const Hpa table = alloc_table(mem);
  mem.write64(table + 0x10, 0x1234);
  const Hpa never_written = alloc_table(mem);

  tlm::tlm_dmi dmi;
  REQUIRE(request_dmi(bus, table + 0x10, dmi));
  CHECK(dmi.get_start_address() == table);
  CHECK(dmi.get_end_address() == table + kPageSize - 1);
  CHECK(dmi.is_read_write_allowed());
  CHECK(dmi.get_read_latency() == timing.to_time(timing.walk_ref));
  CHECK(dmi.get_write_latency() == timing.to_time(timing.walk_ref));
  CHECK(reinterpret_cast<const u64*>(dmi.get_dmi_ptr())[2] == 0x1234);

  CHECK_FALSE(request_dmi(bus, never_written, dmi));  // reads as zeros: a pointer would allocate it

  mem.free(table >> kPageShift);
  mem.write64(table, 1);  // contents again, but the frame is not allocated
  REQUIRE(request_dmi(bus, table, dmi));
  CHECK(dmi.is_read_allowed());
  CHECK_FALSE(dmi.is_write_allowed());
}

TEST_CASE("After one transport per page, walks read and write through DMI with the same cycles", "[walk]") {
  CountedWalker w;
  // Cold: 4 reads, one per table, each followed by an A (or A/D) write to the
  // page it just read, which the grant already covers.
  const WalkResult first = w.walk(AccessType::Write);
  REQUIRE(first.outcome == WalkOutcome::Ok);
  CHECK(w.bus.transports == 4);
  CHECK(w.stats.value("t.walk.ad_writes") == 4);

  w.ept.set(kD0, PG_LEVEL_4K, w.ept.get(kD0, PG_LEVEL_4K) & ~ept::kDirty);
  const WalkResult again = w.walk(AccessType::Write);
  REQUIRE(again.outcome == WalkOutcome::Ok);
  CHECK(w.bus.transports == 4);  // nothing went through the transport
  CHECK(again.refs() == 4);
  CHECK(w.stats.value("t.walk.ad_writes") == 5);
  CHECK((w.ept.get(kD0, PG_LEVEL_4K) & ept::kDirty) != 0);  // written through the pointer
  // 4 references + 1 D write at latency.walk_ref, 1 PSC lookup at latency.pwc_hit.
  CHECK(again.cycles == 5 * w.timing.walk_ref + w.timing.pwc_hit);
  CHECK(first.cycles == 8 * w.timing.walk_ref + w.timing.pwc_hit);
}

TEST_CASE("A freed paging-structure frame is not read through its old DMI pointer", "[walk]") {
  CountedWalker w;
  REQUIRE(w.walk(AccessType::Read).outcome == WalkOutcome::Ok);
  REQUIRE(w.bus.transports == 4);

  // Freeing the EPT page table returns its contents to PhysMem's pool, still
  // holding the old entries; the frame itself now reads as zeros.
  const Hpa pt = ept::entry_addr(w.ept.get(kD0, PG_LEVEL_2M));
  w.mem.free(pt >> kPageShift);
  const WalkResult r = w.walk(AccessType::Read);
  CHECK(r.outcome == WalkOutcome::EptViolation);
  CHECK(r.refs() == 4);
  CHECK(w.bus.transports == 5);  // the freed table's read went through the target again
}

TEST_CASE("Freeing frames without contents revokes no DMI grant", "[walk]") {
  CountedWalker w;
  REQUIRE(w.walk(AccessType::Read).outcome == WalkOutcome::Ok);
  const Pfn data = w.mem.alloc(PG_LEVEL_2M);  // guest data: never read or written as a table
  w.mem.free(data, PG_LEVEL_2M);
  CHECK(w.bus.invalidations == 0);
  const Hpa pt = ept::entry_addr(w.ept.get(kD0, PG_LEVEL_2M));
  w.mem.free(pt >> kPageShift);
  CHECK(w.bus.invalidations == 1);
}
