// TDH.MNG.INIT reads TD_PARAMS from the shared page at RDX and refuses bad
// fields with TDX_OPERAND_INVALID + the field's operand id (tdh_mng_init.c;
// operand ids 64..71 of the 1.5 tdx_error_codes_defs.h).
#include <catch2/catch.hpp>
#include <functional>

#include "tests/seam/seam_env.h"

using namespace septsim;
using namespace septsim::seamtest;

namespace {

// Builds a TD whose MNG.INIT reads `p`; returns the build result.
TdBuildResult build_with(SeamEnv& env, const TdParams& p, u32 vcpus = 1) {
  TdCreateParams cp;
  cp.vcpus = vcpus;
  cp.td_params = p;
  return build_td(env.tdx, env.mem, env.dpamt, cp, env.td);
}

}  // namespace

TEST_CASE("MNG.INIT takes GPAW and the Secure-EPT walk length from TD_PARAMS", "[seam]") {
  SeamEnv env(false, 1, false, "52");
  REQUIRE(build_with(env, td_params_for(52, 5, 1)).status == TDX_SUCCESS);
  CHECK(env.state().gpaw == 52);
  CHECK(env.state().ept_levels == 5);
  CHECK(env.state().shared_bit() == 51);
  CHECK(env.state().sept->top_level() == 4);
  CHECK(env.state().op_state == OpState::INITIALIZED);
}

TEST_CASE("MNG.INIT refuses each invalid TD_PARAMS field with its operand id and stays UNINITIALIZED", "[seam]") {
  struct Bad {
    const char* what;
    std::function<void(TdParams&)> spoil;
    Status want;
  };
  const Bad cases[] = {
      {"ATTRIBUTES bit 1", [](TdParams& p) { p.attributes |= 2; }, 0xC000010000000040ull},
      {"XFAM without SSE", [](TdParams& p) { p.xfam = 1; }, 0xC000010000000041ull},
      {"XFAM AVX-512 without AVX", [](TdParams& p) { p.xfam |= 0xE0; }, 0xC000010000000041ull},
      {"MAX_VCPUS 0", [](TdParams& p) { p.max_vcpus = 0; }, 0xC000010000000044ull},
      {"MAX_VCPUS 577", [](TdParams& p) { p.max_vcpus = 577; }, 0xC000010000000044ull},
      {"NUM_L2_VMS 4", [](TdParams& p) { p.num_l2_vms = 4; }, 0xC000010000000047ull},
      {"NUM_L2_VMS 1 (no TDCS pages for it)", [](TdParams& p) { p.num_l2_vms = 1; }, TDX_TDCS_NOT_ALLOCATED},
      {"a reserved byte", [](TdParams& p) { p.reserved_set = true; }, 0xC000010000000002ull},
      {"CONFIG_FLAGS bit 3", [](TdParams& p) { p.config_flags |= 8; }, 0xC000010000000042ull},
      {"EPTP memory type UC", [](TdParams& p) { p.eptp_controls &= ~7ull; }, 0xC000010000000043ull},
      {"EPTP 3-level walk", [](TdParams& p) { p.eptp_controls = 6 | (2 << 3); }, 0xC000010000000043ull},
      {"EPTP A/D enabled", [](TdParams& p) { p.eptp_controls |= 1 << 6; }, 0xC000010000000043ull},
      {"EPTP base address", [](TdParams& p) { p.eptp_controls |= 0x1000; }, 0xC000010000000043ull},
      {"GPAW 52 with a 4-level EPT", [](TdParams& p) { p.config_flags |= 1; }, 0xC000010000000043ull},
      {"TSC_FREQUENCY 75 MHz", [](TdParams& p) { p.tsc_frequency = 3; }, 0xC000010000000046ull},
      {"TSC_FREQUENCY 10.025 GHz", [](TdParams& p) { p.tsc_frequency = 401; }, 0xC000010000000046ull},
  };
  for (const Bad& b : cases) {
    INFO(b.what);
    SeamEnv env(false, 1, false);
    TdParams p = td_params_for(48, 4, 1);
    b.spoil(p);
    const TdBuildResult r = build_with(env, p);
    CHECK(r.status == b.want);
    CHECK(r.failed_leaf == "TDH.MNG.INIT");
    CHECK(env.state().op_state == OpState::UNINITIALIZED);
  }
}

