// AVX2 path of the Gaussian-mixture model. GmmModelT (models.h) computes the same integers one
// symbol at a time and stays the reference: ideal bits, CPUs without AVX2, and every symbol this
// path hands back to it. Per group of 8 symbols:
//   * the parameters are checked and quantised together (weights, means, scale indexes, support,
//     F(b_0)) with exact float operations only (power-of-two scalings, comparisons, rounding to
//     nearest-even of values that fit) and an exact double division, into the integers of
//     ContinuousDist<MixtureCdfT<K>>;
//   * the encoder evaluates the mixture CDFs of 4 symbols at a time in 64-bit lanes, with the
//     integer arithmetic of eval_cdf (same table, same shifts);
//   * the decoder searches each symbol with the reference's search on those integers, while the
//     next group is being quantised (that work overlaps the serial rANS state chain).
// Symbols whose parameters are invalid (or whose largest weight is below 2^-111) take the
// reference path, which also raises the error.
#pragma once
#include <atomic>

#include "models.h"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(NC_NO_SIMD)
#define NC_MIXTURE_SIMD 1
#include <immintrin.h>
#define NC_AVX2 __attribute__((target("avx2,bmi,bmi2,popcnt")))
#define NC_AVX2_INLINE __attribute__((target("avx2,bmi,bmi2,popcnt"), always_inline)) inline
#else
#define NC_MIXTURE_SIMD 0
#endif

namespace nc {

constexpr uint32_t kHalfCdf = 1u << (kCdfBits - 1);  // F(0) = 1/2

/// Switch for the SIMD mixture path (on by default where the CPU has AVX2); off, mixtures take
/// the reference path. The streams are the same either way.
inline std::atomic<bool> g_simd_enabled{true};

inline bool simd_supported() {
#if NC_MIXTURE_SIMD
  // (the centred CDF of this path relies on the table's F(0) = 1/2, true of the committed one)
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") &&
                         __builtin_cpu_supports("popcnt") && kGaussCdf[0] == kHalfCdf;
  return ok;
#else
  return false;
#endif
}

inline bool simd_active() { return simd_supported() && g_simd_enabled.load(); }

/// Mixture model whose chunks take the SIMD path; dist() is the reference's.
template <int K>
struct SimdGmmModel {
  GmmModelT<K> ref;
  ContinuousDist<MixtureCdfT<K>> dist(size_t i) const { return ref.dist(i); }
};

/// Quantised parameters of a group of 8 symbols (structure of arrays): the integers of their
/// ContinuousDist<MixtureCdfT<K>>, but for `spread` (the decoder's guess only).
template <int K>
struct MixtureGroup {
  static constexpr int kSize = 8;
  static constexpr int kComponents = K ? K : kMaxComponents;
  alignas(32) int32_t mu[kComponents][kSize];
  alignas(32) uint32_t inv_m1[kComponents][kSize];  // kInvSigma[k] - 1 (kInvSigma[0] = 2^32)
  alignas(32) uint32_t w[kComponents][kSize];
  // for the decoder's guess (float arithmetic: it only places the first window), the mean and
  // the standard deviation of the quantised mixture, sqrt(sum_j w_j (sigma_j^2 + mu_j^2) -
  // mean^2), * 2^32 in positions (the reference's weighted scale sum_j w_j sigma_j, whose
  // guess misses that window three times as often on the bench data, is not kept)
  alignas(32) uint64_t spread[kSize];
  alignas(32) int32_t lo[kSize];
  alignas(32) uint32_t n[kSize];
  alignas(32) uint32_t f0[kSize];
  // for the decoder: u_0 - mu_j zero-extended to 64 bits, the centre of its first window in
  // 2^-8 units from the support's start (floor(mean) + 128 - 256 (lo + 1)), the last start of
  // a 4-position window inside the support (n - 3) and M - n - 1
  alignas(32) uint64_t d0[kComponents][kSize];
  alignas(32) int64_t centre[kSize];
  alignas(32) uint32_t last_start[kSize];
  alignas(32) uint32_t span[kSize];
  alignas(32) int32_t f0_centred[kSize];  // f0 - 2^29
  uint32_t ok;  // bit s: symbol s takes this path
  int k;

