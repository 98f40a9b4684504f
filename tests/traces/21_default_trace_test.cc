// The bundled default trace shows the whole model (a normal VM and a TD), and
// traces with several VMs replay each VM as if it ran alone.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_util.h"

using namespace septsim::test;
namespace fs = std::filesystem;

namespace {

nlohmann::json replay_stats(const std::string& trace, const std::string& extra = "") {
  auto stats = temp_dir() / "s.json";
  auto r = run_septsim("replay " + trace + " --check -q --stats " + stats.string() + " " + extra);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(slurp(stats));
}

// Sum of "<prefix>vcpuN.<suffix>" over the vCPUs.
unsigned long long per_vcpu(const nlohmann::json& c, const std::string& prefix, const std::string& suffix) {
  unsigned long long n = 0;
  for (int i = 0; i < 8; ++i)
    if (auto it = c.find(prefix + "vcpu" + std::to_string(i) + "." + suffix); it != c.end()) n += it->get<unsigned long long>();
  return n;
}

}  // namespace

TEST_CASE("the default trace runs a normal VM and a TD through every layer", "[replay][default]") {
  auto j = replay_stats(sample_trace());
  CHECK(j["invariant_violations"].empty());
  REQUIRE(j["vms"].size() == 2);
  CHECK(j["vms"][0]["vm_type"] == "default");
  CHECK(j["vms"][1]["vm_type"] == "tdx");
  CHECK(j["vms"][1]["prefix"] == "vm1.");
  const auto& c = j["stats"]["total"]["counters"];
  // VM 0: 1D and 2D walks, TLB hits, EPT violations.
  CHECK(per_vcpu(c, "", "walk.walks_1d") > 0);
  CHECK(per_vcpu(c, "", "walk.walks_2d") > 0);
  CHECK(per_vcpu(c, "", "tlb_hits") > 0);
  CHECK(per_vcpu(c, "", "ept_violations") > 0);
  // VM 1: Secure-EPT walks, TLB hits, EPT violations (its shared accesses) and TD exits.
  CHECK(per_vcpu(c, "vm1.", "walks") > 0);
  CHECK(per_vcpu(c, "vm1.", "tlb_hits") > 0);
  CHECK(per_vcpu(c, "vm1.", "ept_violations") > 0);
  CHECK(c["seam.td_exits"].get<unsigned long long>() > 0);
  // One SEAMCALL at least of each leaf KVM uses for a TD's memory, from
  // creation to teardown (arch/x86/kvm/vmx/tdx.c: tdx_td_init,
  // tdx_td_vcpu_init, tdx_gmem_post_populate, tdx_td_finalize,
  // tdx_sept_link_private_spt, tdx_mem_page_aug, tdx_sept_remove_private_spte,
  // tdx_track, tdx_mmu_release_hkid, tdx_reclaim_page).
  for (const char* leaf : {"tdh_mng_create", "tdh_mng_key_config", "tdh_mng_addcx", "tdh_mng_init", "tdh_vp_create",
                           "tdh_vp_addcx", "tdh_vp_init", "tdh_mem_sept_add", "tdh_mem_page_add", "tdh_mr_extend",
                           "tdh_mr_finalize", "tdh_vp_enter", "tdh_mem_page_aug", "tdh_mem_range_block",
                           "tdh_mem_track", "tdh_mem_page_remove", "tdh_phymem_page_wbinvd", "tdh_vp_flush",
                           "tdh_mng_vpflushdone", "tdh_phymem_cache_wb", "tdh_mng_key_freeid",
                           "tdh_phymem_page_reclaim"}) {
    INFO(leaf);
    CHECK(c["seam.calls." + std::string(leaf)].get<unsigned long long>() > 0);
    CHECK(c["seam.leaf_cycles." + std::string(leaf)].get<unsigned long long>() > 0);
  }
  // The 64 KiB image: one PAGE.ADD per 4K page and one MR.EXTEND per 256
  // bytes (tdx_gmem_post_populate, TDX_EXTENDMR_CHUNKSIZE).
  CHECK(c["seam.calls.tdh_mem_page_add"] == 16);
  CHECK(c["seam.calls.tdh_mr_extend"] == 16 * 4096 / 256);
  // The merged kernel maps private memory at 4K only (tdx_gmem_max_mapping_level),
  // so the guest redoes its one 2M ACCEPT as 4K ACCEPTs.
  CHECK(c["vm1.replay.accept_2m_fallbacks"] == 1);
  CHECK(c["seam.calls.tdh_mem_page_promote"] == 0);
  // Each VM has its own derived metrics; only the TD's have the TDX block.
  const auto& total = j["stats"]["total"];
  CHECK_FALSE(total["derived"].contains("tdx.seamcalls"));
  REQUIRE(total["vm_derived"].contains("vm1"));
  CHECK(total["vm_derived"]["vm1"]["tdx.seamcalls.tdh_mem_page_aug"] == c["seam.calls.tdh_mem_page_aug"]);
  CHECK(total["vm_derived"]["vm1"]["accesses"].get<unsigned long long>() ==
        per_vcpu(c, "vm1.", "accesses_gpa") + per_vcpu(c, "vm1.", "accesses_gva"));
  // The TD's pages over time: they grow with the image and the ACCEPTs and
  // end at zero after the teardown.
  const auto& s = j["td_series"];
  REQUIRE(s["time_ns"].size() > 10);
  unsigned long long peak = 0;
  for (const auto& v : s["private_pages"]) peak = std::max(peak, v.get<unsigned long long>());
  CHECK(peak >= 16 + 8 + 512);
  CHECK(s["private_pages"].back() == 0);
  CHECK(s["sept_pages"].back() == 0);
}