TEST_CASE("TD_PARAMS at an unaligned or private HPA is refused with TDX_OPERAND_INVALID|RDX", "[seam]") {
  SeamEnv env(false, 1, false);
  const Hpa tdr = env.page();
  REQUIRE(env.call(Leaf::TDH_MNG_CREATE, tdr, 7) == TDX_SUCCESS);
  REQUIRE(env.call(Leaf::TDH_MNG_KEY_CONFIG, tdr) == TDX_SUCCESS);
  for (unsigned i = 0; i < env.tdx.tdcs_pages(); ++i)
    REQUIRE(env.call(Leaf::TDH_MNG_ADDCX, env.page(), tdr) == TDX_SUCCESS);
  const Hpa params = env.page();
  env.tdx.write_td_params(params + 512, td_params_for(48, 4, 1));
  CHECK(env.call(Leaf::TDH_MNG_INIT, tdr, params + 512) == with_operand(TDX_OPERAND_INVALID, operand::RDX));
  env.tdx.write_td_params(keyed_hpa(params, 3), td_params_for(48, 4, 1));
  CHECK(env.call(Leaf::TDH_MNG_INIT, tdr, keyed_hpa(params, 3)) == with_operand(TDX_OPERAND_INVALID, operand::RDX));
  // A page nobody wrote reads as zeroes: XFAM lacks x87/SSE.
  CHECK(env.call(Leaf::TDH_MNG_INIT, tdr, params) == with_operand(TDX_OPERAND_INVALID, operand::XFAM));
  env.tdx.write_td_params(params, td_params_for(48, 4, 1));
  CHECK(env.call(Leaf::TDH_MNG_INIT, tdr, params) == TDX_SUCCESS);
}

// tdh_vp_init.c (tdh_vp_init): NUM_VCPUS counts initialized vCPUs, so
// VP.CREATE and VP.ADDCX of a vCPU beyond MAX_VCPUS succeed and VP.INIT refuses.
TEST_CASE("VP.INIT beyond TD_PARAMS.MAX_VCPUS returns TDX_MAX_VCPUS_EXCEEDED", "[seam]") {
  SeamEnv env(false, 1, false);
  REQUIRE(build_with(env, td_params_for(48, 4, 2), 2).status == TDX_SUCCESS);
  const Hpa tdvpr = env.page();
  REQUIRE(env.call(Leaf::TDH_VP_CREATE, tdvpr, env.td.tdr) == TDX_SUCCESS);
  for (unsigned i = 0; i < env.tdx.tdcx_per_vcpu(); ++i)
    REQUIRE(env.call(Leaf::TDH_VP_ADDCX, env.page(), tdvpr) == TDX_SUCCESS);
  // tdx_error_codes_defs.h (1.5): TDX_MAX_VCPUS_EXCEEDED = 0xC000070500000000.
  CHECK(env.call(Leaf::TDH_VP_INIT, tdvpr) == 0xC000070500000000ull);
  CHECK(env.state().vcpus.size() == 3);
}

// verify_and_set_td_eptp_controls (helpers.c): a 5-level EPT needs the
// platform's MAX_PA to be at least MIN_PA_FOR_PML5 = 49 bits.
TEST_CASE("a 5-level Secure EPT is refused on a platform with MAXPHYADDR below 49", "[seam]") {
  SeamEnv narrow(false, 1, false, "48");
  CHECK(build_with(narrow, td_params_for(48, 5, 1)).status == 0xC000010000000043ull);  // OPERAND_INVALID|EPTP_CONTROLS
  SeamEnv wide(false, 1, false, "49");
  CHECK(build_with(wide, td_params_for(48, 5, 1)).status == TDX_SUCCESS);
}