  /// The distribution of symbol s (a symbol with its `ok` bit set).
  ContinuousDist<MixtureCdfT<K>> dist(int s) const {
    ContinuousDist<MixtureCdfT<K>> d;
    MixtureCdfT<K>& f = d.cdf_fn;
    f.table = &kGaussTable;
    f.k_ = k;
    for (int j = 0; j < (K ? K : k); ++j) {
      f.mu[j] = mu[j][s];
      f.inv[j] = uint64_t(inv_m1[j][s]) + 1;
      f.w[j] = w[j][s];
    }
    // (mean and spread place a search's start only: the answer does not depend on them)
    f.mean = centre[s] - 128 + 256 * (int64_t(lo[s]) + 1);
    f.spread = spread[s];
    d.lo = lo[s];
    d.n = n[s];
    d.f0 = f0[s];
    d.span = kTotal - n[s] - 1;
    return d;
  }
};

#if NC_MIXTURE_SIMD

/// Per-scale constants and the scale cells, laid out for gathers: the words read together for
/// the same index share one 64-bit entry (one gathered element instead of two).
struct MixtureSimdTables {
  // scale cell c: its first candidate index k (low word) and the float bits of the boundary
  // kScaleBounds[k] that decides k or k + 1 (high word; a quiet NaN for k = kNumScales - 1,
  // which compares false: no k + 1)
  uint64_t cell_bound[sizeof(ScaleCells::first)];
  // scale k: kInvSigma[k] - 1 (low word) and kHalfWidthGauss[k] (high word)
  uint64_t inv_half[kNumScales];
  uint32_t sigma[kNumScales];
  // the coarse inverse of the Gaussian CDF over the whole range, signed: quantile[k] =
  // kGaussTable.inverse.shifted_quantile(0, 2^32, min(k, 2^13) * 2^17) (a position guess costs
  // one read; the entries past 2^13 repeat the last one, for the levels up to 2^31 a guess
  // reads without a clamp)
  static constexpr int kQuantileShift = kCdfBits - 13;
  int16_t quantile[1 << (31 - kQuantileShift)];
  // F(u_0) of a component on a support that is not clamped to kMaxWidth: there |u_0 - mu| >=
  // 256 h_k, so t >= t_min(k) = (256 h_k kInvSigma[k]) >> 12, where (checked here) F+(t) >=
  // 2^30 - 1: F(u_0) = 2^30 - F+(t) is 1 for t < tail_zero and 0 from there on
  int64_t tail_zero = 0;
  bool tail_shortcut = false;
  // kGaussTable.pairs with T[j] - 2^29 in the low word: F+ - 2^29, whose sign centred_cdf flips
  // for d < 0 (F(d) - 2^29 = sign(d) (F+ - 2^29), since F(-d) = 2^30 - F+ and T[0] = 2^29)
  uint64_t centred[std::size(kGaussCdf)];
  static uint32_t upper_cdf(uint64_t t) {  // eval_cdf's F+ at t (2^-24 units)
    const uint64_t e = kGaussTable.pairs[std::min<uint64_t>(t >> 16, kGaussTable.last)];
    return uint32_t(e) + uint32_t(((e >> 32) * (t & 0xFFFF)) >> 16);
  }
  static uint64_t first_t_reaching(uint32_t level) {  // smallest t with F+(t) >= level
    uint64_t lo = 0, hi = uint64_t(kGaussTable.last) << 16;
    while (lo < hi) {
      const uint64_t mid = lo + (hi - lo) / 2;
      if (upper_cdf(mid) >= level) hi = mid; else lo = mid + 1;
    }
    return lo;
  }
  MixtureSimdTables() {
    tail_zero = int64_t(first_t_reaching(1u << kCdfBits));
    const uint64_t one_left = first_t_reaching((1u << kCdfBits) - 1);
    tail_shortcut = true;
    for (int k = 0; k < kNumScales; ++k)
      tail_shortcut &= ((uint64_t(256) * uint64_t(kHalfWidthGauss[k]) * kInvSigma[k]) >> 12) >= one_left;
    for (size_t j = 0; j < std::size(kGaussCdf); ++j)
      centred[j] = (kGaussTable.pairs[j] & ~uint64_t(0xFFFFFFFF)) | uint32_t(kGaussCdf[j] - kHalfCdf);
    for (int q = 0; q <= (1 << 13); ++q)
      quantile[q] = int16_t(kGaussTable.inverse.shifted_quantile(0, uint64_t(1) << 32, uint64_t(q) << kQuantileShift));
    for (size_t q = (1 << 13) + 1; q < std::size(quantile); ++q) quantile[q] = quantile[1 << 13];
    for (size_t c = 0; c < sizeof(ScaleCells::first); ++c) {
      const uint32_t k = kScaleCells.first[c];
      uint32_t bound = 0x7FC00000u;  // quiet NaN
      if (k < kNumScales - 1) std::memcpy(&bound, &kScaleBounds[k], 4);
      cell_bound[c] = k | uint64_t(bound) << 32;
    }
    for (int k = 0; k < kNumScales; ++k) {
      inv_half[k] = uint32_t(kInvSigma[k] - 1) | uint64_t(uint32_t(kHalfWidthGauss[k])) << 32;
      sigma[k] = sigma_fixed(k);
    }
  }
};

inline const MixtureSimdTables kMixtureSimd;

NC_AVX2_INLINE __m256i gather32(const void* table, __m256i index) {
  return _mm256_i32gather_epi32(static_cast<const int*>(table), index, 4);
}

/// The low (out[0]) and high (out[1]) 32-bit words of 8 64-bit lanes, lanes 0-3 in v0 and
/// 4-7 in v1, as 8 int32 lanes each.
NC_AVX2_INLINE void split_words(__m256i v0, __m256i v1, __m256i* out) {
  const __m256 a = _mm256_castsi256_ps(v0), b = _mm256_castsi256_ps(v1);
  out[0] = _mm256_permute4x64_epi64(_mm256_castps_si256(_mm256_shuffle_ps(a, b, 0x88)), 0xD8);
  out[1] = _mm256_permute4x64_epi64(_mm256_castps_si256(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8);
}

/// table[index] of 8 int32 indexes in a table of 64-bit entries, split by split_words.
NC_AVX2_INLINE void gather64_words(const uint64_t* table, __m256i index, __m256i* out) {
  const long long* t = reinterpret_cast<const long long*>(table);
  split_words(_mm256_i32gather_epi64(t, _mm256_castsi256_si128(index), 8),
              _mm256_i32gather_epi64(t, _mm256_extracti128_si256(index, 1), 8), out);
}

/// Lower (h = 0) or upper half of 8 int32 lanes.
NC_AVX2_INLINE __m128i half128(__m256i v, int h) {
  return h ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v);
}

/// The low 32 bits of 4 64-bit lanes.
NC_AVX2_INLINE __m128i low_dwords(__m256i v) {
  return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
}

NC_AVX2_INLINE __m256i load4_i64(const int32_t* p) {
  return _mm256_cvtepi32_epi64(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
}

NC_AVX2_INLINE __m256i load4_u64(const uint32_t* p) {
  return _mm256_cvtepu32_epi64(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
}

/// eval_cdf(kGaussTable, d, inv_m1 + 1) - 2^29 in 4 64-bit lanes whose low 32 bits hold d
/// (|d| < 2^31) and whose high 32 bits are zero, inv_m1 in the low 32 bits: F - 2^29 as a signed
/// int32 in the low 32 bits, the high ones zero (callers multiply with _mm256_mul_epi32 and add
/// 2^29 times the weights' sum, 2^16, back: see centred_sum). eval_cdf's clamp of |d| to 2^26 is
/// not needed: a * inv < 2^63, and from the clamp on the table index is past the table's end
/// anyway (2^26 * inv >> 28 >= 2^18 > 2048), where F is the last entry. The sign of d is applied
/// by vpsignd (F(-a) - 2^29 = -(F+(a) - 2^29); d = 0 gives 0, right as F+(0) = 2^29).
NC_AVX2_INLINE __m256i centred_cdf(__m256i d, __m256i inv_m1) {
  const __m256i a = _mm256_abs_epi32(d);  // the high 32 bits stay zero
  const __m256i p = _mm256_add_epi64(_mm256_mul_epu32(a, inv_m1), a);  // a * inv
  constexpr int kShift = 8 + kInvSigmaBits - kTableStepBits - 16;     // p >> kShift = t
  const __m256i j = _mm256_min_epu32(_mm256_srli_epi64(p, kShift + 16), _mm256_set1_epi64x(int64_t(std::size(kGaussCdf) - 1)));
  const __m256i f = _mm256_and_si256(_mm256_srli_epi64(p, kShift), _mm256_set1_epi64x(0xFFFF));
  const __m256i e = _mm256_i64gather_epi64(reinterpret_cast<const long long*>(kMixtureSimd.centred), j, 8);
  const __m256i fp = _mm256_add_epi32(e, _mm256_srli_epi64(_mm256_mul_epu32(_mm256_srli_epi64(e, 32), f), 16));
  return _mm256_sign_epi32(fp, d);  // the high words: d's are zero, so they become zero
}

/// centred_cdf of u - mu for 4 lanes of int64 (u, mu in 2^-8 units, |u - mu| < 2^31).
NC_AVX2_INLINE __m256i component_cdf(__m256i u, __m256i mu, __m256i inv_m1) {
  return centred_cdf(_mm256_and_si256(_mm256_sub_epi64(u, mu), _mm256_set1_epi64x(0xFFFFFFFF)), inv_m1);
}

/// acc + w * c for 4 lanes: c from centred_cdf, w the component's weight (low 32 bits). Over all
/// K components acc = sum_j w_j F_j - 2^45 (the weights sum to 2^16), |acc| <= 2^45, so the low
/// 32 bits of acc >> 16 (logical) are (sum_j w_j F_j >> 16) - 2^29.
NC_AVX2_INLINE __m256i centred_sum(__m256i acc, __m256i w, __m256i c) {
  return _mm256_add_epi64(acc, _mm256_mul_epi32(w, c));
}

/// Component j of 8 rows of (rows, K) parameters from row 0 of p: for a whole group of K = 2..4
/// three-to-four contiguous loads transposed in registers, else a gather (rows past `count`
/// repeat the last row).
template <int K>
struct ComponentLoader {
  const float* p;
  int k, count;
  __m256i at;  // row * k
  NC_AVX2_INLINE ComponentLoader(const float* p_, int k_, int count_) : p(p_), k(k_), count(count_) {
    at = _mm256_mullo_epi32(_mm256_min_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(count - 1)),
                            _mm256_set1_epi32(k));
  }
  NC_AVX2_INLINE void load(__m256* out) const {
    if (count == 8 && K == 3) {  // e[3r + j]: blend the three loads, then permute
      const __m256 v0 = _mm256_loadu_ps(p), v1 = _mm256_loadu_ps(p + 8), v2 = _mm256_loadu_ps(p + 16);
      out[0] = _mm256_permutevar8x32_ps(_mm256_blend_ps(_mm256_blend_ps(v0, v1, 0x92), v2, 0x24),
                                        _mm256_setr_epi32(0, 3, 6, 1, 4, 7, 2, 5));
      out[1] = _mm256_permutevar8x32_ps(_mm256_blend_ps(_mm256_blend_ps(v0, v1, 0x24), v2, 0x49),
                                        _mm256_setr_epi32(1, 4, 7, 2, 5, 0, 3, 6));
      out[2] = _mm256_permutevar8x32_ps(_mm256_blend_ps(_mm256_blend_ps(v0, v1, 0x49), v2, 0x92),
                                        _mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7));
    } else if (count == 8 && K == 2) {
      __m256i words[2];
      split_words(_mm256_castps_si256(_mm256_loadu_ps(p)), _mm256_castps_si256(_mm256_loadu_ps(p + 8)), words);
      out[0] = _mm256_castsi256_ps(words[0]);
      out[1] = _mm256_castsi256_ps(words[1]);
    } else {
      for (int j = 0; j < k; ++j) out[j] = _mm256_i32gather_ps(p + j, at, 4);
    }
  }
};

/// scale_index_valid of 8 scales (lanes that are not finite and >= 0 give some index in range).
NC_AVX2_INLINE __m256i scale_index8(__m256 scale) {
  const __m256i bits = _mm256_and_si256(_mm256_castps_si256(scale), _mm256_set1_epi32(0x7FFFFFFF));
  const __m256i e = _mm256_srli_epi32(bits, 23);
  __m256i cell = _mm256_sub_epi32(_mm256_srli_epi32(bits, 17), _mm256_set1_epi32(ScaleCells::kFirstExp << 6));
  cell = _mm256_min_epi32(_mm256_max_epi32(cell, _mm256_setzero_si256()),
                          _mm256_set1_epi32(int(sizeof(ScaleCells::first)) - 1));
  __m256i k_bound[2];
  gather64_words(kMixtureSimd.cell_bound, cell, k_bound);
  const __m256i up = _mm256_castps_si256(_mm256_cmp_ps(_mm256_castsi256_ps(k_bound[1]), scale, _CMP_LE_OQ));
  __m256i k = _mm256_sub_epi32(k_bound[0], up);
  k = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(ScaleCells::kFirstExp), e), k);
  // k is in [0, kNumScales - 1]: the max sets it to kNumScales - 1 above the last exponent
  return _mm256_max_epi32(k, _mm256_and_si256(_mm256_cmpgt_epi32(e, _mm256_set1_epi32(ScaleCells::kLastExp)),
                                              _mm256_set1_epi32(kNumScales - 1)));
}

