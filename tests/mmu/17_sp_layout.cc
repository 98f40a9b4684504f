// struct kvm_mmu_page layouts (mmu.sp_layout) and the metadata bytes the
// model's pages would cost under them. Offsets and the 184-byte size are
// struct kvm_mmu_page as of Linux 6.14 (mmu_internal.h).
#include "mmu/sp_layout.h"
#include "model/config.h"
#include "mmu_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

TEST_CASE("The 6.14+ layout puts external_spt in the unsync_children union: 184 bytes", "[mmu][sp_layout]") {
  const SpLayout& l = sp_layout(SpLayoutKind::ExternalInUnion);
  REQUIRE(l.size() == 184);
  REQUIRE(l.offset_of("hash_link") == 16);
  REQUIRE(l.offset_of("role") == 36);
  REQUIRE(l.offset_of("gfn") == 40);
  REQUIRE(l.offset_of("root_count/tdp_mmu_root_count") == 64);
  REQUIRE(l.offset_of("external_spt") == 72);
  REQUIRE(l.offset_of("unsync_children+write_flooding_count") == 72);
  REQUIRE(l.offset_of("parent_ptes/ptep") == 80);
  REQUIRE(l.offset_of("unsync_child_bitmap") == 88);
  REQUIRE(l.offset_of("possible_nx_huge_page_link") == 152);
  REQUIRE(l.offset_of("rcu_head") == 168);
}

TEST_CASE("A separate external_spt field costs one more pointer: 192 bytes", "[mmu][sp_layout]") {
  const SpLayout& l = sp_layout(SpLayoutKind::ExternalSeparate);
  REQUIRE(l.size() == 184 + 8);
  REQUIRE(l.offset_of("external_spt") == 80);
}

TEST_CASE("Overlaying shadow-only with TDP-only fields saves their smaller side", "[mmu][sp_layout]") {
  // Shadow-only: hash_link 16 + shadowed_translation 8 + unsync children 8 +
  // bitmap 64 = 96; TDP-only: rcu_head 16 + external_spt 8 = 24.
  REQUIRE(sp_layout(SpLayoutKind::ShadowTdpUnion).size() == 192 - 24);
  // No shadow-only field at all: 192 - 96.
  REQUIRE(sp_layout(SpLayoutKind::TdpOnly).size() == 96);
  REQUIRE_THROWS_AS(sp_layout(SpLayoutKind::TdpOnly).offset_of("unsync_child_bitmap"), std::out_of_range);
}

TEST_CASE("An unknown mmu.sp_layout is a config error that lists the layouts", "[mmu][sp_layout]") {
  REQUIRE(parse_sp_layout("tdp-only") == SpLayoutKind::TdpOnly);
  try {
    parse_sp_layout("packed");
    FAIL("accepted");
  } catch (const model::ConfigError& e) {
    REQUIRE(std::string(e.what()).find("mmu.sp_layout") != std::string::npos);
    REQUIRE(std::string(e.what()).find("external-separate") != std::string::npos);
  }
}

TEST_CASE("Metadata bytes follow the MMU pages in use and the mapped memory", "[mmu][sp_layout]") {
  Vm vm({{"mmu.sp_layout", "external-separate"}});
  vm.kvm->create_memslot(slot(0, 0, 4 * MiB));
  vm.access(0, AccessType::Write);
  vm.access(2 * MiB, AccessType::Write);
  // Root, PDPT, PD and two PTs; two 4K pages mapped.
  REQUIRE(vm.stat("kvm.mmu_pages") == 5);
  REQUIRE(vm.stat("kvm.sp_meta.bytes_per_sp") == 192);
  REQUIRE(vm.stat("kvm.sp_meta.bytes") == 5 * 192);
  REQUIRE(vm.stat("kvm.sp_meta.bytes_per_mapped_gib") == 5 * 192 * (GiB / (2 * 4096)));
  vm.kvm->delete_memslot(0);
  vm.enter();  // drops the obsolete root, loads a new one
  REQUIRE(vm.stat("kvm.sp_meta.bytes") == 192);
  REQUIRE(vm.stat("kvm.sp_meta.bytes_peak") == 5 * 192);
  REQUIRE(vm.stat("kvm.sp_meta.bytes_per_mapped_gib") == 0);
}
