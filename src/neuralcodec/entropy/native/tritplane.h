// Integer trit-plane model (docs/progressive.md, "Probability model" and "Priority order"):
// the same int64 arithmetic as neuralcodec.entropy.tritplane (numpy reference), in one pass.
#pragma once
#include <cstddef>
#include <cstdint>

namespace nc {

/// The log2 table of the model (owned by the caller, see _tritplane_tables.py); the Gaussian
/// CDF and inverse scales are the coder's own (tables.h).
struct TritTables {
  const int64_t* log2m;   // 257-entry log2 mantissa table
  int64_t one;            // fixed-point 1.0 of log2_fixed
};

/// For n elements with interval lows lo[i] and scale indices k[i] (k < kNumScales) and trit size
/// sub: Gaussian masses (n x 3, 2^30 units), active[i] = 1 where the largest normalised
/// Gaussian frequency is below `certain`, and order = element indices by decreasing
/// priority, ties by increasing index.
void trit_plane_model(const TritTables& t, const int64_t* lo, const int64_t* k, size_t n,
                      int64_t sub, int64_t certain, int64_t* masses, uint8_t* active,
                      int64_t* order);

}  // namespace nc
