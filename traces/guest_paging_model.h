// The guest kernel behind an imported stream of guest-linear accesses
// (`septsim import lackey`): it maps each guest page on its first touch, as
// demand paging would, and says so with `guest_map` events. Guest memory is
// one memslot at GPA 0; the top of it holds the guest page tables (the root
// at `cr3`, the rest a `guest_pt_pool`), the rest holds data frames handed
// out in address order or in a seeded shuffle. Memory grows with the touched
// footprint (one entry per guest page and per table), not with the stream.
#pragma once
#include <array>
#include <stdexcept>
#include <unordered_set>

#include "traces/event_sink.h"

namespace septsim::traces {

enum class GuestPlacement : u8 {
  Sequential,  // the n-th page touched gets the n-th frame
  Fragmented,  // the n-th page touched gets frame perm(n) of a seeded permutation
};

struct GuestPagingOptions {
  u64 mem_size = u64{4} << 30;                         // guest memory in bytes, a multiple of 2 MiB
  mmu::HostBacking backing = mmu::HostBacking::Thp2M;  // host pages behind the memslot
  int page_level = PG_LEVEL_4K;                        // guest page size: PG_LEVEL_4K, _2M or _1G
  GuestPlacement placement = GuestPlacement::Sequential;
  u64 seed = 1;  // Fragmented: key of the permutation
};

// A seeded permutation of [0, n), evaluated one element at a time in
// constant memory: a 4-round Feistel network over the next even power of two,
// walked until it lands below n.
class FramePermutation {
 public:
  FramePermutation(u64 n, u64 seed);
  u64 operator()(u64 i) const;

 private:
  u64 feistel(u64 x) const;

  u64 n_;                // size of the permuted range
  unsigned half_bits_;   // each Feistel half is this wide
  u64 keys_[4];          // round keys derived from the seed
};

// A guest access the model cannot map: a non-canonical GVA, guest memory or
// the page-table area used up. The message says which.
struct GuestPagingError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class GuestPagingModel {
 public:
  static constexpr int kLevels = 4;  // 4-level guest paging

  // Throws std::invalid_argument naming the option when the layout is impossible.
  explicit GuestPagingModel(const GuestPagingOptions& opts);

  // vm_create (`vcpus`), the memslot, the page-table pool and set_cr3 on
  // `vcpu`. `td`: the VM is a TD (gpaw 48), finalized before set_cr3 (its
  // vCPUs run only after td_finalize).
  void setup(EventSink& sink, u32 vcpus, u32 vcpu, bool td = false) const;
  // True when the guest page holding `gva` was not mapped yet: it is now,
  // and `map` is the guest_map event that maps it. `gpa_bits` are or-ed
  // into the mapped GPA (a TD's shared bit).
  bool touch(Gva gva, Event& map, Gpa gpa_bits = 0) {
    const u64 page = gva >> level_shift(opts_.page_level);
    u64& recent = recent_[page & (kRecentPages - 1)];
    if (page == last_page_ || recent == page) [[likely]] {
      last_page_ = recent = page;
      return false;
    }
    return touch_slow(gva, map, gpa_bits);
  }
  // Guest-physical bytes of the page-table area: the root at cr3(), then the pool.
  u64 table_area() const { return (pool_pages_ + 1) * kPageSize; }

  Gpa cr3() const { return cr3_; }
  u64 page_size() const { return level_size(opts_.page_level); }
  u64 pages_mapped() const { return pages_.size(); }
  u64 tables() const { return tables_.size(); }  // guest page tables below the root
  u64 data_frames() const { return frames_; }

 private:
  bool touch_slow(Gva gva, Event& map, Gpa gpa_bits);
  Gpa next_frame();
  void add_tables(Gva gva);

  GuestPagingOptions opts_;
  Gpa cr3_ = 0;              // the root table: first page of the page-table area
  u64 pool_pages_ = 0;       // pages of the guest_pt_pool after the root
  u64 frames_ = 0;           // data frames of page_size() below the page-table area
  FramePermutation perm_;    // Fragmented placement
  u64 last_page_ = ~u64{0};  // the page of the previous touch (mapped), a shortcut for runs
  // Pages known mapped, direct-mapped by page number (all ones: empty): code,
  // stack and heap pages alternate in a program's stream.
  static constexpr size_t kRecentPages = 256;
  std::array<u64, kRecentPages> recent_;
  std::unordered_set<u64> pages_;   // mapped guest pages (gva >> page shift); looked up, never iterated
  std::unordered_set<u64> tables_;  // tables below the root, keyed by level and the GVA bits above them
};

}  // namespace septsim::traces
