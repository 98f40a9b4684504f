// A TD VM through the MMU: creation, the initial image (PAGE.ADD +
// MR.EXTEND), finalize, private faults that AUG, the guest's ACCEPT and a
// teardown that reclaims every page (arch/x86/kvm/vmx/tdx.c, docs/kvm-behaviour.md).
#include <catch2/catch.hpp>

#include "mmu/tdx_vm.h"
#include "seam/tdx_module.h"
#include "tests/mmu/td_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

TEST_CASE("a TD VM is created through the TDX module, one TD vCPU per vCPU", "[tdx]") {
  TdVm t;
  REQUIRE(t.vm.kvm->is_td());
  const seam::Td* td = t.td().td();
  REQUIRE(td != nullptr);
  CHECK(td->op_state == seam::OpState::INITIALIZED);
  CHECK(td->vcpus.size() == 1);
  CHECK(t.td().shared_bit() == 47);
  CHECK(t.td().is_private(0x1000));
  CHECK(!t.td().is_private((1ull << 47) | 0x1000));
  CHECK_THROWS_AS(t.vm.kvm->create_td(t.tdx, TdxVmParams{}, {nullptr}), KvmError);
}

TEST_CASE("td_init_mem_region PAGE.ADDs the image with its content and MR.EXTENDs every 256 bytes", "[tdx]") {
  TdVm t;
  const u64 before = t.td().seamcalls;
  t.vm.kvm->td_init_mem_region(0x100000, 4 * kPageSize, 0xabc0, true);
  REQUIRE(t.td().mapped_private() == 4);
  for (u64 i = 0; i < 4; ++i) {
    const auto m = t.vm.kvm->private_mapping(0x100000 + i * kPageSize);
    REQUIRE(m);
    const PrivateMapping& p = *m;
    CHECK(p.added);
    CHECK(p.level == PG_LEVEL_4K);
    CHECK(t.vm.mem.tag(p.hpa >> kPageShift) == 0xabc0 + i);
    CHECK(t.tdx.pamt().get(p.hpa, PG_LEVEL_4K).pt == seam::PageType::PT_REG);
    CHECK(t.sept_state(0x100000 + i * kPageSize) == int(seam::septe::SeptState::MAPPED));
  }
  // 3 SEPT.ADDs, 4 PAGE.ADDs, 4 x 16 MR.EXTENDs.
  CHECK(t.td().seamcalls - before == 3 + 4 + 64);  // SEAMCALLs only: no TDCALL yet
  // Unmeasured: no MR.EXTEND.
  const u64 mid = t.td().seamcalls;
  t.vm.kvm->td_init_mem_region(0x200000, kPageSize, 1, false);
  CHECK(t.td().seamcalls - mid == 2);  // SEPT.ADD of the new 2M's table + PAGE.ADD
  CHECK_THROWS_AS(t.vm.kvm->td_init_mem_region(0x100000, kPageSize, 1, false), KvmError);
  CHECK_THROWS_AS(t.vm.kvm->td_init_mem_region(128 * MiB, kPageSize, 1, false), KvmError);
}

TEST_CASE("after finalize a private fault AUGs a PENDING page and the guest's ACCEPT maps it", "[tdx]") {
  TdVm t;
  t.vm.kvm->td_init_mem_region(0x100000, kPageSize, 7, true);
  u64 st = 0;
  CHECK_THROWS_AS(t.vm.kvm->td_accept(0, 0x300000, TdxLevel{0}, &st), KvmError);  // not finalized
  t.vm.kvm->td_finalize();
  CHECK(t.td().td()->op_state == seam::OpState::RUNNABLE);
  CHECK_THROWS_AS(t.vm.kvm->td_init_mem_region(0x400000, kPageSize, 1, false), KvmError);

  t.fault(0x300000);
  REQUIRE(t.vm.kvm->private_mapping(0x300000));
  CHECK(!t.vm.kvm->private_mapping(0x300000)->added);
  CHECK(t.sept_state(0x300000) == int(seam::septe::SeptState::PENDING));
  CHECK(t.vm.stat("kvm.pf_fixed") == 1);
  t.fault(0x300000);  // already private: spurious
  CHECK(t.vm.stat("kvm.pf_spurious") == 1);
  t.vm.kvm->td_accept(0, 0x300000, TdxLevel{0}, &st);
  CHECK(st == seam::TDX_SUCCESS);
  CHECK(t.sept_state(0x300000) == int(seam::septe::SeptState::MAPPED));

  // ACCEPT of a page never faulted: the EPT violation AUGs it, the retry maps it.
  t.vm.kvm->td_accept(0, 0x305000, TdxLevel{0}, &st);
  CHECK(st == seam::TDX_SUCCESS);
  CHECK(t.sept_state(0x305000) == int(seam::septe::SeptState::MAPPED));

  // A 2M ACCEPT over an untouched range: the merged kernel maps the faulting
  // page at 4K (tdx_gmem_max_mapping_level), so the retried 2M ACCEPT finds a
  // table where it wants a leaf.
  t.vm.kvm->td_accept(0, 0x600000, TdxLevel{1}, &st);
  CHECK(seam::status_class(st) == seam::TDX_PAGE_SIZE_MISMATCH);
  REQUIRE(t.vm.kvm->private_mapping(0x600000));
  CHECK(t.vm.kvm->private_mapping(0x600000)->level == PG_LEVEL_4K);
  CHECK(!t.vm.kvm->private_mapping(0x601000));
}