/// floor(r * floor(2^48 / sum) / 2^32) for 4 lanes, recip = floor(2^48 / sum) / 2^32 (exact: the
/// double quotient is never within rounding of an integer it is not equal to, and r * recip *
/// 2^32 is an integer below 2^53, so the product by the scaled recip is exact too).
NC_AVX2_INLINE __m128i weight_share4(__m128i r, __m256d recip) {
  return _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_cvtepi32_pd(r), recip));
}

NC_AVX2_INLINE __m256d reciprocal48(__m128i sum) {
  return _mm256_mul_pd(_mm256_floor_pd(_mm256_div_pd(_mm256_set1_pd(281474976710656.0), _mm256_cvtepi32_pd(sum))),
                       _mm256_set1_pd(1.0 / 4294967296.0));
}

NC_AVX2_INLINE __m256i round_to_int(__m256 v) {
  return _mm256_cvttps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

NC_AVX2_INLINE __m256 finite_nonnegative(__m256 v) {
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  return _mm256_and_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ), _mm256_cmp_ps(v, inf, _CMP_NEQ_OQ));
}

/// Quantise the parameters of symbols [first, first + count) of the model, count in 1..8: the
/// integers GmmModelT::dist computes (quantize_weights, quantize_mean_valid, scale_index_valid,
/// support and f0), checked equal by the tests; with for_decoder, the decoder's fields too.
template <int K>
NC_AVX2 void prepare_group(const GmmModelT<K>& m, size_t first, int count, MixtureGroup<K>& b, bool for_decoder) {
  constexpr int kC = MixtureGroup<K>::kComponents;
  const int k = K ? K : m.k_;
  b.k = k;
  const float *wp = m.weights + first * k, *mp = m.means + first * k, *sp = m.scales + first * k;
  __m256 w[kC], means[kC], scales[kC];
  ComponentLoader<K>(wp, k, count).load(w);
  ComponentLoader<K>(mp, k, count).load(means);
  ComponentLoader<K>(sp, k, count).load(scales);
  const __m256i ones = _mm256_set1_epi32(-1);
  // weights: r_j = round(w_j 2^(16 - e)) with 2^e <= max w < 2^(e+1), q_j = (r_j R) >> 32 with
  // R = floor(2^48 / sum r), the remainder to the first largest r_j
  __m256 top = _mm256_setzero_ps();
  __m256i ok = ones;
  for (int j = 0; j < k; ++j) {
    ok = _mm256_and_si256(ok, _mm256_castps_si256(finite_nonnegative(w[j])));
    top = _mm256_max_ps(top, w[j]);
  }
  const __m256i top_exp = _mm256_srli_epi32(_mm256_castps_si256(top), 23);  // biased exponent
  ok = _mm256_and_si256(ok, _mm256_cmpgt_epi32(top_exp, _mm256_set1_epi32(15)));  // 2^(16-e) is normal
  const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(
      _mm256_sub_epi32(_mm256_set1_epi32(2 * 127 + 16), _mm256_max_epi32(top_exp, _mm256_set1_epi32(16))), 23));
  __m256i r[kC];
  __m256i sum_r = _mm256_setzero_si256(), best = ones, big = _mm256_setzero_si256();
  for (int j = 0; j < k; ++j) {
    r[j] = round_to_int(_mm256_mul_ps(w[j], scale));
    sum_r = _mm256_add_epi32(sum_r, r[j]);
    // big = j where r_j is larger than every earlier one (big < j before: max sets it)
    big = _mm256_max_epi32(big, _mm256_and_si256(_mm256_cmpgt_epi32(r[j], best), _mm256_set1_epi32(j)));
    best = _mm256_max_epi32(best, r[j]);
  }
  sum_r = _mm256_max_epi32(sum_r, _mm256_set1_epi32(1));  // lanes with no valid weights
  const __m256d recip_lo = reciprocal48(half128(sum_r, 0)), recip_hi = reciprocal48(half128(sum_r, 1));
  __m256i q[kC];
  __m256i sum_q = _mm256_setzero_si256();
  for (int j = 0; j < k; ++j) {
    q[j] = _mm256_set_m128i(weight_share4(half128(r[j], 1), recip_hi), weight_share4(half128(r[j], 0), recip_lo));
    sum_q = _mm256_add_epi32(sum_q, q[j]);
  }
  const __m256i rest = _mm256_sub_epi32(_mm256_set1_epi32(kWeightTotal), sum_q);
  // means, scales and the support: the union over components with q_j > 0, clamped to
  // kMaxWidth positions around the (first) heaviest one
  __m256i lo = _mm256_set1_epi32(std::numeric_limits<int32_t>::max());
  __m256i hi = _mm256_set1_epi32(std::numeric_limits<int32_t>::min());
  __m256i heavy_w = _mm256_setzero_si256(), heavy_c = _mm256_setzero_si256();
  __m256 moment1 = _mm256_setzero_ps(), moment2 = moment1;  // sum_j w_j mu_j, sum_j w_j (mu_j^2 + sigma_j^2)
  for (int j = 0; j < k; ++j) {
    const __m256i qj = _mm256_add_epi32(q[j], _mm256_and_si256(rest, _mm256_cmpeq_epi32(big, _mm256_set1_epi32(j))));
    const __m256 mj = means[j], sj = scales[j];
    const __m256i exp_bits = _mm256_and_si256(_mm256_castps_si256(mj), _mm256_set1_epi32(0x7F800000));
    ok = _mm256_andnot_si256(_mm256_cmpeq_epi32(exp_bits, _mm256_set1_epi32(0x7F800000)), ok);
    ok = _mm256_and_si256(ok, _mm256_castps_si256(finite_nonnegative(sj)));
    const __m256 limit = _mm256_set1_ps(float(kMeanLimit));
    const __m256 v = _mm256_mul_ps(mj, _mm256_set1_ps(256.0f));  // exact (or +-inf, clamped)
    const __m256i mu = round_to_int(_mm256_min_ps(_mm256_max_ps(v, _mm256_sub_ps(_mm256_setzero_ps(), limit)), limit));
    const __m256i sk = scale_index8(sj);
    __m256i inv_half[2];
    gather64_words(kMixtureSimd.inv_half, sk, inv_half);
    const __m256i half = inv_half[1];
    const __m256i center = _mm256_srai_epi32(_mm256_add_epi32(mu, _mm256_set1_epi32(128)), 8);
    // a component with q_j = 0 is moved 2^30 outwards (|center| + half < 2^17), past every used
    // one's bounds: at least one component is used, so lo and hi are those of the used ones
    const __m256i unused = _mm256_andnot_si256(_mm256_cmpgt_epi32(qj, _mm256_setzero_si256()), _mm256_set1_epi32(1 << 30));
    lo = _mm256_min_epi32(lo, _mm256_add_epi32(_mm256_sub_epi32(center, half), unused));
    hi = _mm256_max_epi32(hi, _mm256_sub_epi32(_mm256_add_epi32(center, half), unused));
    heavy_c = _mm256_blendv_epi8(heavy_c, center, _mm256_cmpgt_epi32(qj, heavy_w));
    heavy_w = _mm256_max_epi32(heavy_w, qj);
    _mm256_store_si256(reinterpret_cast<__m256i*>(b.mu[j]), mu);
    _mm256_store_si256(reinterpret_cast<__m256i*>(b.inv_m1[j]), inv_half[0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(b.w[j]), qj);
    if (for_decoder) {  // in 2^-8 units (sigma_fixed / 2^8)
      const __m256 wf = _mm256_cvtepi32_ps(qj), mf = _mm256_cvtepi32_ps(mu);
      const __m256 sf = _mm256_mul_ps(_mm256_cvtepi32_ps(gather32(kMixtureSimd.sigma, sk)), _mm256_set1_ps(1.0f / 256));
      moment1 = _mm256_add_ps(moment1, _mm256_mul_ps(wf, mf));
      moment2 = _mm256_add_ps(moment2, _mm256_mul_ps(wf, _mm256_add_ps(_mm256_mul_ps(mf, mf), _mm256_mul_ps(sf, sf))));
    }
  }
  const __m256i width_m1 = _mm256_set1_epi32(kMaxWidth - 1);
  const __m256i wide = _mm256_cmpgt_epi32(_mm256_sub_epi32(hi, lo), width_m1);
  // halves (bit 0: symbols 0-3, bit 4: 4-7) whose supports are all unclamped: F(u_0) from the tail rule
  const uint32_t clamped = uint32_t(_mm256_movemask_ps(_mm256_castsi256_ps(wide)));
  const uint32_t tail_only = kMixtureSimd.tail_shortcut ? uint32_t((clamped & 0x0F) == 0) | uint32_t((clamped & 0xF0) == 0) << 4 : 0u;
  const __m256i lo_c = _mm256_min_epi32(_mm256_max_epi32(_mm256_sub_epi32(heavy_c, _mm256_set1_epi32(kMaxWidth / 2)), lo),
                                        _mm256_sub_epi32(hi, width_m1));
  lo = _mm256_blendv_epi8(lo, lo_c, wide);
  hi = _mm256_blendv_epi8(hi, _mm256_add_epi32(lo_c, width_m1), wide);
  const __m256i n = _mm256_add_epi32(_mm256_sub_epi32(hi, lo), _mm256_set1_epi32(1));
  _mm256_store_si256(reinterpret_cast<__m256i*>(b.lo), lo);
  _mm256_store_si256(reinterpret_cast<__m256i*>(b.n), n);
  // the mixture's mean (floor, 2^-8 units, |mean| <= 2^24) and standard deviation * 2^24 in
  // 2^-8 units (<= 2^48), converted to integers by the 2^52 bias (exact below 2^52)
  const __m256 mean_f = _mm256_mul_ps(moment1, _mm256_set1_ps(1.0f / kWeightTotal));
  const __m256i mean_floor = _mm256_cvttps_epi32(_mm256_floor_ps(mean_f));
  const __m256 variance = _mm256_sub_ps(_mm256_mul_ps(moment2, _mm256_set1_ps(1.0f / kWeightTotal)), _mm256_mul_ps(mean_f, mean_f));
  const __m256 deviation = _mm256_mul_ps(_mm256_sqrt_ps(_mm256_max_ps(variance, _mm256_setzero_ps())), _mm256_set1_ps(16777216.0f));
  const __m256d bias = _mm256_set1_pd(4503599627370496.0);
  // f0 = F(256 lo - 128) and the decoder's d0 = 256 lo - 128 - mu_j, 4 symbols per half; the
  // decoder's centre and spread
  for (int h = 0; h < 2; ++h) {
    const __m256i u = _mm256_sub_epi64(_mm256_slli_epi64(_mm256_cvtepi32_epi64(half128(lo, h)), 8), _mm256_set1_epi64x(128));
    __m256i acc = _mm256_setzero_si256();
    const bool tails = tail_only >> (4 * h) & 1;
    for (int j = 0; j < k; ++j) {
      const __m256i mu = load4_i64(b.mu[j] + 4 * h), w = load4_u64(b.w[j] + 4 * h);
      const __m256i d0 = _mm256_and_si256(_mm256_sub_epi64(u, mu), _mm256_set1_epi64x(0xFFFFFFFF));
      if (for_decoder) _mm256_store_si256(reinterpret_cast<__m256i*>(b.d0[j] + 4 * h), d0);
      const __m256i inv = load4_u64(b.inv_m1[j] + 4 * h);
      if (tails) {  // F(u_0) = [t < tail_zero]
        const __m256i a = _mm256_abs_epi32(d0);
        const __m256i t = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epu32(a, inv), a), 8 + kInvSigmaBits - kTableStepBits - 16);
        acc = _mm256_add_epi64(acc, _mm256_and_si256(w, _mm256_cmpgt_epi64(_mm256_set1_epi64x(kMixtureSimd.tail_zero), t)));
      } else {
        acc = centred_sum(acc, w, centred_cdf(d0, inv));
      }
    }
    const __m256i mixed = _mm256_srli_epi64(acc, 16);  // centred (low 32 bits) unless tails
    _mm_store_si128(reinterpret_cast<__m128i*>(b.f0 + 4 * h),
                    low_dwords(tails ? mixed : _mm256_add_epi32(mixed, _mm256_set1_epi64x(kHalfCdf))));
    if (!for_decoder) continue;
    const __m256d deviation_h = _mm256_cvtps_pd(h ? _mm256_extractf128_ps(deviation, 1) : _mm256_castps256_ps128(deviation));
    _mm256_store_si256(reinterpret_cast<__m256i*>(b.spread + 4 * h),
                       _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(deviation_h, bias)), _mm256_castpd_si256(bias)));
    // centre = floor(mean) + 128 - 256 (lo + 1) = floor(mean) - (u + 256)
    _mm256_store_si256(reinterpret_cast<__m256i*>(b.centre + 4 * h),
                       _mm256_sub_epi64(_mm256_cvtepi32_epi64(half128(mean_floor, h)), _mm256_add_epi64(u, _mm256_set1_epi64x(256))));
  }
  if (for_decoder) {  // its window bounds (a support of fewer than 3 positions would take the
                     // reference path: none here, half-widths are >= 1)
    _mm256_store_si256(reinterpret_cast<__m256i*>(b.last_start), _mm256_sub_epi32(n, _mm256_set1_epi32(3)));
    _mm256_store_si256(reinterpret_cast<__m256i*>(b.span), _mm256_sub_epi32(_mm256_set1_epi32(kTotal - 1), n));
    _mm256_store_si256(reinterpret_cast<__m256i*>(b.f0_centred),
                       _mm256_sub_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(b.f0)), _mm256_set1_epi32(kHalfCdf)));
    ok = _mm256_and_si256(ok, _mm256_cmpgt_epi32(n, _mm256_set1_epi32(2)));
  }
  b.ok = uint32_t(_mm256_movemask_ps(_mm256_castsi256_ps(ok))) & ((1u << count) - 1);
}

