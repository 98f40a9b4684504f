#include "model/phys_mem.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

namespace septsim::model {

PhysMem::PhysMem(u64 limit_bytes) : limit_frames_(limit_bytes >> kPageShift) {}

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
    reset_meta(pfn + i);
    meta_[pfn + i].allocated = 1;
  }
  allocated_ += frames;
  return pfn;
}

void PhysMem::reset_meta(Pfn pfn) {
  if (meta_[pfn].tag == kTagSpilled) spilled_tags_.erase(pfn);
  meta_[pfn] = FrameMeta{};
}

void PhysMem::set_tag(Pfn pfn, u64 tag) {
  FrameMeta& m = meta_[pfn];
  if (tag < kTagSpilled) {
    if (m.tag == kTagSpilled) spilled_tags_.erase(pfn);
    m.tag = u32(tag);
  } else {
    spilled_tags_[pfn] = tag;
    m.tag = kTagSpilled;
  }
}

void PhysMem::ArenaFree::operator()(u64* p) const { std::free(p); }

u64* PhysMem::new_contents() {
  constexpr size_t kArenaBytes = size_t{2} << 20;
  if (arena_used_ == kPtesPerTable) {
    void* p = std::aligned_alloc(kArenaBytes, kArenaBytes);
    if (!p) throw std::bad_alloc();
    madvise(p, kArenaBytes, MADV_HUGEPAGE);  // a hint: without THP it is just memory
    arenas_.emplace_back(static_cast<u64*>(p));
    arena_used_ = 0;
  }
  u64* c = arenas_.back().get() + arena_used_++ * kPtesPerTable;
  std::memset(c, 0, kPageSize);
  ++contents_allocated_;
  return c;
}

u64*& PhysMem::content_slot(Pfn pfn) {
  size_t hi = pfn >> 9;
  if (hi >= content_dir_.size()) content_dir_.resize(hi + 1);
  if (!content_dir_[hi]) content_dir_[hi] = std::make_unique<ContentBlock>();
  return (*content_dir_[hi])[pfn & 511];
}

void PhysMem::release_contents(Pfn pfn) {
  if ((pfn >> 9) >= content_dir_.size() || !content_dir_[pfn >> 9]) return;
  u64*& c = content_slot(pfn);
  if (c) {
    free_content_.push_back(c);
    c = nullptr;
  }
}

void PhysMem::free(Pfn pfn, int level) {
  u64 frames = pages_per_level(level);
  if (!is_allocated(pfn)) {
    if (bad_frees_.size() < kMaxBadFrees) bad_frees_.push_back(pfn);
    return;
  }
  for (auto& [id, fn] : release_listeners_) fn(pfn, frames);
  for (u64 i = 0; i < frames; ++i) {
    release_contents(pfn + i);
    reset_meta(pfn + i);
  }
  allocated_ -= frames;
  free_[level - 1].push_back(pfn);
}

bool PhysMem::any_contents(Pfn first, u64 frames) const {
  for (Pfn p = first; p < first + frames; ++p) {
    if ((p >> 9) >= content_dir_.size()) return false;
    const ContentBlock* blk = content_dir_[p >> 9].get();
    if (!blk)
      p |= 511;  // none in this 2 MiB region
    else if ((*blk)[p & 511])
      return true;
  }
  return false;
}

u64 PhysMem::add_release_listener(ReleaseListener fn) {
  release_listeners_.emplace(next_listener_, std::move(fn));
  return next_listener_++;
}

u64* PhysMem::table_of(Pfn pfn) {
  u64*& c = content_slot(pfn);
  if (!c) {
    if (!free_content_.empty()) {
      c = free_content_.back();
      free_content_.pop_back();
      std::memset(c, 0, kPageSize);
    } else {
      c = new_contents();
    }
  }
  return c;
}

}  // namespace septsim::model
