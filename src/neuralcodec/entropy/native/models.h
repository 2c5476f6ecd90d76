// Probability models: parameter quantisation to the documented integer grids and the per-symbol
// distributions the rANS core codes with (see core.h for the Dist contract, docs/coder.md).
// Everything here is integer arithmetic on committed tables plus exact float operations
// (comparisons, power-of-two scalings, round-half-even by adding 1.5 * 2^52), so results are
// bit-identical on every IEEE-754 platform.
#pragma once
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <iterator>
#include <memory>
#include <vector>

#include "core.h"
#include "tables.h"

namespace nc {

static_assert(FLT_EVAL_METHOD == 0, "float/double must be evaluated in their own precision");

constexpr int64_t kMeanLimit = int64_t(1) << 24;    // |mu_q| <= 2^24, i.e. |mean| <= 65536
constexpr uint32_t kMaxWidth = 8191;                 // max support positions (M - n - 1 > 0)
constexpr int kMaxComponents = 8;
constexpr uint32_t kWeightTotal = 1u << 16;          // quantised mixture weights sum to 2^16
constexpr uint32_t kMaxAlphabet = 4096;
constexpr uint64_t kDistanceClamp = uint64_t(1) << 26;  // |u - mu| clamp (2^-8 units), t >> 24

inline std::string item(const char* name, size_t i) {
  return std::string(name) + "[" + std::to_string(i) + "]";
}

inline std::string item(const char* name, size_t i, size_t j) {
  return std::string(name) + "[" + std::to_string(i) + ", " + std::to_string(j) + "]";
}

/// floor(a / 256) for any sign (right shifts are arithmetic: asserted in core.h).
inline int64_t floor_div256(int64_t a) { return a >> 8; }

/// Round-half-even of |v| <= 2^51 by the IEEE-754 add/subtract of 1.5 * 2^52 (exact,
/// default rounding mode; no library call). -ffp-contract=off keeps it two operations.
inline double round_even(double v) {
  const double magic = 6755399441055744.0;  // 1.5 * 2^52
  return (v + magic) - magic;  // not re-associated without -ffast-math (FLT_EVAL_METHOD 0)
}

/// quantize_mean() of a finite mean.
NC_ALWAYS_INLINE int64_t quantize_mean_valid(float mean) {
  const double v = std::min(std::max(double(mean) * 256.0, -double(kMeanLimit)), double(kMeanLimit));
  return int64_t(round_even(v));
}

/// mu_q = round-half-even(mean * 2^8), clamped to [-2^24, 2^24]. `where` names the
/// parameter in the error message (only built on error).
template <class Where>
NC_ALWAYS_INLINE int64_t quantize_mean(float mean, const Where& where) {
  if (!std::isfinite(mean))
    throw CoderErr(where() + " = " + std::to_string(mean) + " is not finite");
  return quantize_mean_valid(mean);
}

/// Lookup accelerating scale_index: for each float32 cell of 1/64 octave (exponent + top 6
/// mantissa bits) in [2^-4, 2^8), the number of boundaries <= the cell's start; a cell
/// holds at most one boundary (1/64 octave < 1/16 octave grid step), so one comparison
/// finishes the search. Built once from kScaleBounds by comparisons only.
struct ScaleCells {
  static constexpr uint32_t kFirstExp = 123, kLastExp = 134;  // 2^-4 .. 2^8 (exclusive 2^8)
  uint8_t first[(kLastExp - kFirstExp + 1) << 6];
  ScaleCells() {
    for (uint32_t c = 0; c < sizeof(first); ++c) {
      const uint32_t bits = (kFirstExp << 23) + (c << 17);
      float lo;
      std::memcpy(&lo, &bits, 4);
      first[c] = uint8_t(std::upper_bound(kScaleBounds, kScaleBounds + kNumScales - 1, lo) -
                         kScaleBounds);
    }
  }
};

inline const ScaleCells kScaleCells;  // built when the module loads (no guard per call)

/// scale_index() of a scale already known to be finite and >= 0.
NC_ALWAYS_INLINE int scale_index_valid(float scale) {
  uint32_t bits;
  std::memcpy(&bits, &scale, 4);
  bits &= 0x7FFFFFFFu;  // -0.0 is zero
  const uint32_t e = bits >> 23;
  if (e < ScaleCells::kFirstExp) return 0;                // < 2^-4 < kScaleBounds[0]
  if (e > ScaleCells::kLastExp) return kNumScales - 1;    // >= 2^8 > kScaleBounds[191]
  const int k = kScaleCells.first[(bits >> 17) - (ScaleCells::kFirstExp << 6)];
  return k + (k < kNumScales - 1 && kScaleBounds[k] <= scale);
}

/// Index k of the scale grid sigma_k = 2^(k/16 - 4): the number of committed float32
/// boundaries <= scale (comparisons only). Zero and tiny scales clamp to 0, huge ones to 192.
template <class Where>
NC_ALWAYS_INLINE int scale_index(float scale, const Where& where) {
  if (!(scale >= 0.0f) || scale == std::numeric_limits<float>::infinity())
    throw CoderErr(where() + " = " + std::to_string(scale) +
                   ": scales must be finite and >= 0");
  return scale_index_valid(scale);
}

/// Integer weights summing to 2^16. With 2^e <= max_j w_j < 2^(e+1):
/// r_j = round_half_even(w_j * 2^(16 - e)) (exact power-of-two scaling, r_max in [2^16, 2^17]),
/// R = floor(2^48 / sum r), q_j = (r_j * R) >> 32, remainder to the largest r_j (first on ties).
inline void quantize_weights(const float* w, int k, uint32_t* q, size_t i) {
  float top = 0.0f;
  for (int j = 0; j < k; ++j) {
    if (!(w[j] >= 0.0f) || w[j] == std::numeric_limits<float>::infinity())
      throw CoderErr(item("weights", i, j) + " = " + std::to_string(w[j]) +
                     ": weights must be finite and >= 0");
    top = std::max(top, w[j]);
  }
  if (top == 0.0f) throw CoderErr(item("weights", i) + " are all zero");
  uint64_t bits;
  const double top_d = top;  // exact; normal in double even for subnormal floats
  std::memcpy(&bits, &top_d, 8);
  const int e = int((bits >> 52) & 2047) - 1023;
  const uint64_t scale_bits = uint64_t(1023 + 16 - e) << 52;  // 2^(16 - e), e in [-149, 127]
  double scale;
  std::memcpy(&scale, &scale_bits, 8);
  uint64_t r[kMaxComponents], sum_r = 0;
  int big = 0;
  for (int j = 0; j < k; ++j) {
    r[j] = uint64_t(round_even(double(w[j]) * scale));
    sum_r += r[j];
    if (r[j] > r[big]) big = j;
  }
  const uint64_t recip = (uint64_t(1) << 48) / sum_r;
  uint32_t sum_q = 0;
  for (int j = 0; j < k; ++j) sum_q += q[j] = uint32_t((r[j] * recip) >> 32);
  q[big] += kWeightTotal - sum_q;
}

/// Coarse inverse of a CDF table (upper half, 4096 buckets of probability): the first table
/// index whose value reaches each bucket. Only used to start the decoder's search, so its
/// precision never affects results.
struct InverseTable {
  static constexpr int kBits = 12;
  uint16_t j[(1 << kBits) + 1];
  InverseTable(const uint32_t* table, uint32_t last) {
    for (uint32_t k = 0; k <= (1u << kBits); ++k) {
      const uint32_t f = (1u << (kCdfBits - 1)) + (k << (kCdfBits - 1 - kBits));
      j[k] = uint16_t(std::lower_bound(table, table + last, f) - table);
    }
  }
  /// u (2^-8 units) with F(u) ~ f for a component (mu, sigma * 2^16).
  int64_t quantile(int64_t mu, uint32_t sigma, uint64_t f) const {
    return shifted_quantile(mu, uint64_t(sigma) << 16, f);
  }
  /// mu +- the unit quantile of f times scale / 2^32 (scale: sigma * 2^32, or weighted sums),
  /// f <= 2^30. Branch-free: which half f is in is as good as random in a decoder.
  NC_ALWAYS_INLINE int64_t shifted_quantile(int64_t mu, uint64_t scale, uint64_t f) const {
    const int64_t d = int64_t(f) - (int64_t(1) << (kCdfBits - 1));
    const int64_t lower = d >> 63;  // -1 below the median, else 0
    const uint64_t k = std::min<uint64_t>(uint64_t((d ^ lower) - lower) >> (kCdfBits - 1 - kBits),
                                          uint64_t(1) << kBits);
    const int64_t du = int64_t((uint64_t(j[k]) * scale) >> 32);
    return mu + ((du ^ lower) - lower);
  }
};

/// A committed CDF table of F(t), t = j/256 >= 0 (kGaussCdf or kLaplaceCdf), stored as pairs
/// F(t_j) | (F(t_{j+1}) - F(t_j)) << 32 with difference 0 at the last entry, so that an
/// evaluation is one load and no branch; and its coarse inverse.
struct CdfTable {
  uint32_t last;
  std::vector<uint64_t> pairs;
  InverseTable inverse;
  CdfTable(const uint32_t* table, uint32_t last_) : last(last_), pairs(last_ + 1), inverse(table, last_) {
    for (uint32_t j = 0; j <= last; ++j)
      pairs[j] = table[j] | (j < last ? uint64_t(table[j + 1] - table[j]) << 32 : 0);
  }
};

inline const CdfTable kGaussTable(kGaussCdf, uint32_t(std::size(kGaussCdf) - 1));
inline const CdfTable kLaplaceTable(kLaplaceCdf, uint32_t(std::size(kLaplaceCdf) - 1));

/// F(mu + d/2^8 in units of sigma) in 2^-30 fixed point, from the table by integer linear
/// interpolation (t >= the last entry gives F = 2^30); F(-t) = 2^30 - F(t). Monotone in d.
NC_ALWAYS_INLINE uint32_t eval_cdf(const CdfTable& table, int64_t d, uint64_t inv_sigma) {
  uint64_t a = d < 0 ? uint64_t(-d) : uint64_t(d);
  if (a > kDistanceClamp) a = kDistanceClamp;
  // a * inv = t * 2^(8 + kInvSigmaBits); keep t in 2^-(kTableStepBits + 16) units.
  const uint64_t t = (a * inv_sigma) >> (8 + kInvSigmaBits - kTableStepBits - 16);
  const uint64_t e = table.pairs[std::min<uint64_t>(t >> 16, table.last)];
  const uint32_t f = uint32_t(e) + uint32_t(((e >> 32) * (t & 0xFFFF)) >> 16);
  return d < 0 ? (1u << kCdfBits) - f : f;
}

/// sigma_k * 2^16 (float grid value; only used for search starting points).
inline uint32_t sigma_fixed(int k) { return uint32_t(kScaleGrid[k] * 65536.0f); }

/// One quantised continuous component: mu_q (2^-8 units), 2^28/sigma, support centre/half.
struct Component {
  int64_t mu;
  uint64_t inv;
  int64_t center;
  int32_t half;
  uint32_t sigma;  // sigma * 2^16, for search starting points only
};

NC_ALWAYS_INLINE Component quantize_component(float mean, float scale, const int32_t* half_widths,
                                    const char* mean_name, const char* scale_name, size_t i,
                                    size_t j, bool two_d) {
  auto where = [&](const char* name) {
    return [=] { return two_d ? item(name, i, j) : item(name, i); };
  };
  const int64_t mu = quantize_mean(mean, where(mean_name));
  const int k = scale_index(scale, where(scale_name));
  return {mu, kInvSigma[k], floor_div256(mu + 128), half_widths[k], sigma_fixed(k)};
}

/// CDF of one component at boundary u (2^-8 units), and its approximate quantile.
struct SingleCdf {
  const CdfTable* table;
  int64_t mu;
  uint64_t inv;
  uint32_t sigma;  // sigma * 2^16
  NC_ALWAYS_INLINE uint32_t operator()(int64_t u) const { return eval_cdf(*table, u - mu, inv); }
  int64_t estimate(uint64_t f) const { return table->inverse.quantile(mu, sigma, f); }
};

/// CDF of a mixture: sum_j w_j F_j(u) >> 16 with sum_j w_j = 2^16; its approximate quantile
/// is the weighted mean of the component quantiles (usually the decoded position, or next to
/// it). K components (0: k_ at run time, for loops the compiler cannot unroll).
template <int K>
struct MixtureCdfT {
  static constexpr int kSlots = K ? K : kMaxComponents;
  const CdfTable* table;
  int k_ = 0;
  int count() const { return K ? K : k_; }
  int64_t mu[kSlots];
  uint64_t inv[kSlots];
  uint32_t w[kSlots];
  int64_t mean;     // sum_j w_j mu_j >> 16, the weighted mean of the component means
  uint64_t spread;  // sum_j w_j sigma_j (sigma in 2^-16 units), the weighted scale
  NC_ALWAYS_INLINE uint32_t operator()(int64_t u) const {
    uint64_t s = 0;
    for (int j = 0; j < count(); ++j) s += uint64_t(w[j]) * eval_cdf(*table, u - mu[j], inv[j]);
    return uint32_t(s >> 16);
  }
  /// The weighted mean of the component quantiles (the mean plus the weighted scale times the
  /// unit quantile): one table read.
  int64_t estimate(uint64_t f) const { return table->inverse.shifted_quantile(mean, spread, f); }
};

/// Discretised continuous distribution on [lo, lo + n) plus escape:
/// cdf(i) = floor((F(b_i) - F(b_0)) * (M - n - 1) / 2^30) + i, b_i = lo - 1/2 + i.
template <class F>
struct ContinuousDist {
  static constexpr bool escape = true;
  static constexpr bool kHasGuess = true;
  F cdf_fn;
  int64_t lo;
  uint32_t n;
  uint32_t f0;
  uint64_t span;