TEST_CASE("the default run's summary has a block per VM and the TDX module's", "[replay][default]") {
  auto r = run_septsim("replay " + sample_trace() + " --check");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto vm0 = r.out.find("VM 0: normal VM, 2 vCPUs");
  auto vm1 = r.out.find("VM 1: TD, 2 vCPUs, statistics vm1.*");
  auto tdx = r.out.find(" TDX module");
  REQUIRE(vm0 != std::string::npos);
  REQUIRE(vm1 != std::string::npos);
  REQUIRE(tdx != std::string::npos);
  CHECK(vm0 < vm1);
  CHECK(vm1 < tdx);
  CHECK(r.out.find("TDH.MEM.PAGE.AUG", tdx) != std::string::npos);
  CHECK(r.out.find("Secure-EPT pages", tdx) != std::string::npos);
  CHECK(r.out.find("invariants: 0 broken") != std::string::npos);
}

TEST_CASE("a VM replays the same beside another VM as alone", "[replay][vms]") {
  const std::string vm_events = R"(
{"type":"memslot_add","vm":V,"slot":0,"gpa":"0x0","size":"64M","backing":"thp"}
{"type":"memslot_add","vm":V,"slot":1,"gpa":"0x4000000","size":"16M","backing":"4k"}
{"type":"access","vm":V,"vcpu":0,"gpa":"0x0","op":"w","count":2048,"stride":"4K"}
{"type":"access","vm":V,"vcpu":1,"gpa":"0x4000000","op":"r","count":1024,"stride":"4K"}
{"type":"dirty_log","vm":V,"slot":0,"op":"enable"}
{"type":"access","vm":V,"vcpu":0,"gpa":"0x0","op":"w","count":512,"stride":"8K"}
{"type":"memslot_delete","vm":V,"slot":1}
{"type":"access","vm":V,"vcpu":1,"gpa":"0x100000","op":"r","count":256,"stride":"4K"}
)";
  auto with_vm = [&](const std::string& v) {
    std::string s = vm_events;
    for (size_t p; (p = s.find("\"vm\":V")) != std::string::npos;) s.replace(p, 6, "\"vm\":" + v);
    return s;
  };
  auto alone = replay_stats(write_trace("{\"type\":\"vm_create\",\"vcpus\":2}\n" + with_vm("0")));
  // VM 1 runs the same events after VM 0 ran others: its own counters match the lone VM's.
  auto both = replay_stats(write_trace(
      "{\"type\":\"vm_create\",\"vcpus\":1}\n{\"type\":\"vm_create\",\"vm\":1,\"vcpus\":2}\n"
      "{\"type\":\"memslot_add\",\"slot\":0,\"gpa\":\"0x0\",\"size\":\"1G\",\"backing\":\"4k\"}\n"
      "{\"type\":\"access\",\"vcpu\":0,\"gpa\":\"0x0\",\"op\":\"w\",\"count\":3000,\"stride\":\"4K\"}\n" +
      with_vm("1")));
  const auto& a = alone["stats"]["total"]["counters"];
  const auto& b = both["stats"]["total"]["counters"];
  size_t compared = 0;
  for (const auto& [name, v] : a.items()) {
    if (!name.starts_with("vcpu") && !name.starts_with("kvm.")) continue;
    if (name.find("cycles") != std::string::npos) continue;  // the shared host's memory may time differently
    // Where lines are served depends on the host frames each VM got and on the shared LLC and DRAM rows.
    if (name.find(".mem.") != std::string::npos) continue;
    INFO(name);
    REQUIRE(b.contains("vm1." + name));
    CHECK(b["vm1." + name] == v);
    ++compared;
  }
  CHECK(compared > 40);
  CHECK(per_vcpu(b, "", "accesses_gpa") == 3000);  // VM 0's own, apart
  CHECK(both["vms"].size() == 2);
}

