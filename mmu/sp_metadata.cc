#include "mmu/sp_metadata.h"

#include <algorithm>

namespace septsim::mmu {

void SpMetadataStats::update() {
  bytes_ = sps_ * bytes_per_sp_;
  bytes_peak_ = std::max(bytes_peak_, bytes_);
  mapped_mib_ = mapped_ >> 20;
  // In 4 KiB units, bytes * 2^18 stays within 64 bits below 2^46 bytes of metadata.
  u64 mapped_pages = mapped_ >> 12;
  bytes_per_mapped_gib_ = mapped_pages ? (bytes_ << 18) / mapped_pages : 0;
}

}  // namespace septsim::mmu