  ContinuousDist() = default;
  ContinuousDist(const F& f, int64_t lo_, uint32_t n_) : cdf_fn(f) { set_support(lo_, n_); }
  /// Support [lo, lo + n) of the CDF already in cdf_fn.
  void set_support(int64_t lo_, uint32_t n_) {
    lo = lo_;
    n = n_;
    f0 = cdf_fn(boundary(0));
    span = kTotal - n_ - 1;
  }
  int64_t boundary(uint32_t pos) const { return (lo + int64_t(pos)) * 256 - 128; }
  NC_ALWAYS_INLINE uint32_t cdf(uint32_t pos) const {
    return uint32_t((uint64_t(cdf_fn(boundary(pos)) - f0) * span) >> kCdfBits) + pos;
  }
  /// Start of the decoder's search: cdf(i) = cf means F(u_i) - f0 ~ (cf - i) 2^14 M / span.
  /// The i and span terms matter only for wide supports (a shift of about n / 2^17 of the
  /// support): there one fixed-point step, M/span ~ 1 + (n+1)/M, corrects the position.
  NC_ALWAYS_INLINE uint32_t guess(uint32_t cf, uint32_t total) const {
    uint32_t pos = position_at(uint64_t(cf) << (kCdfBits - kPrecision), total);
    if (n > kWideSupport) {
      const uint64_t x = uint64_t(std::max<int64_t>(int64_t(cf) - int64_t(pos), 0));
      pos = position_at((x << (kCdfBits - kPrecision)) + ((x * (n + 1)) >> 2), total);
    }
    return pos;
  }
  static constexpr uint32_t kWideSupport = 512;
  /// The position (clamped to [0, total)) whose lower boundary is near F^-1(f0 + df).
  NC_ALWAYS_INLINE uint32_t position_at(uint64_t df, uint32_t total) const {
    const int64_t u = cdf_fn.estimate(std::min<uint64_t>(f0 + df, uint64_t(1) << kCdfBits));
    const int64_t pos = floor_div256(u + 128) - lo;
    return uint32_t(std::min<int64_t>(std::max<int64_t>(pos, 0), total - 1));
  }
};

/// Gaussian or Laplace: one component per symbol.
struct ParametricModel {
  const float* means;
  const float* scales;
  const CdfTable* table;
  const int32_t* half_widths;

