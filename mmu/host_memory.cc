#include "mmu/host_memory.h"

#include <new>

namespace septsim::mmu {

HostMemory::HostMemory(model::PhysMem& mem, u64 hva, u64 size, int backing_level)
    : mem_(mem), start_(hva), end_(hva + size), level_(backing_level) {
  unsigned shift = level_shift(level_);
  nblocks_ = ((end_ - 1) >> shift) - (start_ >> shift) + 1;
  block_pfn_.reset(static_cast<u32*>(std::calloc(nblocks_, sizeof(u32))));
  if (!block_pfn_) throw std::bad_alloc();
  if (!block_whole(0)) edge_block_[0] = 0;
  if (nblocks_ > 1 && !block_whole(nblocks_ - 1)) edge_block_[1] = nblocks_ - 1;
}

HostMemory::~HostMemory() {
  for (u64 b = 0; b < nblocks_; ++b)
    if (block_pfn_[b]) mem_.free(block_pfn_[b], level_);
  for (auto& pages : edge_)
    for (u32 pfn : pages)
      if (pfn) mem_.free(pfn, PG_LEVEL_4K);
}

bool HostMemory::block_whole(u64 block) const {
  u64 base = ((start_ >> level_shift(level_)) + block) << level_shift(level_);
  return base >= start_ && base + level_size(level_) <= end_;
}

u32* HostMemory::edge_pages(u64 block) {
  int i = edge_block_[0] == block ? 0 : 1;
  if (edge_[i].empty()) edge_[i].assign(pages_per_level(level_), 0);
  return edge_[i].data();
}

Pfn HostMemory::faultin(u64 hva, u64* allocs) {
  u64 b = block_index(hva);
  if (edge_block_[0] != b && edge_block_[1] != b) {
    if (!block_pfn_[b]) {
      block_pfn_[b] = u32(mem_.alloc(level_));
      ++*allocs;
    }
    return block_pfn_[b] + ((hva & (level_size(level_) - 1)) >> kPageShift);
  }
  u32& pfn = edge_pages(b)[(hva >> kPageShift) & (pages_per_level(level_) - 1)];
  if (!pfn) {
    pfn = u32(mem_.alloc(PG_LEVEL_4K));
    ++*allocs;
  }
  return pfn;
}

Pfn HostMemory::lookup(u64 hva) const {
  u64 b = block_index(hva);
  for (int i = 0; i < 2; ++i)
    if (edge_block_[i] == b)
      return edge_[i].empty() ? 0 : edge_[i][(hva >> kPageShift) & (pages_per_level(level_) - 1)];
  return block_pfn_[b] ? block_pfn_[b] + ((hva & (level_size(level_) - 1)) >> kPageShift) : 0;
}

Pfn HostMemory::migrate(u64 hva) {
  const u64 b = block_index(hva);
  const bool edge = edge_block_[0] == b || edge_block_[1] == b;
  u32* slot = edge ? &edge_pages(b)[(hva >> kPageShift) & (pages_per_level(level_) - 1)] : &block_pfn_[b];
  if (!*slot) return 0;
  const int level = edge ? PG_LEVEL_4K : level_;
  const Pfn old_pfn = *slot, new_pfn = mem_.alloc(level);  // allocated before the old frames go
  for (u64 i = 0; i < pages_per_level(level); ++i)
    if (mem_.tag(old_pfn + i)) mem_.set_tag(new_pfn + i, mem_.tag(old_pfn + i));
  mem_.free(old_pfn, level);
  *slot = u32(new_pfn);
  return lookup(hva);
}

int HostMemory::mapping_level(u64 hva) const {
  u64 b = block_index(hva);
  if (edge_block_[0] == b || edge_block_[1] == b || !block_pfn_[b]) return PG_LEVEL_4K;
  return level_;
}

}  // namespace septsim::mmu
