#include "model/phys_mem.h"

#include <cstring>
#include <string>

namespace septsim::model {

PhysMem::PhysMem(u64 limit_bytes) : limit_frames_(limit_bytes >> kPageShift) { content_.emplace_back(); }

Pfn PhysMem::bump(u64 frames, u64 align) {
  u64 start = (next_ + align - 1) & ~(align - 1);
  if (start + frames > limit_frames_)
    throw OutOfHostMemory("host memory exhausted (" + std::to_string(limit_frames_ >> 8) +
                          " MiB limit, config key host.mem_gib)");
  for (u64 p = next_; p < start; ++p) free_[0].push_back(p);  // alignment slack stays usable
  next_ = start + frames;
  if (meta_.size() < next_) meta_.resize(next_);
  return start;
}

Pfn PhysMem::alloc(int level) {
  int order = level - 1;
  u64 frames = pages_per_level(level);
  Pfn pfn;
  if (!free_[order].empty()) {
    pfn = free_[order].back();
    free_[order].pop_back();
  } else {
    pfn = bump(frames, frames);
  }
  for (u64 i = 0; i < frames; ++i) {
    FrameMeta& m = meta_[pfn + i];
    m = FrameMeta{};
    m.allocated = true;
  }
  allocated_ += frames;
  return pfn;
}

void PhysMem::release_contents(Pfn pfn) {
  FrameMeta& m = meta_[pfn];
  if (m.content) {
    free_content_.push_back(m.content);
    m.content = 0;
  }
}

void PhysMem::free(Pfn pfn, int level) {
  u64 frames = pages_per_level(level);
  for (u64 i = 0; i < frames; ++i) {
    release_contents(pfn + i);
    meta_[pfn + i] = FrameMeta{};
  }
  allocated_ -= frames;
  free_[level - 1].push_back(pfn);
}

u64* PhysMem::table_of(Pfn pfn) {
  FrameMeta& m = meta_[pfn];
  if (!m.content) {
    if (!free_content_.empty()) {
      m.content = free_content_.back();
      free_content_.pop_back();
      std::memset(content_[m.content].get(), 0, kPageSize);
    } else {
      m.content = u32(content_.size());
      content_.emplace_back(new u64[kPtesPerTable]());
    }
  }
  return content_[m.content].get();
}

}  // namespace septsim::model