  NC_ALWAYS_INLINE ContinuousDist<SingleCdf> dist(size_t i) const {
    const Component c =
        quantize_component(means[i], scales[i], half_widths, "means", "scales", i, 0, false);
    return {SingleCdf{table, c.mu, c.inv, c.sigma}, c.center - c.half, uint32_t(2 * c.half + 1)};
  }
};

/// CDF values of one zero-mean component per scale index, tabulated once with the same
/// ContinuousDist arithmetic as ParametricModel (so streams are identical), each row closed by
/// a sentinel 2^16, plus a lookup from the top bits of a cumulative frequency to the position
/// that holds its bucket's first value: encoding a symbol is two table reads, decoding one
/// lookup and (on average) less than one step forward.
struct ZeroMeanTables {
  static constexpr int kExtraBits = 1;  // buckets per row: 2^(ceil(log2 positions) + this)
  struct Row {
    const uint32_t* cdf;  // cdf(0 .. n), then 2^16
    const uint16_t* lut;  // lut[b] = largest pos with cdf(pos) <= b << shift
    int32_t half;
    uint32_t shift;
  };
  std::vector<uint32_t> values;
  std::vector<uint16_t> lookup;
  Row rows[kNumScales];
  ZeroMeanTables(const CdfTable& table, const int32_t* half_widths) {
    size_t start[kNumScales], lut_start[kNumScales];
    for (int k = 0; k < kNumScales; ++k) {
      const int32_t half = half_widths[k];
      const ContinuousDist<SingleCdf> d(SingleCdf{&table, 0, kInvSigma[k], sigma_fixed(k)},
                                        -int64_t(half), uint32_t(2 * half + 1));
      start[k] = values.size();
      for (uint32_t pos = 0; pos <= d.n; ++pos) values.push_back(d.cdf(pos));
      values.push_back(kTotal);
      const uint32_t positions = d.n + 1;
      int bits = 0;
      while ((1u << bits) < positions) ++bits;
      bits += kExtraBits;
      rows[k].shift = uint32_t(kPrecision - std::min(bits, kPrecision));
      lut_start[k] = lookup.size();
      const uint32_t* c = values.data() + start[k];
      uint32_t pos = 0;
      for (uint32_t b = 0; b < (kTotal >> rows[k].shift); ++b) {
        while (c[pos + 1] <= (b << rows[k].shift)) ++pos;
        lookup.push_back(uint16_t(pos));
      }
      rows[k].half = half;
    }
    for (int k = 0; k < kNumScales; ++k) {
      rows[k].cdf = values.data() + start[k];
      rows[k].lut = lookup.data() + lut_start[k];
    }
  }
};

struct TabulatedDist {
  static constexpr bool escape = true;
  static constexpr bool kHasGuess = false;
  const ZeroMeanTables::Row* row;
  int64_t lo;
  uint32_t n;
  uint32_t cdf(uint32_t pos) const { return row->cdf[pos]; }
  /// The position pos with cdf(pos) <= cf < cdf(pos + 1) (the sentinel ends every row).
  NC_ALWAYS_INLINE uint32_t locate(uint32_t cf, uint32_t& c0, uint32_t& c1) const {
    const uint32_t* c = row->cdf;
    uint32_t pos = row->lut[cf >> row->shift];
    while (c[pos + 1] <= cf) ++pos;
    c0 = c[pos];
    c1 = c[pos + 1];
    return pos;
  }
};

/// Gaussian or Laplace whose means are all exactly zero (the codecs code y - mean): the same
/// distributions as ParametricModel with zero means, read from ZeroMeanTables.
struct ZeroMeanModel {
  const float* scales;
  const int32_t* half_widths;
  const ZeroMeanTables* tables;