TEST_CASE("rfc-v1: a 2M ACCEPT over an untouched, THP-backed 2M range AUGs at 2M", "[tdx]") {
  TdVm t(false, "rfc-v1");
  t.vm.kvm->td_finalize();
  u64 st = 0;
  t.vm.kvm->td_accept(0, 0x600000, TdxLevel{1}, &st);
  CHECK(st == seam::TDX_SUCCESS);
  REQUIRE(t.vm.kvm->private_mapping(0x600000));
  CHECK(t.vm.kvm->private_mapping(0x600000)->level == PG_LEVEL_2M);
  CHECK(t.vm.kvm->private_mapping(0x7ff000)->hpa == t.vm.kvm->private_mapping(0x600000)->hpa);
}

TEST_CASE("a private fault outside every memslot is a KVM_EXIT_MEMORY_FAULT", "[tdx]") {
  TdVm t;
  t.vm.kvm->td_finalize();
  t.fault(512 * MiB);
  CHECK(t.td().memory_faults == 1);
  CHECK(t.td().mapped_private() == 0);
}

TEST_CASE("teardown reclaims every private, Secure-EPT and control page", "[tdx]") {
  for (bool dynamic : {false, true}) {
    INFO("dynamic PAMT " << dynamic);
    TdVm t(dynamic);
    const u64 frames_before = t.vm.mem.allocated_frames();
    t.vm.kvm->td_init_mem_region(0x100000, 2 * kPageSize, 1, true);
    t.vm.kvm->td_finalize();
    t.fault(0x300000);
    t.fault(0x10000000);
    u64 st = 0;
    t.vm.kvm->td_accept(0, 0x300000, TdxLevel{0}, &st);
    const Hpa tdr = t.td().handle().tdr;
    t.vm.kvm->td_teardown();
    CHECK(t.tdx.td(tdr) == nullptr);
    CHECK(t.td().mapped_private() == 0);
    CHECK(t.tdx.pamt().pair_bytes() == 0);
    CHECK(!t.td().bugged());
    // Control and SEPT pages went back to the allocator; the guest's pages
    // stay with the memslots that back them.
    CHECK(t.vm.mem.allocated_frames() <= frames_before + 3 * 512);
    CHECK_THROWS_AS(t.vm.kvm->td_teardown(), KvmError);
  }
}

TEST_CASE("TD events on a VM that is not a TD are refused", "[tdx]") {
  Vm vm;
  CHECK(!vm.kvm->is_td());
  CHECK_THROWS_AS(vm.kvm->td_finalize(), KvmError);
  CHECK_THROWS_AS(vm.kvm->td_teardown(), KvmError);
}

TEST_CASE("SEPT.ADD pages come from the vCPU's external_spt cache, topped up before the fault maps", "[tdx]") {
  TdVm t(true);
  t.vm.kvm->td_finalize();
  t.fault(0x300000);
  // The first fault linked all 3 tables below the root from a full cache; the top-up refilled it before.
  CHECK(t.td().cached_spt_pages(0) == 0);
  t.fault(0x301000);
  CHECK(t.td().cached_spt_pages(0) == 3);  // topped up, nothing needed
  t.fault(0x1000000);                      // a new 2M range: one table page taken
  CHECK(t.td().cached_spt_pages(0) == 2);
  t.vm.kvm->td_teardown();
  CHECK(t.tdx.pamt().pair_bytes() == 0);
  t.vm.require_clean();
}

// tdx_mmu_release_hkid writes back the caches of every package
// (smp_func_do_phymem_cache_wb on one CPU each); KEY.FREEID needs them all
// (the module's tdh_mng_key_freeid.c: TDX_WBCACHE_NOT_COMPLETE otherwise).
TEST_CASE("teardown runs TDH.PHYMEM.CACHE.WB once per package", "[tdx][teardown]") {
  for (const char* packages : {"1", "2", "4"}) {
    INFO(packages << " packages");
    Vm vm({{"host.mem_gib", "8"}, {"host.packages", packages}}, 8 * GiB);
    seam::TdxModule tdx(unique_tdx_name().c_str(), vm.cfg, vm.mem, vm.stats);
    vm.kvm->create_memslot(slot(0, 0, 64 * MiB, HostBacking::Thp2M));
    vm.kvm->create_td(tdx, TdxVmParams{}, {nullptr});
    vm.kvm->td_finalize();
    const u64 before = vm.stat("seam.calls.tdh_phymem_cache_wb");
    vm.kvm->td_teardown();
    CHECK(vm.stat("seam.calls.tdh_phymem_cache_wb") - before == std::stoull(packages));
    CHECK(vm.stat("seam.calls.tdh_mng_key_freeid") == 1);
    CHECK(tdx.td(vm.kvm->tdx_vm()->handle().tdr) == nullptr);
    CHECK(!vm.kvm->tdx_vm()->bugged());
  }
}