/// ((sum_j w_j F_j >> 16) - f0) * span >> 30 from centred_sum's acc and f0 - 2^29 (low 32
/// bits): ContinuousDist::cdf without the "+ pos".
NC_AVX2_INLINE __m256i scaled_cdf(__m256i acc, __m256i f0_centred, __m256i span) {
  return _mm256_srli_epi64(_mm256_mul_epu32(_mm256_sub_epi32(_mm256_srli_epi64(acc, 16), f0_centred), span), kCdfBits);
}

/// cdf(p) and cdf(p + 1) of symbols g..g+3 of a group (p = x - lo); c1 is all ones for a symbol
/// outside its support (escaped by the reference path).
template <int K>
NC_AVX2_INLINE void interval4(const MixtureGroup<K>& b, int g, const int32_t* x, uint32_t* c0, uint32_t* c1) {
  const __m256i lo = load4_i64(b.lo + g);
  const __m256i p64 = _mm256_sub_epi64(_mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x))), lo);
  const __m256i inside = _mm256_andnot_si256(_mm256_cmpgt_epi64(_mm256_setzero_si256(), p64),
                                             _mm256_cmpgt_epi64(load4_u64(b.n + g), p64));
  const __m256i p = _mm256_and_si256(p64, inside);
  const __m256i u0 = _mm256_add_epi64(_mm256_sub_epi64(_mm256_slli_epi64(lo, 8), _mm256_set1_epi64x(128)),
                                      _mm256_slli_epi64(p, 8));
  const __m256i u1 = _mm256_add_epi64(u0, _mm256_set1_epi64x(256));
  __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
  for (int j = 0; j < (K ? K : b.k); ++j) {
    const __m256i mu = load4_i64(b.mu[j] + g), inv = load4_u64(b.inv_m1[j] + g), w = load4_u64(b.w[j] + g);
    acc0 = centred_sum(acc0, w, component_cdf(u0, mu, inv));
    acc1 = centred_sum(acc1, w, component_cdf(u1, mu, inv));
  }
  const __m256i f0 = _mm256_sub_epi32(load4_u64(b.f0 + g), _mm256_set1_epi64x(kHalfCdf));
  const __m256i span = _mm256_sub_epi64(_mm256_set1_epi64x(kTotal - 1), load4_u64(b.n + g));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(c0), low_dwords(_mm256_add_epi64(scaled_cdf(acc0, f0, span), p)));
  const __m256i v1 = _mm256_add_epi64(scaled_cdf(acc1, f0, span), _mm256_add_epi64(p, _mm256_set1_epi64x(1)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(c1), low_dwords(_mm256_or_si256(v1, _mm256_xor_si256(inside, _mm256_set1_epi64x(-1)))));
}

