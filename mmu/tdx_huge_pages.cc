#include "mmu/tdx_huge_pages.h"

#include "model/config.h"

namespace septsim::mmu {

std::unique_ptr<TdxHugePages> TdxHugePages::create(const std::string& value) {
  if (value == "off") return make_tdx_huge_pages_off();
  if (value == "rfc-v1") return make_tdx_huge_pages_rfc_v1();
  if (value == "v3") return make_tdx_huge_pages_v3();
  if (value == "v5") return make_tdx_huge_pages_v5();
  throw model::ConfigError("config key 'mmu.tdx_huge_pages': unknown value '" + value +
                           "' (off = merged kernel, 4K private mappings; rfc-v1 = 2M when a 2M ACCEPT faults; v3 = any fault 2M "
                           "unless the guest inhibited it; v5 = RFC v5 of 2026-01-28, v3's design with the ACCEPT exit of its patch 41)");
}

}  // namespace septsim::mmu