TEST_CASE("a trace's VMs are declared first, numbered in order, and named by every event", "[replay][vms]") {
  auto err = [](const std::string& body) {
    auto r = run_septsim("replay " + write_trace(body) + " -q");
    CHECK(r.exit_code == 2);
    return r.err;
  };
  const std::string vm0 = "{\"type\":\"vm_create\",\"vcpus\":1}\n";
  CHECK_THAT(err(vm0 + "{\"type\":\"memslot_add\",\"slot\":0,\"gpa\":\"0x0\",\"size\":\"4K\",\"backing\":\"4k\"}\n"
                       "{\"type\":\"vm_create\",\"vm\":1,\"vcpus\":1}\n"),
             Catch::Contains(":4: vm_create after other events (line 3): create every VM at the start of the trace"));
  CHECK_THAT(err(vm0 + "{\"type\":\"vm_create\",\"vm\":2,\"vcpus\":1}\n"),
             Catch::Contains(":3: field 'vm': VM 2 created before VM 1"));
  CHECK_THAT(err(vm0 + "{\"type\":\"vm_create\",\"vcpus\":1}\n"),
             Catch::Contains(":3: second vm_create for VM 0 (the first is on line 2); another VM takes \"vm\":1"));
  CHECK_THAT(err(vm0 + "{\"type\":\"access\",\"vm\":1,\"vcpu\":0,\"gpa\":\"0x0\",\"op\":\"r\"}\n"),
             Catch::Contains(":3: field 'vm': VM 1 was not created"));
  CHECK_THAT(err(vm0 + "{\"type\":\"phase\",\"vm\":0,\"name\":\"x\"}\n"),
             Catch::Contains(":3: field 'vm': phase is not an event of one VM"));
  CHECK_THAT(err(vm0 + "{\"type\":\"vm_create\",\"vm\":1,\"vcpus\":2}\n"
                       "{\"type\":\"access\",\"vcpu\":1,\"gpa\":\"0x0\",\"op\":\"r\"}\n"),
             Catch::Contains(":4: field 'vcpu': 1 is out of range: vm_create of VM 0 declared 1 vCPU"));
  CHECK_THAT(err(vm0 + "{\"type\":\"vm_create\",\"vm\":1,\"vcpus\":1,\"vm_type\":\"tdx\"}\n"
                       "{\"type\":\"td_finalize\"}\n"),
             Catch::Contains(":4: field 'type': needs a TD VM: VM 0 is not one"));
}

TEST_CASE("a trace with several VMs survives the binary format both ways", "[replay][vms][binary]") {
  auto d = temp_dir();
  auto sstb = d / "t.sstb", back = d / "t.jsonl";
  REQUIRE(run_septsim("convert " + sample_trace() + " " + sstb.string()).exit_code == 0);
  REQUIRE(run_septsim("convert " + sstb.string() + " " + back.string()).exit_code == 0);
  auto a = d / "a.json", b = d / "b.json";
  REQUIRE(run_septsim("replay " + sample_trace() + " -q --stats " + a.string()).exit_code == 0);
  REQUIRE(run_septsim("replay " + sstb.string() + " -q --stats " + b.string()).exit_code == 0);
  auto ja = nlohmann::json::parse(slurp(a)), jb = nlohmann::json::parse(slurp(b));
  CHECK(ja["stats"] == jb["stats"]);
  CHECK(slurp(back).find("\"vm\":1") != std::string::npos);
}

TEST_CASE("scripts/report draws the default run's figures", "[replay][default][plot]") {
  auto d = temp_dir();
  auto stats = d / "stats.json";
  REQUIRE(run_septsim("replay " + sample_trace() + " -q --stats " + stats.string()).exit_code == 0);
  std::string cmd = "/usr/bin/python3 " + std::string(SEPTSIM_SOURCE_DIR) + "/scripts/report " + stats.string() +
                    " -o " + (d / "fig").string() + " > " + (d / "out").string() + " 2>&1";
  int rc = std::system(cmd.c_str());
  INFO(slurp(d / "out"));
  REQUIRE(rc == 0);
  for (const char* f : {"tlb_misses_per_phase", "walk_latency", "seamcalls_by_leaf", "td_private_pages"}) {
    INFO(f);
    CHECK(fs::file_size(d / "fig" / (std::string(f) + ".png")) > 5000);
    CHECK(fs::exists(d / "fig" / (std::string(f) + ".svg")));
    CHECK(slurp(d / "out").find(std::string(f) + ".png") != std::string::npos);
  }
}