/// A group's quantised parameters and its symbols' intervals, for SimdChunkEncoder (kept
/// outside the encoder, whose state then stays in registers).
template <int K>
struct EncoderGroup {
  MixtureGroup<K> params;
  alignas(32) uint32_t c0[MixtureGroup<K>::kSize], c1[MixtureGroup<K>::kSize];
};

/// Encoder of a chunk on the SIMD path: a group of 8 symbols at a time, from the last group.
template <int K>
class SimdChunkEncoder {
 public:
  static constexpr int kGroup = MixtureGroup<K>::kSize;
  NC_AVX2 SimdChunkEncoder(const GmmModelT<K>& m, const int32_t* symbols, size_t begin, size_t end,
                           EncoderGroup<K>& group)
      : m_(m), symbols_(symbols), begin_(begin), end_(end), first_(begin + (end - begin) / kGroup * kGroup),
        enc_(end - begin), g_(group) {
    if (first_ == end_ && first_ > begin_) first_ -= kGroup;
    load();
  }
  bool done() const { return s_ == 0 && first_ == begin_; }
  NC_AVX2_INLINE void step() {
    if (s_ == 0) {
      first_ -= kGroup;
      load();
    }
    --s_;
    enc_.reserve_symbol();
    if ((g_.params.ok >> s_ & 1) && g_.c1[s_] != 0xFFFFFFFFu) {
      enc_.put({g_.c0[s_], g_.c1[s_] - g_.c0[s_]});
    } else {
      const size_t i = first_ + size_t(s_);
      Op ops[kMaxOps];
      for (int o = symbol_ops(m_.dist(i), symbols_[i], i, ops); o-- > 0;) enc_.put(ops[o]);
    }
  }
  std::vector<uint8_t> finish() const { return enc_.finish(); }

