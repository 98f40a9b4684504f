// mmu.tdx_huge_pages=v3: the TDX huge-page series, PATCH v3 (2026-01-06;
// docs/kvm-behaviour.md). Counts derived from that series' tdx.c:
// - tdx_gmem_max_mapping_level answers 2M, so an access fault on a
//   THP-backed, attribute-uniform frame AUGs 2M (SEPT.ADD of the two tables
//   above the 2M entry: level 3 and level 2 of a 4-level Secure EPT);
// - tdx_handle_ept_violation with an exit that carries ACCEPT level 4K sets
//   KVM_LPAGE_GUEST_INHIBIT_FLAG and splits the 2M leaf: tdx_sept_split_private_spte
//   is BLOCK, tdx_track (TRACK + one kick), DEMOTE; the DEMOTE brings its own
//   table page, so no SEPT.ADD; the fault then finds the 4K leaf (spurious);
// - tdx_sept_remove_private_spte of a 2M page: BLOCK, TRACK, REMOVE, then
//   tdh_phymem_page_wbinvd_hkid of each of the 512 4K pages.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "tests/mmu/td_test_util.h"

using namespace septsim;
using namespace septsim::mmu;
using namespace septsim::mmu::test;

namespace {

using seam::septe::SeptState;

}  // namespace

// RFC v5 (mmu.tdx_huge_pages=v5, with the module feature it needs) issues
// the same SEAMCALLs here (39/45 is v3's split); tests/mmu/27 has where it differs.
TEST_CASE("v3 and v5: an access fault maps 2M, a 4K ACCEPT on it inhibits and splits it once", "[tdx][huge]") {
  const char* huge = GENERATE("v3", "v5");
  INFO(huge);
  TdVm t(false, huge, true);
  t.vm.kvm->td_finalize();
  Calls calls(t.vm);
  t.fault(0x600000);
  CHECK(calls("seam.calls.tdh_mem_sept_add") == 2);
  CHECK(calls("seam.calls.tdh_mem_page_aug") == 1);
  REQUIRE(t.vm.kvm->private_mapping(0x600000));
  CHECK(t.vm.kvm->private_mapping(0x600000)->level == PG_LEVEL_2M);
  CHECK(t.sept_state(0x600000) == int(SeptState::PENDING));

  calls.mark();
  u64 st = 0;
  t.vm.kvm->td_accept(0, 0x601000, TdxLevel{0}, &st);
  CHECK(st == seam::TDX_SUCCESS);
  CHECK(calls("seam.calls.tdh_mem_range_block") == 1);
  CHECK(calls("seam.calls.tdh_mem_track") == 1);
  CHECK(calls("kvm.tdx.kicks") == 1);
  CHECK(calls("seam.calls.tdh_mem_page_demote") == 1);
  CHECK(calls("seam.calls.tdh_mem_sept_add") == 0);
  CHECK(calls("seam.calls.tdh_mem_page_aug") == 0);
  CHECK(calls("seam.calls.tdg_mem_page_accept") == 2);  // the exit, then the retry
  CHECK(calls("kvm.tdx.accept_splits") == 1);
  CHECK(calls("kvm.mmu_lock.write_acquisitions") == 1);
  CHECK(t.vm.kvm->private_mapping(0x601000)->level == PG_LEVEL_4K);
  CHECK(t.sept_state(0x601000) == int(SeptState::MAPPED));
  CHECK(t.sept_state(0x600000) == int(SeptState::PENDING));  // a piece of the split page
  CHECK(t.td().mapped_private() == 512);

  // The frame is inhibited: the guest's 2M ACCEPT finds a table, not a leaf.
  calls.mark();
  t.vm.kvm->td_accept(0, 0x600000, TdxLevel{1}, &st);
  CHECK(seam::status_class(st) == seam::TDX_PAGE_SIZE_MISMATCH);
  CHECK(calls("seam.calls.tdh_mem_page_demote") == 0);
  CHECK(!t.td().bugged());
  t.vm.require_clean();
}

TEST_CASE("v3: a 4K ACCEPT first inhibits the frame, so later faults there map 4K", "[tdx][huge]") {
  TdVm t(false, "v3");
  t.vm.kvm->td_finalize();
  u64 st = 0;
  t.vm.kvm->td_accept(0, 0x800000, TdxLevel{0}, &st);
  CHECK(st == seam::TDX_SUCCESS);
  CHECK(t.vm.kvm->private_mapping(0x800000)->level == PG_LEVEL_4K);
  Calls calls(t.vm);
  t.fault(0x801000);  // an access: 2M allowed by the series, but not here
  CHECK(calls("seam.calls.tdh_mem_page_aug") == 1);
  CHECK(t.vm.kvm->private_mapping(0x801000)->level == PG_LEVEL_4K);
  CHECK(calls("kvm.tdx.accept_splits") == 0);
  // An untouched frame: an access maps it 2M.
  t.fault(0xa00000);
  CHECK(t.vm.kvm->private_mapping(0xa00000)->level == PG_LEVEL_2M);
  t.vm.require_clean();
}

