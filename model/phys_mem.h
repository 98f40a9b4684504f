// Host-physical memory: sparse 4 KiB frames with lazily allocated contents,
// a frame allocator (4K, 2M and 1G blocks), a content tag per frame (so a later
// loss of private data can be detected) and an owner cookie per frame (the MMU
// stores the index of the table page's MmuPage there, as KVM uses
// page_private()).
#pragma once
#include <array>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <vector>

#include "model/types.h"

namespace septsim::model {

struct OutOfHostMemory : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class PhysMem {
 public:
  // `limit_bytes`: host memory the allocator may hand out.
  explicit PhysMem(u64 limit_bytes);

  // Allocates 2^(9*(level-1)) contiguous, naturally aligned frames.
  Pfn alloc(int level = PG_LEVEL_4K);
  // A frame that is not allocated (freed twice, never allocated) is left
  // alone and remembered in bad_frees(): --check reports it (rule internal)
  // instead of the allocator handing the frame out twice.
  void free(Pfn pfn, int level = PG_LEVEL_4K);
  const std::vector<Pfn>& bad_frees() const { return bad_frees_; }
  // Allocates a zeroed frame meant to hold a paging structure.
  Pfn alloc_table() { return alloc(PG_LEVEL_4K); }

  // 64-bit reads and writes; reads of never-written frames return 0.
  u64 read64(Hpa hpa) const {
    const u64* c = contents(hpa >> kPageShift);
    return c ? c[(hpa & (kPageSize - 1)) >> 3] : 0;
  }
  void write64(Hpa hpa, u64 value) { table_of(hpa >> kPageShift)[(hpa & (kPageSize - 1)) >> 3] = value; }
  // Direct pointer to a frame's 512 entries (allocates the contents).
  u64* table_of(Pfn pfn);
  // A frame's contents if it has any (null: it reads as zeros). The pointer
  // stays valid until free() releases the frame.
  u64* contents(Pfn pfn) const {
    if ((pfn >> 9) >= content_dir_.size()) return nullptr;
    const ContentBlock* blk = content_dir_[pfn >> 9].get();
    return blk ? (*blk)[pfn & 511] : nullptr;
  }
  // True when any of `frames` frames from `first` has contents.
  bool any_contents(Pfn first, u64 frames) const;
  // Holders of content pointers (TLM DMI grants) learn here when free() is
  // about to release frames: fn(first frame, frame count), called while the
  // contents are still there. Returns an id for removal.
  using ReleaseListener = std::function<void(Pfn, u64)>;
  u64 add_release_listener(ReleaseListener fn);
  void remove_release_listener(u64 id) { release_listeners_.erase(id); }
  bool is_allocated(Pfn pfn) const { return pfn < meta_.size() && meta_[pfn].allocated; }

  u64 tag(Pfn pfn) const {
    const u32 t = meta_[pfn].tag;
    return t == kTagSpilled ? spilled_tags_.at(pfn) : t;
  }
  void set_tag(Pfn pfn, u64 tag);
  u32 owner(Pfn pfn) const { return meta_[pfn].owner; }
  // At most 2^31 - 1.
  void set_owner(Pfn pfn, u32 owner) { meta_[pfn].owner = owner & 0x7fffffffu; }

  u64 allocated_frames() const { return allocated_; }
  u64 frames_with_contents() const { return contents_allocated_ - free_content_.size(); }
  u64 limit_frames() const { return limit_frames_; }

 private:
  // 8 bytes per host frame. Content tags are exact u64s: one that does not
  // fit the 32-bit field lives in spilled_tags_ and the field says so.
  static constexpr u32 kTagSpilled = ~u32{0};
  struct FrameMeta {
    u32 tag = 0;                // data content tag (0 = zero / never written), or kTagSpilled
    u32 owner : 31 = 0;         // owner cookie, 0 = none
    u32 allocated : 1 = 0;
  };
  static_assert(sizeof(FrameMeta) == 8);
  void reset_meta(Pfn pfn);
  // Contents are found through a two-level directory (2 MiB regions, then
  // frames) rather than through the per-frame metadata: the few regions that
  // hold paging structures stay cache-resident on the host even when the
  // metadata of a large guest does not, which halves host misses per walk
  // reference.
  using ContentBlock = std::array<u64*, 512>;
  u64*& content_slot(Pfn pfn);
  void release_contents(Pfn pfn);
  Pfn bump(u64 frames, u64 align);

  u64 limit_frames_;
  u64 next_ = 1;  // frame 0 is never handed out: HPA 0 means "none"
  u64 allocated_ = 0;
  std::vector<FrameMeta> meta_;
  std::map<Pfn, u64> spilled_tags_;  // tags of 2^32 - 1 and above, by frame
  std::vector<std::unique_ptr<ContentBlock>> content_dir_;
  // Contents pages are carved out of 2 MiB arenas that the host may back with
  // a huge page: walks touch page tables at random, and host TLB misses on
  // them cost as much as the simulated work.
  struct ArenaFree {
    void operator()(u64* p) const;
  };
  std::vector<std::unique_ptr<u64, ArenaFree>> arenas_;
  size_t arena_used_ = kPtesPerTable;  // pages handed out of the newest arena
  u64 contents_allocated_ = 0;
  std::vector<u64*> free_content_;
  u64* new_contents();
  std::vector<Pfn> free_[3];  // free blocks per order: 4K, 2M, 1G (LIFO: deterministic)
  std::map<u64, ReleaseListener> release_listeners_;  // by id, called in id order
  u64 next_listener_ = 0;                             // id of the next listener
  std::vector<Pfn> bad_frees_;  // the first kMaxBadFrees
  static constexpr size_t kMaxBadFrees = 1000;
};

}  // namespace septsim::model