 private:
  /// Quantise the group at first_ and compute its symbols' intervals.
  NC_AVX2_INLINE void load() {
    s_ = int(std::min<size_t>(kGroup, end_ - first_));
    if (s_ == 0) return;  // an empty chunk
    prepare_group(m_, first_, s_, g_.params, false);
    alignas(32) int32_t x[kGroup];
    for (int s = 0; s < kGroup; ++s) x[s] = symbols_[first_ + size_t(std::min(s, s_ - 1))];
    interval4(g_.params, 0, x, g_.c0, g_.c1);
    interval4(g_.params, 4, x + 4, g_.c0 + 4, g_.c1 + 4);
  }

  const GmmModelT<K>& m_;
  const int32_t* symbols_;
  size_t begin_, end_, first_;  // first_: the current group's first symbol
  int s_ = 0;                   // symbols of the current group still to code
  RansEncoder enc_;
  EncoderGroup<K>& g_;
};

/// A decoded position and its interval [c0, c1).
struct Located {
  uint32_t pos, c0, c1;
};

/// cdf of symbol s of a group at positions start .. start + 3 (inside its support), in one
/// vector per component.
template <int K>
NC_AVX2_INLINE __m256i window_cdf(const MixtureGroup<K>& b, int s, uint32_t start) {
  const __m256i pos = _mm256_add_epi64(_mm256_set1_epi64x(start), _mm256_setr_epi64x(0, 1, 2, 3));
  const __m256i offset = _mm256_slli_epi64(pos, 8);
  __m256i acc = _mm256_setzero_si256();
  for (int j = 0; j < (K ? K : b.k); ++j) {
    const __m256i d = _mm256_add_epi32(_mm256_set1_epi64x(int64_t(b.d0[j][s])), offset);
    acc = centred_sum(acc, _mm256_set1_epi32(int(b.w[j][s])), centred_cdf(d, _mm256_set1_epi32(int(b.inv_m1[j][s]))));
  }
  // cdf = ((F - f0) * span >> 30) + pos (F - f0 >= 0 in the low 32 bits)
  const __m256i f0_centred = _mm256_set1_epi32(b.f0_centred[s]);
  return _mm256_add_epi64(scaled_cdf(acc, f0_centred, _mm256_set1_epi32(int(b.span[s]))), pos);
}

