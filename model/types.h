// Basic address, time and level vocabulary shared by every layer.
#pragma once
#include <cstdint>
#include <functional>
#include <type_traits>

namespace septsim {

using u8 = std::uint8_t;
using u16 = std::uint16_t;
using u32 = std::uint32_t;
using u64 = std::uint64_t;

// An address of one space: guest-linear (Gva), guest-physical (Gpa) or
// host-physical (Hpa). It converts to and from a plain u64 (registers, PTE
// fields and arithmetic are numbers), but never into an address of another
// space: a GPA passed where an HPA is wanted, or compared with one, does not
// compile. Crossing spaces is a translation (a walk, a memslot lookup, a
// SEAMCALL operand built by hand), spelt as .raw() where it happens.
template <class Space>
class Addr {
 public:
  constexpr Addr() = default;
  constexpr Addr(u64 v) : v_(v) {}  // NOLINT: numbers become addresses freely
  template <class Other>
    requires(!std::is_same_v<Space, Other>)
  Addr(Addr<Other>) = delete;  // another space: translate, do not convert
  constexpr operator u64() const { return v_; }
  constexpr u64 raw() const { return v_; }
  constexpr Addr& operator+=(u64 n) { v_ += n; return *this; }
  constexpr Addr& operator-=(u64 n) { v_ -= n; return *this; }
  constexpr Addr& operator&=(u64 m) { v_ &= m; return *this; }
  constexpr Addr& operator|=(u64 m) { v_ |= m; return *this; }
  constexpr Addr& operator++() { ++v_; return *this; }

 private:
  u64 v_;  // no initializer: like the u64 it replaces, a default-built one is not zeroed (arrays of them stay cheap)
};
template <class A, class B>
  requires(!std::is_same_v<A, B>)
bool operator==(Addr<A>, Addr<B>) = delete;
template <class A, class B>
  requires(!std::is_same_v<A, B>)
auto operator<=>(Addr<A>, Addr<B>) = delete;  // and so <, <=, >, >= across spaces

using Hpa = Addr<struct HpaSpace>;  // host-physical address
using Gpa = Addr<struct GpaSpace>;  // guest-physical address
using Gva = Addr<struct GvaSpace>;  // guest-linear (virtual) address
using Pfn = Addr<struct HostFrameSpace>;  // host frame number (HPA >> 12): a number of its own space too
using Cycles = u64;  // CPU cycles at the configured clock

constexpr unsigned kPageShift = 12;
constexpr u64 kPageSize = u64{1} << kPageShift;
constexpr unsigned kPtesPerTable = 512;

// A guest frame number (GPA >> 12), as KVM's gfn_t, but a type of its own:
// no implicit conversion to or from an address or a plain number, so a GPA
// passed where a frame is meant, or the reverse, does not compile. The one
// shift between the two is gpa_to_gfn / gfn_to_gpa (include/linux/kvm_host.h
// has the same two); raw() is for indexing, hashing and printing.
class Gfn {
 public:
  constexpr Gfn() = default;
  constexpr explicit Gfn(u64 frame) : v_(frame) {}
  constexpr u64 raw() const { return v_; }

  friend constexpr bool operator==(Gfn, Gfn) = default;
  friend constexpr auto operator<=>(Gfn, Gfn) = default;

  // Frame arithmetic: a frame plus or minus a count of pages is a frame; the
  // distance between two frames is a count.
  friend constexpr Gfn operator+(Gfn g, u64 pages) { return Gfn{g.v_ + pages}; }
  friend constexpr Gfn operator-(Gfn g, u64 pages) { return Gfn{g.v_ - pages}; }
  friend constexpr u64 operator-(Gfn a, Gfn b) { return a.v_ - b.v_; }
  constexpr Gfn& operator+=(u64 pages) { v_ += pages; return *this; }
  constexpr Gfn& operator-=(u64 pages) { v_ -= pages; return *this; }
  constexpr Gfn& operator++() { ++v_; return *this; }

  // Masks: alignment and a TD's shared (direct) bit.
  friend constexpr Gfn operator&(Gfn g, u64 mask) { return Gfn{g.v_ & mask}; }
  friend constexpr Gfn operator|(Gfn a, Gfn b) { return Gfn{a.v_ | b.v_}; }
  friend constexpr Gfn operator&(Gfn a, Gfn b) { return Gfn{a.v_ & b.v_}; }
  constexpr Gfn operator~() const { return Gfn{~v_}; }
  constexpr explicit operator bool() const { return v_ != 0; }

 private:
  u64 v_;  // no initializer: like the u64 it replaces, a default-built one is not zeroed (arrays of them stay cheap)
};

constexpr Gfn gpa_to_gfn(Gpa gpa) { return Gfn{gpa >> kPageShift}; }
constexpr Gpa gfn_to_gpa(Gfn gfn) { return gfn.raw() << kPageShift; }

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

// The first frame of the level-sized region holding gfn (tdp_iter.h:gfn_round_for_level).
constexpr Gfn gfn_round_for_level(Gfn gfn, int level) { return gfn & ~(pages_per_level(level) - 1); }
static_assert(gfn_to_gpa(gpa_to_gfn(0x12345678)) == 0x12345000);
static_assert(gfn_round_for_level(Gfn{513}, PG_LEVEL_2M) == Gfn{512});

}  // namespace septsim

// Addresses key hash maps as their numbers do.
template <class Space>
struct std::hash<septsim::Addr<Space>> {
  size_t operator()(septsim::Addr<Space> a) const noexcept { return std::hash<septsim::u64>{}(a.raw()); }
};
