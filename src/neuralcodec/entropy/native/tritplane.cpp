// Native trit-plane model: see tritplane.h. Bit-exact with entropy/tritplane.py (tested).
#include "tritplane.h"

#include <algorithm>
#include <vector>

#include "models.h"

namespace nc {
namespace {

constexpr int64_t kTotal64 = kTotal;   // the coder's M = 2^16, as int64

// F(b - 1/2) in 2^30 units under N(0, sigma_k): the coder's own CDF evaluation (as boundary_cdf).
inline int64_t boundary_cdf(int64_t b, uint64_t inv) {
  return eval_cdf(kGaussTable, 256 * b - 128, inv);
}

// log2(x) * one for 1 <= x < 2^52, as log2_fixed.
inline int64_t log2_fixed(const TritTables& t, int64_t x) {
  if (x < 1) x = 1;
  int e = 0;                         // floor(log2 x); portable (no compiler builtins)
  while ((x >> e) > 1) ++e;
  const int64_t top = e >= 8 ? x >> (e - 8) : x << (8 - e);
  return e * t.one + t.log2m[top - 256];
}

// Element indices by increasing key, ties by increasing index: LSD radix sort (stable),
// 11-bit digits, skipping digits that all keys share.
void order_by_key(const std::vector<uint64_t>& key, int64_t* order) {
  const size_t n = key.size();
  constexpr int kBits = 11;
  constexpr size_t kBuckets = size_t(1) << kBits;
  std::vector<uint32_t> idx(n), tmp(n);
  for (size_t i = 0; i < n; ++i) idx[i] = uint32_t(i);
  std::vector<size_t> count(kBuckets);
  for (int shift = 0; shift < 64; shift += kBits) {
    std::fill(count.begin(), count.end(), 0);
    for (size_t i = 0; i < n; ++i) ++count[(key[i] >> shift) & (kBuckets - 1)];
    if (n == 0 || count[(key[0] >> shift) & (kBuckets - 1)] == n) continue;
    size_t sum = 0;
    for (auto& c : count) {
      const size_t c0 = c;
      c = sum;
      sum += c0;
    }
    for (size_t i = 0; i < n; ++i) {
      const uint32_t e = idx[i];
      tmp[count[(key[e] >> shift) & (kBuckets - 1)]++] = e;
    }
    idx.swap(tmp);
  }
  for (size_t i = 0; i < n; ++i) order[i] = idx[i];
}

}  // namespace

void trit_plane_model(const TritTables& t, const int64_t* lo, const int64_t* k, size_t n,
                      int64_t sub, int64_t certain, int64_t* masses, uint8_t* active,
                      int64_t* order) {
  std::vector<uint64_t> keys(n);   // (2^51 - 1) - priority: increasing key = decreasing priority
  for (size_t i = 0; i < n; ++i) {
    const uint64_t inv = kInvSigma[k[i]];
    int64_t e[4];
    for (int j = 0; j < 4; ++j) e[j] = boundary_cdf(lo[i] + j * sub, inv);
    int64_t f[3], q[3];
    int64_t total = 0, qsum = 0;
    int big = 0;
    for (int j = 0; j < 3; ++j) {
      masses[3 * i + j] = e[j + 1] - e[j];
      f[j] = masses[3 * i + j] + 1;
      total += f[j];
      if (f[j] > f[big]) big = j;
    }
    // normalize_freqs: 1 + f (M - 3) // total, remainder to the largest (first on ties)
    for (int j = 0; j < 3; ++j) {
      q[j] = 1 + f[j] * (kTotal64 - 3) / std::max<int64_t>(total, 1);
      qsum += q[j];
    }
    q[big] += kTotal64 - qsum;
    active[i] = q[big] < certain;
    // priorities: (Var << 18) // (H + 1)
    const int64_t var = (q[0] + q[2]) * kTotal64 - (q[2] - q[0]) * (q[2] - q[0]);
    int64_t ent = 0;
    for (int j = 0; j < 3; ++j) ent += q[j] * (16 * t.one - log2_fixed(t, q[j]));
    const int64_t prio = (var << 18) / (ent + 1);         // 0 <= prio < 2^51
    keys[i] = uint64_t((int64_t(1) << 51) - 1 - prio);
  }
  order_by_key(keys, order);
}

}  // namespace nc
