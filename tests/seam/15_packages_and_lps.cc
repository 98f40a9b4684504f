// Packages and logical processors (intel/tdx-module TDX 1.5):
// tdh_mng_key_config.c (tdh_mng_key_config: one call per package, TDR.
// PKG_CONFIG_BITMAP), tdh_mng_vpflushdone.c (WBINVD_BITMAP = every package),
// tdh_phymem_cache_wb.c (tdh_phymem_cache_wb: the package's WBT entry, its
// own bit), tdh_mng_key_freeid.c (WBINVD_BITMAP must be 0), helpers.c
// (associate_vcpu, associate_vcpu_initial) and tdh_vp_flush.c (ASSOC_LPID
// must be the current LP). Expected statuses are the constants of
// include/auto_gen/tdx_error_codes_defs.h.
#include <catch2/catch.hpp>

#include "tests/seam/module_status_codes.h"
#include "tests/seam/seam_env.h"

using namespace septsim;
using namespace septsim::seamtest;

namespace {

using namespace golden;

// Two packages of four LPs: LPs 0-3 on package 0, 4-7 on package 1.
model::Config two_packages() {
  model::Config c = make_config(false);
  c.set("host.packages", "2");
  c.set("host.lps_per_package", "4");
  return c;
}

}  // namespace

TEST_CASE("KEY.CONFIG runs once per package and the keys are configured only when every package has run it", "[seam]") {
  SeamEnv env(two_packages(), 1, false);
  const Hpa tdr = env.page();
  REQUIRE(env.call(Leaf::TDH_MNG_CREATE, tdr, 1) == TDX_SUCCESS);
  CHECK(env.call_on(0, Leaf::TDH_MNG_KEY_CONFIG, tdr) == TDX_SUCCESS);
  CHECK(env.tdx.td(tdr)->lifecycle == Lifecycle::TD_HKID_ASSIGNED);
  // Package 0 again, from another of its LPs: the bit is set already.
  CHECK(env.call_on(3, Leaf::TDH_MNG_KEY_CONFIG, tdr) == kKeyConfigured);
  // tdh_mng_add_cx.c: the life cycle is still HKID_ASSIGNED.
  CHECK(env.call(Leaf::TDH_MNG_ADDCX, env.page(), tdr) == kTdKeysNotConfigured);
  CHECK(env.call_on(4, Leaf::TDH_MNG_KEY_CONFIG, tdr) == TDX_SUCCESS);
  CHECK(env.tdx.td(tdr)->lifecycle == Lifecycle::TD_KEYS_CONFIGURED);
  // Configured everywhere: the life-cycle check comes first now.
  CHECK(env.call_on(5, Leaf::TDH_MNG_KEY_CONFIG, tdr) == kLifecycleIncorrect);
  CHECK(env.call(Leaf::TDH_MNG_ADDCX, env.page(), tdr) == TDX_SUCCESS);
}

TEST_CASE("LP numbers wrap over the packages: LP 8 of two 4-LP packages is on package 0", "[seam]") {
  SeamEnv env(two_packages(), 1, false);
  CHECK(env.tdx.package_of(0) == 0);
  CHECK(env.tdx.package_of(3) == 0);
  CHECK(env.tdx.package_of(4) == 1);
  CHECK(env.tdx.package_of(8) == 0);
  CHECK(env.tdx.package_of(SeamcallTxn::kUnnamedLp) == 0);
}

TEST_CASE("build_td configures the key on every package", "[seam]") {
  SeamEnv env(two_packages(), 1, true);
  CHECK(env.state().lifecycle == Lifecycle::TD_KEYS_CONFIGURED);
  CHECK(env.state().pkg_config_bitmap == 3);
}

TEST_CASE("KEY.FREEID waits for CACHE.WB on every package, and each package resumes only its own write-back", "[seam]") {
  SeamEnv env(two_packages(), 1, true);
  REQUIRE(env.call(Leaf::TDH_VP_FLUSH, env.td.tdvpr[0]) == TDX_SUCCESS);
  REQUIRE(env.call(Leaf::TDH_MNG_VPFLUSHDONE, env.td.tdr) == TDX_SUCCESS);
  CHECK(env.call_on(1, Leaf::TDH_PHYMEM_CACHE_WB, 0) == TDX_SUCCESS);
  CHECK(env.call(Leaf::TDH_MNG_KEY_FREEID, env.td.tdr) == kWbcacheNotComplete);  // package 1 has not
  CHECK(env.call_on(6, Leaf::TDH_PHYMEM_CACHE_WB, 0, 0, true) == kInterruptedResumable);
  // Package 0's WBT entry holds no interrupted write-back.
  CHECK(env.call_on(2, Leaf::TDH_PHYMEM_CACHE_WB, 1) == kWbcacheResumeError);
  CHECK(env.call(Leaf::TDH_MNG_KEY_FREEID, env.td.tdr) == kWbcacheNotComplete);
  CHECK(env.call_on(7, Leaf::TDH_PHYMEM_CACHE_WB, 1) == TDX_SUCCESS);
  CHECK(env.call(Leaf::TDH_MNG_KEY_FREEID, env.td.tdr) == TDX_SUCCESS);
}

TEST_CASE("a vCPU VP.INITed on one LP is ASSOCIATED for VP.ENTER and NOT_ASSOCIATED for VP.FLUSH elsewhere", "[seam]") {
  SeamEnv env(make_config(false), 1, true, 3);
  REQUIRE(env.finalize() == TDX_SUCCESS);
  const Hpa v = env.td.tdvpr[0];
  CHECK(env.call_on(1, Leaf::TDH_VP_ENTER, v) == kVcpuAssociated);
  CHECK(env.call_on(1, Leaf::TDH_VP_FLUSH, v) == kVcpuNotAssociated);
  CHECK(env.call_on(3, Leaf::TDH_VP_ENTER, v) == TDX_SUCCESS);
  env.exit(0);
  CHECK(env.call_on(3, Leaf::TDH_VP_FLUSH, v) == TDX_SUCCESS);
  CHECK(env.call_on(3, Leaf::TDH_VP_FLUSH, v) == kVcpuNotAssociated);  // a second flush
  // Flushed: the next VP.ENTER associates it with its own LP.
  CHECK(env.call_on(1, Leaf::TDH_VP_ENTER, v) == TDX_SUCCESS);
  env.exit(0);
  CHECK(env.call_on(3, Leaf::TDH_VP_FLUSH, v) == kVcpuNotAssociated);
  CHECK(env.call_on(1, Leaf::TDH_VP_FLUSH, v) == TDX_SUCCESS);
}

TEST_CASE("host.packages outside 1..64 and host.lps_per_package 0 are refused", "[seam]") {
  for (const char* bad : {"0", "65"}) {
    model::Config c = make_config(false);
    c.set("host.packages", bad);
    CHECK_THROWS_AS(SeamEnv(c, 1, false), model::ConfigError);
  }
  model::Config c = make_config(false);
  c.set("host.lps_per_package", "0");
  CHECK_THROWS_AS(SeamEnv(c, 1, false), model::ConfigError);
}