  NC_ALWAYS_INLINE TabulatedDist dist(size_t i) const {
    const int k = scale_index(scales[i], [=] { return item("scales", i); });
    const ZeroMeanTables::Row* row = tables->rows + k;
    return {row, -int64_t(row->half), uint32_t(2 * row->half + 1)};
  }
};

inline const ZeroMeanTables& zero_mean_tables(bool gaussian) {
  if (gaussian) {
    static const ZeroMeanTables g(kGaussTable, kHalfWidthGauss);
    return g;
  }
  static const ZeroMeanTables l(kLaplaceTable, kHalfWidthLaplace);
  return l;
}

/// Gaussian mixture with K components per symbol (K fixed at compile time, or 0: k_ given at
/// run time); support = union of the supports of the components with non-zero quantised
/// weight, clamped to kMaxWidth positions around the heaviest one. A zero-weight component
/// stays in the CDF with weight 0 (it adds nothing), so every K codes like the general model.
template <int K>
struct GmmModelT {
  static constexpr int kComponents = K;
  const float* weights;
  const float* means;
  const float* scales;
  int k_;

  NC_ALWAYS_INLINE ContinuousDist<MixtureCdfT<K>> dist(size_t i) const {
    const int k = K ? K : k_;
    const size_t at = i * size_t(k);
    const float *m = means + at, *s = scales + at;
    bool valid = true;  // the checks of quantize_component, without building messages
    for (int j = 0; j < k; ++j)
      valid &= std::isfinite(m[j]) & (s[j] >= 0.0f) & (s[j] != std::numeric_limits<float>::infinity());
    uint32_t q[kMaxComponents];
    quantize_weights(weights + at, k, q, i);
    if (!valid) invalid(i);
    ContinuousDist<MixtureCdfT<K>> d;
    MixtureCdfT<K>& f = d.cdf_fn;
    f.k_ = k;
    f.table = &kGaussTable;
    int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
    int64_t heavy_center = 0, mean = 0;
    uint64_t spread = 0;
    uint32_t heavy_w = 0;
    for (int j = 0; j < k; ++j) {
      const int64_t mu = quantize_mean_valid(m[j]);
      const int sk = scale_index_valid(s[j]);
      const int64_t center = floor_div256(mu + 128);
      const int32_t half = kHalfWidthGauss[sk];
      f.mu[j] = mu;
      f.inv[j] = kInvSigma[sk];
      f.w[j] = q[j];
      mean += int64_t(q[j]) * mu;
      spread += uint64_t(q[j]) * sigma_fixed(sk);
      if (q[j] == 0) continue;  // a zero weight adds nothing to F and leaves the support
      lo = std::min(lo, center - half);
      hi = std::max(hi, center + half);
      if (q[j] > heavy_w) {
        heavy_w = q[j];
        heavy_center = center;
      }
    }
    f.mean = mean >> 16;
    f.spread = spread;
    if (hi - lo + 1 > int64_t(kMaxWidth)) {
      lo = std::min(std::max(heavy_center - int64_t(kMaxWidth / 2), lo), hi - int64_t(kMaxWidth) + 1);
      hi = lo + kMaxWidth - 1;
    }
    d.set_support(lo, uint32_t(hi - lo + 1));
    return d;
  }

