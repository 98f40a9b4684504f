// Basic address, time and level vocabulary shared by every layer.
#pragma once
#include <cstdint>

namespace septsim {

using u8 = std::uint8_t;
using u16 = std::uint16_t;
using u32 = std::uint32_t;
using u64 = std::uint64_t;

using Hpa = u64;     // host-physical address
using Gpa = u64;     // guest-physical address
using Gva = u64;     // guest-linear (virtual) address
using Gfn = u64;     // guest frame number (GPA >> 12)
using Pfn = u64;     // host frame number (HPA >> 12)
using Cycles = u64;  // CPU cycles at the configured clock

constexpr unsigned kPageShift = 12;
constexpr u64 kPageSize = u64{1} << kPageShift;
constexpr unsigned kPtesPerTable = 512;

enum class AccessType : u8 { Read = 0, Write = 1, Fetch = 2 };

// KVM's PG_LEVEL_* numbering: the level of the entry that maps the page.
enum PgLevel : int {
  PG_LEVEL_NONE = 0,
  PG_LEVEL_4K = 1,
  PG_LEVEL_2M = 2,
  PG_LEVEL_1G = 3,
  PG_LEVEL_512G = 4,
  PG_LEVEL_256T = 5,
};

constexpr unsigned level_shift(int level) { return kPageShift + 9u * unsigned(level - 1); }
constexpr u64 level_size(int level) { return u64{1} << level_shift(level); }
constexpr u64 pages_per_level(int level) { return u64{1} << (9u * unsigned(level - 1)); }
constexpr unsigned pt_index(u64 addr, int level) { return unsigned(addr >> level_shift(level)) & 511u; }
constexpr u64 align_down(u64 addr, int level) { return addr & ~(level_size(level) - 1); }

static_assert(level_size(PG_LEVEL_2M) == 2ull << 20);
static_assert(level_size(PG_LEVEL_1G) == 1ull << 30);
static_assert(pages_per_level(PG_LEVEL_2M) == 512);

}  // namespace septsim