/// How many of a window's 4 cdf values c (stored to v) are <= cf: they are a prefix.
NC_AVX2_INLINE uint32_t count_at_or_below(__m256i c, uint32_t cf, uint64_t* v) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(v), c);
  const __m256i above = _mm256_cmpgt_epi64(c, _mm256_set1_epi64x(cf));
  return 4 - uint32_t(_mm_popcnt_u32(uint32_t(_mm256_movemask_pd(_mm256_castsi256_pd(above)))));
}

/// locate_in_group's answer when the window from `start` does not bracket cf (count: how many of
/// its positions have cdf <= cf, 0 or 4): the next window in that direction (95% of the rest
/// on the bench data), then the reference's search_beyond from its edge.
template <int K>
NC_AVX2 __attribute__((noinline)) Located locate_beyond(const MixtureGroup<K>& b, int s, uint32_t cf,
                                                        uint32_t start, uint32_t count) {
  // the window ending at start (count == 0: start > 0, since cdf(0) = 0 <= cf) or starting at
  // start + 3: the position next to the first window is always in it
  const uint32_t next = count == 0 ? start - std::min<uint32_t>(start, 3) : std::min(start + 3, b.last_start[s]);
  alignas(32) uint64_t v[4];
  const uint32_t c = count_at_or_below(window_cdf(b, s, next), cf, v);
  if (c - 1 < 3u) return {next + c - 1, uint32_t(v[c - 1]), uint32_t(v[c])};
  Located r;
  const bool below = c == 0;
  r.pos = search_beyond(b.dist(s), b.n[s] + 1, cf, below ? next : next + 3, uint32_t(v[below ? 0 : 3]), below,
                        r.c0, r.c1);
  return r;
}

/// The position of symbol s of a group coded at cf: the mixture cdf at the 4 positions from
/// guess - 1, kept inside the support (the guess, the Gaussian quantile of the mixture's mean
/// and standard deviation, is usually the answer or next to it: ~97% of K = 3 symbols on the
/// bench data are settled here); otherwise locate_beyond.
template <int K>
NC_AVX2_INLINE Located locate_in_group(const MixtureGroup<K>& b, int s, uint32_t cf) {
  // mean + deviation * quantile at f0 + cf 2^14 (below 2^31: in 32 bits, which spares GCC a
  // zero extension it makes through a vector register, on the chain from one symbol to the
  // next; |quantile| <= 2^11, spread <= 2^48: the product fits), minus one position
  static_assert(kCdfBits < 31, "f0 + cf 2^14 fits in 32 bits");
  const uint32_t level = b.f0[s] + (cf << (kCdfBits - kPrecision));
  const int64_t unit = kMixtureSimd.quantile[level >> MixtureSimdTables::kQuantileShift];
  const int64_t guess = floor_div256(b.centre[s] + ((unit * int64_t(b.spread[s])) >> 32));
  const uint32_t start = uint32_t(std::min<int64_t>(std::max<int64_t>(guess, 0), b.last_start[s]));
  alignas(32) uint64_t v[4];
  const uint32_t count = count_at_or_below(window_cdf(b, s, start), cf, v);
  if (__builtin_expect(count - 1 < 3u, 1)) return {start + count - 1, uint32_t(v[count - 1]), uint32_t(v[count])};
  return locate_beyond(b, s, cf, start, count);
}

// The rare cases, out of line: the decoder goes in and comes back by value, so that the hot
// loop keeps its state in registers.

/// An escaped value (its payload follows) of a symbol whose support starts at lo, n positions.
NC_AVX2 __attribute__((noinline)) inline RansDecoder decode_escape(RansDecoder dec, int64_t lo, uint32_t n, int32_t* out) {
  *out = decoded_value(dec, lo, n, n);
  return dec;
}

/// Symbol i on the reference path.
template <int K>
NC_AVX2 __attribute__((noinline)) RansDecoder decode_reference(const GmmModelT<K>& m, size_t i, RansDecoder dec,
                                                              int32_t* out) {
  *out = decode_symbol(m.dist(i), dec);
  return dec;
}

/// Decode symbol s of a group into out (checked: whether the decoder checks the words left).
template <int K, bool checked>
NC_AVX2_INLINE void decode_in_group(const MixtureGroup<K>& b, int s, RansDecoder& dec, int32_t* out) {
  const Located r = locate_in_group(b, s, dec.peek());
  if (checked)
    dec.advance({r.c0, r.c1 - r.c0});
  else
    dec.advance_unchecked({r.c0, r.c1 - r.c0});
  if (__builtin_expect(r.pos == b.n[s], 0))
    dec = decode_escape(dec, b.lo[s], b.n[s], out);
  else
    *out = b.lo[s] + int32_t(r.pos);  // |lo| < 2^17
}

