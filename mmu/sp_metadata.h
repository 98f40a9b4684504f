// Bytes of struct kvm_mmu_page metadata for the pages the model holds, under
// the layout chosen by mmu.sp_layout (mmu/sp_layout.h): per shadow page, in
// total, at peak and per GiB of guest memory mapped by present leaves.
#pragma once
#include "model/stats.h"

namespace septsim::mmu {

class SpMetadataStats {
 public:
  explicit SpMetadataStats(model::StatsRegistry& r)
      : bytes_per_sp_(r.gauge("kvm.sp_meta.bytes_per_sp", "sizeof(struct kvm_mmu_page) under mmu.sp_layout")),
        bytes_(r.gauge("kvm.sp_meta.bytes", "struct kvm_mmu_page bytes for the MMU pages in use")),
        bytes_peak_(r.gauge("kvm.sp_meta.bytes_peak", "most struct kvm_mmu_page bytes in use at any time")),
        mapped_mib_(r.gauge("kvm.sp_meta.mapped_mib", "guest memory mapped by present leaf SPTEs, MiB (rounded down)")),
        bytes_per_mapped_gib_(r.gauge("kvm.sp_meta.bytes_per_mapped_gib",
                                      "struct kvm_mmu_page bytes per GiB mapped by present leaves (0: none mapped)")) {}

  void set_bytes_per_sp(u64 b) {
    bytes_per_sp_ = b;
    update();
  }
  void set_sps(u64 n) {
    sps_ = n;
    update();
  }
  void set_mapped_bytes(u64 b) {
    mapped_ = b;
    update();
  }

 private:
  void update();

  u64& bytes_per_sp_;
  u64& bytes_;
  u64& bytes_peak_;
  u64& mapped_mib_;
  u64& bytes_per_mapped_gib_;
  u64 sps_ = 0;     // MMU pages in use, roots included
  u64 mapped_ = 0;  // bytes mapped by present leaves over all roots
};

}  // namespace septsim::mmu
