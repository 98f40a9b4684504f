// Address and frame types (model/types.h): a GPA, an HPA and a GVA are
// numbers of different spaces, and a gfn is a frame, not an address. What
// must not compile is checked here at compile time; the conversions that are
// meant to exist are checked at run time.
#include <catch2/catch.hpp>

#include <type_traits>

#include "model/types.h"

using namespace septsim;

namespace {

template <class A, class B>
constexpr bool comparable = requires(A a, B b) { a == b; };
template <class A, class B>
constexpr bool ordered = requires(A a, B b) { a < b; };

}  // namespace

TEST_CASE("an address never becomes an address of another space", "[model][types]") {
  STATIC_REQUIRE_FALSE(std::is_convertible_v<Gpa, Hpa>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<Hpa, Gpa>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<Gpa, Hpa>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<Gpa, Gva>);
  // A host frame number is not an HPA: the shift is written out.
  STATIC_REQUIRE_FALSE(std::is_constructible_v<Pfn, Hpa>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<Hpa, Pfn>);
  STATIC_REQUIRE_FALSE(comparable<Gpa, Hpa>);
  STATIC_REQUIRE_FALSE(comparable<Gva, Gpa>);
  STATIC_REQUIRE_FALSE(ordered<Hpa, Gpa>);
  // Numbers (registers, PTE fields) become addresses and back.
  STATIC_REQUIRE(std::is_convertible_v<u64, Gpa>);
  STATIC_REQUIRE(std::is_convertible_v<Hpa, u64>);
  STATIC_REQUIRE(comparable<Gpa, Gpa>);
  STATIC_REQUIRE(ordered<Gpa, Gpa>);
  STATIC_REQUIRE(ordered<Gpa, u64>);
}

TEST_CASE("a gfn is neither an address nor a number, and gpa_to_gfn is the one shift", "[model][types]") {
  STATIC_REQUIRE_FALSE(std::is_convertible_v<u64, Gfn>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<Gfn, u64>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<Gpa, Gfn>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<Gfn, Gpa>);
  STATIC_REQUIRE_FALSE(comparable<Gfn, u64>);
  // GPA 0x40201234 is in 4 KiB frame 0x40201, 2 MiB frame 0x40200 (512 pages).
  CHECK(gpa_to_gfn(0x40201234) == Gfn{0x40201});
  CHECK(gfn_to_gpa(Gfn{0x40201}) == Gpa{0x40201000});
  CHECK(gfn_round_for_level(Gfn{0x40201}, PG_LEVEL_2M) == Gfn{0x40200});
  CHECK(Gfn{0x40201} - Gfn{0x40200} == 1);
  CHECK(Gfn{0x40200} + pages_per_level(PG_LEVEL_2M) == Gfn{0x40400});
}
