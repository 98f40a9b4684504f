// The TLM memory target: 8-byte reads/writes of PhysMem, latency annotation,
// error responses, several initiators on the multi-passthrough socket.
#include <catch2/catch.hpp>
#include <tlm_utils/simple_initiator_socket.h>

#include "walk_env.h"

using namespace septsim;
using namespace septsim::walktest;

namespace {

struct Initiator : sc_core::sc_module {
  tlm_utils::simple_initiator_socket<Initiator> socket;
  tlm::tlm_generic_payload p;
  u64 data = 0;
  explicit Initiator(sc_core::sc_module_name n) : sc_core::sc_module(n), socket("socket") {
    p.set_data_ptr(reinterpret_cast<unsigned char*>(&data));
    p.set_data_length(8);
    p.set_streaming_width(8);
  }
  tlm::tlm_response_status access(tlm::tlm_command cmd, u64 addr, sc_core::sc_time& delay) {
    p.set_command(cmd);
    p.set_address(addr);
    p.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
    socket->b_transport(p, delay);
    return p.get_response_status();
  }
};

struct TargetEnv {
  Config cfg = flat_config();
  Timing timing = Timing::from(cfg);
  PhysMem mem{u64{1} << 30};
  HostMemoryTarget target{unique_name("hostmem").c_str(), mem, timing};
  Initiator a{unique_name("init").c_str()};
  TargetEnv() {
    a.socket.bind(target.socket);
    complete_binding(target, a.socket);
  }
};

}  // namespace

TEST_CASE("HostMemoryTarget reads and writes 8-byte entries and annotates latency", "[walk]") {
  TargetEnv t;
  const Hpa table = alloc_table(t.mem);
  t.mem.write64(table + 0x18, 0x1122334455667788ull);
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;

  REQUIRE(t.a.access(tlm::TLM_READ_COMMAND, table + 0x18, delay) == tlm::TLM_OK_RESPONSE);
  CHECK(t.a.data == 0x1122334455667788ull);
  t.a.data = 0xdeadbeefcafef00dull;
  REQUIRE(t.a.access(tlm::TLM_WRITE_COMMAND, table + 0x20, delay) == tlm::TLM_OK_RESPONSE);
  CHECK(t.mem.read64(table + 0x20) == 0xdeadbeefcafef00dull);
  REQUIRE(t.a.access(tlm::TLM_READ_COMMAND, table + 0x1000 * 5, delay) == tlm::TLM_OK_RESPONSE);
  CHECK(t.a.data == 0);  // never-written memory reads as 0

  // latency.walk_ref = 20 cycles at 2400 MHz, added once per transaction.
  CHECK(delay == 3 * t.timing.to_time(20));
  CHECK(t.timing.from_time(delay + t.timing.to_time(1) / 2) == 60);
  // The annotation adds to what the initiator passes in.
  sc_core::sc_time d2 = sc_core::sc_time(1, sc_core::SC_US);
  t.a.access(tlm::TLM_READ_COMMAND, table, d2);
  CHECK(d2 == sc_core::sc_time(1, sc_core::SC_US) + t.timing.to_time(20));
}

TEST_CASE("HostMemoryTarget rejects malformed transactions without latency", "[walk]") {
  TargetEnv t;
  const Hpa table = alloc_table(t.mem);
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  SECTION("length other than 8") {
    t.a.p.set_data_length(4);
    CHECK(t.a.access(tlm::TLM_READ_COMMAND, table, delay) == tlm::TLM_BURST_ERROR_RESPONSE);
  }
  SECTION("streaming") {
    t.a.p.set_streaming_width(4);
    CHECK(t.a.access(tlm::TLM_READ_COMMAND, table, delay) == tlm::TLM_BURST_ERROR_RESPONSE);
  }
  SECTION("byte enables") {
    unsigned char be[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    t.a.p.set_byte_enable_ptr(be);
    t.a.p.set_byte_enable_length(8);
    CHECK(t.a.access(tlm::TLM_READ_COMMAND, table, delay) == tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE);
    t.a.p.set_byte_enable_ptr(nullptr);
  }
  SECTION("unaligned address") {
    CHECK(t.a.access(tlm::TLM_READ_COMMAND, table + 4, delay) == tlm::TLM_ADDRESS_ERROR_RESPONSE);
  }
  SECTION("write to an unallocated frame") {
    CHECK(t.a.access(tlm::TLM_WRITE_COMMAND, table + (u64{64} << 20), delay) == tlm::TLM_ADDRESS_ERROR_RESPONSE);
  }
  CHECK(delay == sc_core::SC_ZERO_TIME);
}

TEST_CASE("Several walkers share one HostMemoryTarget", "[walk]") {
  Config cfg;
  Timing timing = Timing::from(cfg);
  StatsRegistry stats;
  PhysMem mem(u64{1} << 30);
  Ept ept(mem, 4);
  ept.map(0x80000000ull, 0x4000000000ull);
  HostMemoryTarget target(unique_name("hostmem").c_str(), mem, timing);
  PageWalker w0(unique_name("walker").c_str(), cfg, timing, stats, "vcpu0");
  PageWalker w1(unique_name("walker").c_str(), cfg, timing, stats, "vcpu1");
  w0.mem.bind(target.socket);
  w1.mem.bind(target.socket);
  complete_binding(target, w0.mem, w1.mem);

  WalkRequest req;
  req.kind = TranslationKind::GuestPhysical;
  req.addr = 0x80000000ull;
  req.eptp = ept.eptp();
  req.ctx.eptp = req.eptp.encode();
  CHECK(w0.walk(req).refs() == 4);
  CHECK(w1.walk(req).refs() == 4);  // PSCs are per walker
  CHECK(w0.walk(req).refs() == 1);
  CHECK(stats.value("vcpu0.walk.refs.ept") == 5);
  CHECK(stats.value("vcpu1.walk.refs.ept") == 4);
}
