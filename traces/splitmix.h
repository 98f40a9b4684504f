// The generators' and importers' random numbers: splitmix64 (no std
// distributions, whose output varies by library), so a seed gives the same
// trace everywhere.
#pragma once
#include "model/types.h"

namespace septsim::traces {

// The splitmix64 output function: a bijective 64-bit mix.
constexpr u64 splitmix_mix(u64 z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct SplitMix64 {
  u64 s;  // the state: advanced by the golden-ratio increment on each draw
  u64 next() { return splitmix_mix(s += 0x9e3779b97f4a7c15ull); }
  // Uniform in [0, n): rejection sampling keeps it exact and portable.
  u64 below(u64 n) {
    u64 limit = ~u64{0} - (~u64{0} % n);
    u64 x;
    do x = next();
    while (x >= limit);
    return x % n;
  }
};

}  // namespace septsim::traces