TEST_CASE("v3 removes a 2M page with 512 WBINVDs, rfc-v1 with one", "[tdx][huge][teardown]") {
  for (const char* huge : {"v3", "rfc-v1"}) {
    INFO(huge);
    TdVm t(false, huge);
    t.vm.kvm->td_finalize();
    u64 st = 0;
    t.vm.kvm->td_accept(0, 0x600000, TdxLevel{1}, &st);  // a 2M ACCEPT maps 2M under both
    REQUIRE(st == seam::TDX_SUCCESS);
    REQUIRE(t.vm.kvm->private_mapping(0x600000)->level == PG_LEVEL_2M);
    Calls calls(t.vm);
    t.vm.kvm->td_teardown();
    CHECK(calls("seam.calls.tdh_mem_range_block") == 1);
    CHECK(calls("seam.calls.tdh_mem_page_remove") == 1);
    // The page's write-back, then the TDR's under the global KeyID.
    CHECK(calls("seam.calls.tdh_phymem_page_wbinvd") == (std::string(huge) == "v3" ? 512u : 1u) + 1);
    CHECK(!t.td().bugged());
  }
}

TEST_CASE("off (the merged kernel) never inhibits or splits on a 4K ACCEPT", "[tdx][huge]") {
  TdVm t;
  t.vm.kvm->td_finalize();
  Calls calls(t.vm);
  t.fault(0x600000);
  CHECK(t.vm.kvm->private_mapping(0x600000)->level == PG_LEVEL_4K);
  CHECK(calls("seam.calls.tdh_mem_sept_add") == 3);
  u64 st = 0;
  t.vm.kvm->td_accept(0, 0x601000, TdxLevel{0}, &st);
  CHECK(st == seam::TDX_SUCCESS);
  CHECK(calls("seam.calls.tdh_mem_page_demote") == 0);
  CHECK(calls("kvm.tdx.accept_splits") == 0);
}