  /// Throws the error quantize_component gives for the first invalid parameter of symbol i.
  [[noreturn]] __attribute__((noinline, cold)) void invalid(size_t i) const {
    const int k = K ? K : k_;
    for (int j = 0; j < k; ++j) {
      const size_t at = i * size_t(k) + size_t(j);
      quantize_component(means[at], scales[at], kHalfWidthGauss, "means", "scales", i, j, true);
    }
    throw CoderErr("invalid mixture parameters");  // not reached
  }
};

/// Explicit cumulative table (categorical and indexed models).
struct TableDist {
  static constexpr bool kHasGuess = false;
  const int32_t* c;
  int64_t lo;
  uint32_t n;
  bool escape;
  uint32_t cdf(uint32_t pos) const { return uint32_t(c[pos]); }
};

/// Normalise non-negative integer frequencies to exactly 2^16 with every symbol >= 1:
/// q_a = 1 + floor(f_a (M - A) / T), remainder to the largest f_a (first on ties).
/// Writes the cumulative table cum[0..A].
inline void normalize_freqs(const int32_t* f, uint32_t a_size, int32_t* cum, const std::string& where) {
  uint64_t total = 0;
  uint32_t big = 0;
  for (uint32_t a = 0; a < a_size; ++a) {
    if (f[a] < 0)
      throw CoderErr(where + "[" + std::to_string(a) + "] = " + std::to_string(f[a]) +
                     ": frequencies must be >= 0");
    total += uint64_t(f[a]);
    if (f[a] > f[big]) big = a;
  }
  if (total == 0) throw CoderErr(where + " are all zero");
  const uint64_t room = kTotal - a_size;
  uint32_t sum = 0;
  cum[0] = 0;
  for (uint32_t a = 0; a < a_size; ++a)
    sum += uint32_t(cum[a + 1] = int32_t(1 + uint64_t(f[a]) * room / total));
  cum[big + 1] += int32_t(kTotal - sum);
  for (uint32_t a = 0; a < a_size; ++a) cum[a + 1] += cum[a];
}

/// Categorical over [0, A): one shared frequency row, or one row per symbol (normalised
/// lazily into a per-worker buffer; the model is copied per chunk).
class CategoricalModel {
 public:
  CategoricalModel(const int32_t* freqs, uint32_t a_size, bool per_symbol)
      : freqs_(freqs), a_(a_size), per_symbol_(per_symbol), cum_(a_size + 1) {
    if (!per_symbol_) normalize_freqs(freqs_, a_, cum_.data(), "freqs");
  }
  NC_ALWAYS_INLINE TableDist dist(size_t i) {
    if (per_symbol_) normalize_freqs(freqs_ + i * a_, a_, cum_.data(), item("freqs", i));
    return {cum_.data(), 0, a_, false};
  }

