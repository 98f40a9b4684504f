// The host's backing of one memslot's userspace range (hva -> pfn), the part
// of the primary MMU that GUP and host_pfn_mapping_level() see. Memory is
// allocated from PhysMem on first touch, one backing-sized block at a time
// (4K page, THP 2M or hugetlbfs 1G). A block whose aligned hva range is not
// wholly inside the slot's range (head or tail) is backed by 4K pages, so its
// host mapping level is 4K.
#pragma once
#include <cstdlib>
#include <memory>
#include <vector>

#include "model/phys_mem.h"
#include "model/types.h"

namespace septsim::mmu {

class HostMemory {
 public:
  HostMemory(model::PhysMem& mem, u64 hva, u64 size, int backing_level);
  ~HostMemory();
  HostMemory(const HostMemory&) = delete;
  HostMemory& operator=(const HostMemory&) = delete;

  u64 hva_start() const { return start_; }
  u64 hva_end() const { return end_; }
  int backing_level() const { return level_; }

  // hva_to_pfn: the 4K frame backing `hva`, allocating its block if needed.
  // *allocs counts PhysMem allocations made (0 or 1).
  Pfn faultin(u64 hva, u64* allocs);
  // The frame backing `hva` if already faulted in, else 0.
  Pfn lookup(u64 hva) const;
  // host_pfn_mapping_level: the size of the host mapping of `hva`; 4K when
  // nothing is mapped there yet.
  int mapping_level(u64 hva) const;
  // The host migrates the block holding `hva` (a 4K page, or the whole THP /
  // hugetlbfs block) to newly allocated frames with the same contents and
  // frees the old ones, as migrate_pages() does after the mmu_notifier
  // invalidation. Returns the new frame backing `hva`, 0 if nothing backed it.
  Pfn migrate(u64 hva);

 private:
  struct FreeDeleter {
    void operator()(u32* p) const { std::free(p); }
  };
  u64 block_index(u64 hva) const { return (hva >> level_shift(level_)) - (start_ >> level_shift(level_)); }
  bool block_whole(u64 block) const;
  u32* edge_pages(u64 block);  // `block` is an edge block

  model::PhysMem& mem_;
  u64 start_, end_;
  int level_;
  u64 nblocks_;
  // Base pfn per whole block (0 = not yet faulted in). calloc'ed so that a
  // large, sparsely touched slot costs no resident memory.
  std::unique_ptr<u32[], FreeDeleter> block_pfn_;
  // 4K pfns of the (at most two) partial blocks at the ends of the range.
  u64 edge_block_[2] = {~0ull, ~0ull};
  std::vector<u32> edge_[2];
};

}  // namespace septsim::mmu