namespace {

std::string stats_of(const char* trace, const std::string& extra) {
  const std::string out = std::string(SEPTSIM_BINARY_DIR) + "/tdx_v3_" + std::to_string(std::hash<std::string>{}(extra)) + ".json";
  const std::string cmd = std::string(SEPTSIM_BINARY_DIR "/septsim replay " SEPTSIM_SOURCE_DIR "/tests/mmu/traces/") +
                          trace + " --check --quiet --stats " + out + " " + extra + " >/dev/null 2>&1";
  const int rc = std::system(cmd.c_str());
  REQUIRE(WIFEXITED(rc));
  REQUIRE(WEXITSTATUS(rc) == 0);
  std::ifstream f(out);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

long long phase_counter(const std::string& json, const char* phase, const char* key) {
  const auto j = nlohmann::json::parse(json);
  for (const auto& p : j["stats"]["phases"])
    if (p["name"] == phase) return p["counters"].value(key, -1ll);
  return -1;
}

}  // namespace

// Two TD vCPUs (tests/mmu/traces/22_huge_v3_2vcpu.jsonl): a 2M ACCEPT, a 4K
// ACCEPT in another frame, an access before ACCEPT (a non-Linux guest; the
// trace needs mmu.tdx_pending_access=count) and a 4K ACCEPT inside that
// access's page, then teardown. Under v3 the access maps 2M and the ACCEPT
// splits it, so teardown removes 1 (2M) + 1 + 512 leaves; under rfc-v1 the
// access maps 4K, so it removes 1 (2M) + 1 + 2.
TEST_CASE("v3 against rfc-v1 on a 2-vCPU TD: the split and the teardown's removals and WBINVDs", "[tdx][huge]") {
  const std::string count = "--set mmu.tdx_pending_access=count --set mmu.tdx_huge_pages=";
  const std::string v3 = stats_of("22_huge_v3_2vcpu.jsonl", count + "v3");
  const std::string v1 = stats_of("22_huge_v3_2vcpu.jsonl", count + "rfc-v1");
  CHECK(phase_counter(v3, "run", "kvm.tdx.accept_splits") == 1);
  CHECK(phase_counter(v3, "run", "seam.calls.tdh_mem_page_demote") == 1);
  CHECK(phase_counter(v1, "run", "seam.calls.tdh_mem_page_demote") == 0);
  // The split's TRACK kicks both vCPUs (one kick_all); when it meets the
  // other vCPU's VP.ENTER (BUSY) tdh_do_no_vcpus kicks once more and retries.
  CHECK(phase_counter(v3, "run", "seam.calls.tdh_mem_range_block") == 1);
  CHECK(phase_counter(v3, "run", "kvm.tdx.kicks") == 1 + phase_counter(v3, "run", "kvm.tdx.busy_kicks"));
  CHECK(phase_counter(v1, "run", "kvm.tdx.kicks") == 0);
  CHECK(phase_counter(v3, "teardown", "seam.calls.tdh_mem_page_remove") == 514);
  CHECK(phase_counter(v1, "teardown", "seam.calls.tdh_mem_page_remove") == 4);
  // Per removed leaf one WBINVD, 512 for the 2M one; then the TDR's.
  CHECK(phase_counter(v3, "teardown", "seam.calls.tdh_phymem_page_wbinvd") == 513 + 512 + 1);
  CHECK(phase_counter(v1, "teardown", "seam.calls.tdh_phymem_page_wbinvd") == 4 + 1);
  CHECK(phase_counter(v3, "teardown", "seam.calls.tdh_vp_flush") == 2);
}

// The same trace under mmu.tdx_huge_pages=v5 (RFC v5, with the module's
// ENHANCE_DEMOTE_INTERRUPTIBILITY; tests/mmu/27 has the 1-vCPU cases): every
// SEAMCALL count is v3's; tdx_handle_mismatched_accept (41/45) takes the
// write mmu_lock on each of the three ACCEPT exits (no frame was inhibited
// yet: 2M at 0x200000 inhibits the 1G frame, the 4K ones their 2M frames),
// where v3 took it only for the split.
TEST_CASE("v5 on a 2-vCPU TD: v3's SEAMCALLs, the write mmu_lock on each ACCEPT exit", "[tdx][huge]") {
  const std::string count = "--set mmu.tdx_pending_access=count --set seam.enhance_demote_interruptibility=true "
                            "--set mmu.tdx_huge_pages=";
  const std::string v3 = stats_of("22_huge_v3_2vcpu.jsonl", count + "v3");
  const std::string v5 = stats_of("22_huge_v3_2vcpu.jsonl", count + "v5");
  for (const char* phase : {"run", "teardown"})
    for (const char* leaf : Calls::kLeaves) {
      if (std::string(leaf) == "kvm.mmu_lock.write_acquisitions") continue;
      INFO(phase << " " << leaf);
      CHECK(phase_counter(v5, phase, leaf) == phase_counter(v3, phase, leaf));
    }
  CHECK(phase_counter(v5, "run", "seam.calls.tdh_mem_page_demote") == 1);
  CHECK(phase_counter(v5, "teardown", "seam.calls.tdh_mem_page_remove") == 514);
  CHECK(phase_counter(v3, "run", "kvm.mmu_lock.write_acquisitions") == 1);
  CHECK(phase_counter(v5, "run", "kvm.mmu_lock.write_acquisitions") == 3);
}

// A host interrupt pending while the guest ACCEPTs a 2M PENDING page: the
// module zeroes a 4K chunk, keeps its progress in the entry and exits
// (tdg_mem_page_accept.c); KVM takes the external-interrupt exit and
// re-enters, and the guest's repeated TDCALL finishes the page.
TEST_CASE("an ACCEPT stopped by a host interrupt is repeated after re-entry and finishes the 2M page",
          "[tdx][huge][accept]") {
  TdVm t(false, "v3");
  t.vm.kvm->td_finalize();
  t.fault(0x600000);  // v3: the access AUGs the 2M page, PENDING
  REQUIRE(t.vm.kvm->private_mapping(0x600000)->level == PG_LEVEL_2M);
  Calls calls(t.vm);
  u64 st = 0;
  t.vm.kvm->td_accept(0, 0x600000, TdxLevel{1}, &st, /*interrupt=*/true);
  CHECK(st == seam::TDX_SUCCESS);
  CHECK(calls("seam.calls.tdg_mem_page_accept") == 2);  // stopped once, then finished
  CHECK(t.vm.stat("kvm.tdx.accept_interrupted") == 1);
  CHECK(t.sept_state(0x600000) == int(SeptState::MAPPED));
  CHECK(t.sept_state(0x7ff000) == int(SeptState::MAPPED));
  t.vm.require_clean();
}