/// Decoder of a chunk on the SIMD path, a group of 8 symbols at a time: the next group is
/// quantised while the current one is decoded (that work does not wait for the rANS state).
template <int K>
class SimdChunkDecoder {
 public:
  static constexpr int kGroup = MixtureGroup<K>::kSize;
  NC_AVX2 SimdChunkDecoder(const GmmModelT<K>& m, const ChunkSpan& c, int32_t* out, MixtureGroup<K>* groups)
      : m_(m), dec_(c.data, c.len), out_(out), first_(c.begin), end_(c.end), groups_(groups) {
    if (first_ < end_) prepare(groups_[0], first_);
  }
  bool done() const { return first_ >= end_; }
  /// Symbols in the current group.
  int size() const { return int(std::min<size_t>(kGroup, end_ - first_)); }
  /// Quantise the group after the current one.
  NC_AVX2_INLINE void prepare_next() {
    if (first_ + kGroup < end_) prepare(groups_[(g_ + 1) & 1], first_ + kGroup);
  }
  /// Whether the words left cover every read of a group (kMaxOps per symbol, one word each at
  /// most): then its symbols' fast path skips the per-symbol check (the rare paths keep theirs).
  bool group_fits() const { return dec_.bytes_left() >= size_t(2 * kMaxOps * kGroup); }
  /// Decode symbol s of the current group (unchecked: group_fits() held at the group's start).
  template <bool checked = true>
  NC_AVX2_INLINE void symbol(int s) {
    const MixtureGroup<K>& b = groups_[g_ & 1];
    const size_t i = first_ + size_t(s);
    if (__builtin_expect(b.ok >> s & 1, 1))
      decode_in_group<K, checked>(b, s, dec_, out_ + i);
    else
      dec_ = decode_reference(m_, i, dec_, out_ + i);
  }
  void next_group() {
    first_ += kGroup;
    ++g_;
  }
  NC_AVX2_INLINE void group() {
    prepare_next();
    const int n = size();
    if (__builtin_expect(group_fits(), 1))
      for (int s = 0; s < n; ++s) symbol<false>(s);
    else
      for (int s = 0; s < n; ++s) symbol<true>(s);
    next_group();
  }
  void finish() const { dec_.finish(); }

 private:
  NC_AVX2_INLINE void prepare(MixtureGroup<K>& b, size_t first) const {
    prepare_group(m_, first, int(std::min<size_t>(kGroup, end_ - first)), b, true);
  }

  const GmmModelT<K>& m_;
  RansDecoder dec_;
  int32_t* out_;
  size_t first_, end_;       // first_: the current group's first symbol
  unsigned g_ = 0;           // the current group is groups_[g_ & 1]
  MixtureGroup<K>* groups_;  // two, outside the decoder (whose state then stays in registers)
};

// The drivers of core.h for this model, with their loops compiled for AVX2.

template <int K>
NC_AVX2 std::vector<uint8_t> encode_chunk(const SimdGmmModel<K>& model, const int32_t* symbols,
                                          size_t begin, size_t end) {
  EncoderGroup<K> group;
  SimdChunkEncoder<K> c(model.ref, symbols, begin, end, group);
  while (!c.done()) c.step();
  return c.finish();
}

template <int K>
NC_AVX2 void encode_two(const SimdGmmModel<K>& model, const int32_t* symbols, const size_t* bounds,
                        std::vector<uint8_t>* out) {
  EncoderGroup<K> groups[2];
  SimdChunkEncoder<K> a(model.ref, symbols, bounds[0], bounds[1], groups[0]),
      b(model.ref, symbols, bounds[1], bounds[2], groups[1]);
  while (!a.done() && !b.done()) {
    a.step();
    b.step();
  }
  while (!a.done()) a.step();
  while (!b.done()) b.step();
  out[0] = a.finish();
  out[1] = b.finish();
}

template <int K>
NC_AVX2 void decode_chunk(const SimdGmmModel<K>& model, const ChunkSpan& c, int32_t* out) {
  MixtureGroup<K> groups[2];
  SimdChunkDecoder<K> d(model.ref, c, out, groups);
  while (!d.done()) d.group();
  d.finish();
}

/// Two chunks in turns, one symbol of each at a time.
template <int K>
NC_AVX2 void decode_two(const SimdGmmModel<K>& model, const ChunkSpan& a, const ChunkSpan& b, int32_t* out) {
  MixtureGroup<K> groups[4];
  SimdChunkDecoder<K> x(model.ref, a, out, groups), y(model.ref, b, out, groups + 2);
  while (!x.done() && !y.done()) {
    x.prepare_next();
    y.prepare_next();
    const int nx = x.size(), ny = y.size(), both = std::min(nx, ny);
    if (__builtin_expect(x.group_fits() && y.group_fits(), 1)) {
      for (int s = 0; s < both; ++s) {
        x.template symbol<false>(s);
        y.template symbol<false>(s);
      }
    } else {
      for (int s = 0; s < both; ++s) {
        x.symbol(s);
        y.symbol(s);
      }
    }
    for (int s = both; s < nx; ++s) x.symbol(s);
    for (int s = both; s < ny; ++s) y.symbol(s);
    x.next_group();
    y.next_group();
  }
  while (!x.done()) x.group();
  while (!y.done()) y.group();
  x.finish();
  y.finish();
}

#else  // no SIMD path on this platform: SimdGmmModel is never chosen (simd_active() is false)

template <int K>
std::vector<uint8_t> encode_chunk(const SimdGmmModel<K>& model, const int32_t* symbols, size_t begin, size_t end) {
  return encode_chunk(model.ref, symbols, begin, end);
}

template <int K>
void encode_two(const SimdGmmModel<K>& model, const int32_t* symbols, const size_t* bounds, std::vector<uint8_t>* out) {
  encode_two(model.ref, symbols, bounds, out);
}

template <int K>
void decode_chunk(const SimdGmmModel<K>& model, const ChunkSpan& c, int32_t* out) {
  decode_chunk(model.ref, c, out);
}

template <int K>
void decode_two(const SimdGmmModel<K>& model, const ChunkSpan& a, const ChunkSpan& b, int32_t* out) {
  decode_two(model.ref, a, b, out);
}

#endif

}  // namespace nc