 private:
  const int32_t* freqs_;
  uint32_t a_;
  bool per_symbol_;
  std::vector<int32_t> cum_;
};

/// CompressAI's indexed tables: value = symbol - offset[t]; positions 0 .. len-3 are real,
/// position len-2 is the escape (overflow); cdf[len-1] == 2^16.
class IndexedModel {
 public:
  IndexedModel(const int32_t* indexes, const int32_t* cdfs, size_t n_tables, size_t stride,
               const int32_t* lengths, const int32_t* offsets)
      : indexes_(indexes), cdfs_(cdfs), n_tables_(n_tables), stride_(stride), lengths_(lengths),
        offsets_(offsets) {
    for (size_t t = 0; t < n_tables; ++t) validate_table(t);
  }
  NC_ALWAYS_INLINE TableDist dist(size_t i) const {
    const int32_t t = indexes_[i];
    if (t < 0 || size_t(t) >= n_tables_)
      throw CoderErr(item("indexes", i) + " = " + std::to_string(t) + " is outside [0, " +
                     std::to_string(n_tables_) + ")");
    return {cdfs_ + size_t(t) * stride_, offsets_[t], uint32_t(lengths_[t] - 2), true};
  }

 private:
  void validate_table(size_t t) const {
    const int32_t len = lengths_[t];
    if (len < 2 || size_t(len) > stride_)
      throw CoderErr(item("cdf_lengths", t) + " = " + std::to_string(len) + " is outside [2, " +
                     std::to_string(stride_) + "]");
    const int32_t* c = cdfs_ + t * stride_;
    if (c[0] != 0 || c[len - 1] != int32_t(kTotal))
      throw CoderErr("cdfs[" + std::to_string(t) + "] must start at 0 and end at 65536");
    for (int32_t j = 1; j < len; ++j)
      if (c[j] <= c[j - 1])
        throw CoderErr("cdfs[" + std::to_string(t) + "] is not strictly increasing at " +
                       std::to_string(j));
  }

  const int32_t* indexes_;
  const int32_t* cdfs_;
  size_t n_tables_, stride_;
  const int32_t* lengths_;
  const int32_t* offsets_;
};

}  // namespace nc
