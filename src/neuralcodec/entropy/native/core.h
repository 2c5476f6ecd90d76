// rANS core shared by every model: 32-bit state, 16-bit renormalisation words, precision 16,
// escape payload coding, and the per-chunk encode/decode loops (templates over a model).
//
// A model is any class with `Dist dist(size_t i)` returning the coding distribution of
// symbol i. A Dist has
//     int64_t lo;      value of position 0
//     uint32_t n;      number of real positions (values lo .. lo + n - 1)
//     bool escape;     whether position n is an escape for values outside [lo, lo + n)
//     uint32_t cdf(uint32_t pos) const;   strictly increasing, cdf(0) == 0, for pos < n + escape
//     static constexpr bool kHasGuess;    if true, also
//     uint32_t guess(uint32_t cf, uint32_t total) const;
//                                         a position < total to start the decoder's search
// and may have
//     uint32_t locate(uint32_t cf, uint32_t& c0, uint32_t& c1) const;
//                                         the decoder's whole search (a lookup table, say)
// and the cumulative at n + escape is implicitly 2^16.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace nc {

static_assert(sizeof(uint16_t) == 2 && sizeof(uint32_t) == 4 && sizeof(uint64_t) == 8 &&
                  sizeof(int64_t) == 8 && sizeof(int32_t) == 4,
              "fixed-width integers required");
static_assert((-1 >> 1) == -1 && (int64_t(-3) >> 1) == -2, "arithmetic right shift required");
static_assert(std::numeric_limits<float>::is_iec559 && std::numeric_limits<double>::is_iec559,
              "IEEE-754 float and double required");

// Inlined whatever the compiler's size estimate: the chunk coders' steps, so that their state
// stays in registers when two of them run in turns.
#if defined(__GNUC__) || defined(__clang__)
#define NC_ALWAYS_INLINE __attribute__((always_inline)) inline
#elif defined(_MSC_VER)
#define NC_ALWAYS_INLINE __forceinline
#else
#define NC_ALWAYS_INLINE inline
#endif

constexpr int kPrecision = 16;
constexpr uint32_t kTotal = 1u << kPrecision;  // M = 65536
constexpr uint32_t kStateLow = 1u << 16;       // state lives in [2^16, 2^32)
constexpr int kMaxOps = 4;                     // symbol/escape + side&length + 2 payload pieces
constexpr int kMaxEscapeLength = 33;           // bit length of (distance + 1) <= 2^32

/// Every invalid input or stream ends up as this; the binding maps it to CoderError.
struct CoderErr : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Interval [start, start + freq) of [0, 2^16).
struct Op {
  uint32_t start, freq;
};

inline Op raw_op(uint32_t value, int bits) {
  return {value << (kPrecision - bits), 1u << (kPrecision - bits)};
}

inline int bit_length(uint64_t v) {
  int n = 0;
  while (v) {
    ++n;
    v >>= 1;
  }
  return n;
}

/// Escape payload for position p (= value - lo) outside [0, n): one 7-bit op (side, length L of
/// d + 1 where d is the distance past the support), then the low L - 1 bits of d + 1, high
/// piece first, in pieces of at most 16 bits. Returns the number of ops written.
inline int escape_ops(int64_t p, uint32_t n, Op* ops) {
  const uint32_t side = p >= 0;
  const uint64_t v = (side ? uint64_t(p - int64_t(n)) : uint64_t(-(p + 1))) + 1;
  const int len = bit_length(v);
  int k = 0;
  ops[k++] = raw_op((side << 6) | uint32_t(len), 7);
  int rem = len - 1;
  while (rem > 0) {
    const int b = rem % 16 ? rem % 16 : 16;
    rem -= b;
    ops[k++] = raw_op(uint32_t(v >> rem) & ((1u << b) - 1), b);
  }
  return k;
}

/// Ops (forward order) coding value x under distribution d; returns their count.
template <class Dist>
NC_ALWAYS_INLINE int symbol_ops(const Dist& d, int32_t x, size_t i, Op* ops) {
  const int64_t p = int64_t(x) - d.lo;
  const uint32_t total = d.n + (d.escape ? 1 : 0);
  if (p >= 0 && p < int64_t(d.n)) {
    const uint32_t c0 = d.cdf(uint32_t(p));
    const uint32_t c1 = uint32_t(p) + 1 == total ? kTotal : d.cdf(uint32_t(p) + 1);
    ops[0] = {c0, c1 - c0};
    return 1;
  }
  if (!d.escape)
    throw CoderErr("symbols[" + std::to_string(i) + "] = " + std::to_string(x) +
                   " is outside the alphabet [0, " + std::to_string(d.n) + ")");
  const uint32_t c0 = d.cdf(d.n);
  ops[0] = {c0, kTotal - c0};
  return 1 + escape_ops(p, d.n, ops + 1);
}

/// Encoder of one chunk of about `symbols` symbols. Words are collected in reverse order.
class RansEncoder {
 public:
  explicit RansEncoder(size_t symbols) : cap_(symbols / 2 + 2 * kMaxOps),
      words_(new uint16_t[cap_]), w_(words_.get()) {}

  /// Room for one more symbol's words (a symbol puts at most kMaxOps ops, an op at most one
  /// word, and put() writes one word more than it keeps); the buffer doubles when short.
  NC_ALWAYS_INLINE void reserve_symbol() {
    const size_t used = size_t(w_ - words_.get());
    if (cap_ - used < kMaxOps + 1) {
      cap_ *= 2;
      std::unique_ptr<uint16_t[]> bigger(new uint16_t[cap_]);
      std::memcpy(bigger.get(), words_.get(), used * sizeof(uint16_t));
      words_ = std::move(bigger);
      w_ = words_.get() + used;
    }
  }

  /// Renormalisation without a data-dependent branch (a word is written always, kept or not);
  /// reserve_symbol() first.
  NC_ALWAYS_INLINE void put(Op op) {
    const uint32_t out = uint64_t(x_) >= (uint64_t(op.freq) << 16);
    *w_ = uint16_t(x_);
    w_ += out;
    x_ >>= 16 * out;
    x_ = ((x_ / op.freq) << kPrecision) + (x_ % op.freq) + op.start;
  }

  /// Chunk payload: final state (4 bytes LE) then the words in decoding order (2 bytes LE each).
  NC_ALWAYS_INLINE std::vector<uint8_t> finish() const {
    const size_t words = size_t(w_ - words_.get());
    std::vector<uint8_t> out(4 + 2 * words);
    for (int b = 0; b < 4; ++b) out[b] = uint8_t(x_ >> (8 * b));
    uint8_t* q = out.data() + 4;
    for (size_t k = words; k-- > 0; q += 2) {
      q[0] = uint8_t(words_[k]);
      q[1] = uint8_t(words_[k] >> 8);
    }
    return out;
  }

 private:
  uint32_t x_ = kStateLow;
  size_t cap_;
  std::unique_ptr<uint16_t[]> words_;
  uint16_t* w_;
};

/// Decoder of one chunk; every read is bounds-checked.
class RansDecoder {
 public:
  NC_ALWAYS_INLINE RansDecoder(const uint8_t* data, size_t len) : p_(data), end_(data + len) {
    if (len < 4) throw CoderErr("corrupt stream: chunk shorter than its rANS state");
    x_ = uint32_t(p_[0]) | uint32_t(p_[1]) << 8 | uint32_t(p_[2]) << 16 | uint32_t(p_[3]) << 24;
    p_ += 4;
    if (x_ < kStateLow) throw CoderErr("corrupt stream: invalid rANS state");
  }

  uint32_t peek() const { return x_ & (kTotal - 1); }

  /// Renormalisation without a data-dependent branch while a whole word is left (the refill
  /// happens for about one symbol in six, at random: a branch there mispredicts).
  NC_ALWAYS_INLINE void advance(Op op) {
    x_ = op.freq * (x_ >> kPrecision) + (x_ & (kTotal - 1)) - op.start;
    if (end_ - p_ >= 2) {
      const uint32_t refill = x_ < kStateLow;
      const uint32_t word = uint32_t(p_[0]) | uint32_t(p_[1]) << 8;
      x_ = (x_ << (16 * refill)) | (word & (0u - refill));
      p_ += 2 * refill;
    } else if (x_ < kStateLow) {
      throw CoderErr("corrupt stream: read past the end of a chunk");
    }
  }

  /// Bytes of the chunk not read yet.
  size_t bytes_left() const { return size_t(end_ - p_); }

  /// advance() for a caller that has checked bytes_left() >= 2 (every word it may read is there).
  NC_ALWAYS_INLINE void advance_unchecked(Op op) {
    x_ = op.freq * (x_ >> kPrecision) + (x_ & (kTotal - 1)) - op.start;
    const uint32_t refill = x_ < kStateLow;
    const uint32_t word = uint32_t(p_[0]) | uint32_t(p_[1]) << 8;
    x_ = (x_ << (16 * refill)) | (word & (0u - refill));
    p_ += 2 * refill;
  }

  NC_ALWAYS_INLINE uint32_t raw(int bits) {
    const uint32_t v = peek() >> (kPrecision - bits);
    advance(raw_op(v, bits));
    return v;
  }

  NC_ALWAYS_INLINE void finish() const {
    if (x_ != kStateLow || p_ != end_)
      throw CoderErr("corrupt stream: chunk does not end in the initial rANS state");
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  uint32_t x_;
};

/// Largest position pos in [0, total) with d.cdf(pos) <= cf: branch-free binary search on the
/// monotone cdf (no table is built); writes cdf(pos) to c0.
template <class Dist>
inline uint32_t search(const Dist& d, uint32_t total, uint32_t cf, uint32_t& c0) {
  uint32_t base = 0, len = total, c_base = 0;
  while (len > 1) {  // answer in [base, base + len)
    const uint32_t half = len / 2;
    const uint32_t c = d.cdf(base + half);
    const bool right = c <= cf;
    base = right ? base + half : base;
    c_base = right ? c : c_base;
    len -= half;
  }
  c0 = c_base;
  return base;
}

/// Largest pos with cdf(pos) <= cf, known to lie below position s (below: cdf(s) = c_s > cf) or
/// at or above it (cdf(s) = c_s <= cf): gallops away from s until cdf brackets cf, then bisects.
/// Also returns c0 = cdf(pos) and c1 = cdf(pos + 1).
template <class Dist>
inline uint32_t search_beyond(const Dist& d, uint32_t total, uint32_t cf, uint32_t s, uint32_t c_s,
                              bool below, uint32_t& c0, uint32_t& c1) {
  uint32_t lo, c_lo, hi, c_hi;  // cdf(lo) <= cf < cdf(hi)
  if (below) {  // move lo down (cdf(0) = 0)
    hi = s;
    c_hi = c_s;
    for (uint32_t step = 1;; step *= 2) {
      if (step >= hi) {
        lo = 0;
        c_lo = 0;
        break;
      }
      lo = hi - step;
      c_lo = d.cdf(lo);
      if (c_lo <= cf) break;
      hi = lo;
      c_hi = c_lo;
    }
  } else {  // move hi up (cdf(total) = M)
    lo = s;
    c_lo = c_s;
    for (uint32_t step = 1;; step *= 2) {
      hi = lo + step;
      if (hi >= total) {
        hi = total;
        c_hi = kTotal;
        break;
      }
      c_hi = d.cdf(hi);
      if (c_hi > cf) break;
      lo = hi;
      c_lo = c_hi;
    }
  }
  while (hi - lo > 1) {
    const uint32_t mid = lo + (hi - lo) / 2;
    const uint32_t c = d.cdf(mid);
    if (c <= cf) {
      lo = mid;
      c_lo = c;
    } else {
      hi = mid;
      c_hi = c;
    }
  }
  c0 = c_lo;
  c1 = c_hi;
  return lo;
}

/// Same answer as search(), started from a guessed position g < total: cdf(g) and cdf(g + 1) are
/// evaluated together (independent evaluations overlap; g + 1 = total counts as M), which
/// settles the symbol when the guess is right; otherwise search_beyond from g or g + 1.
template <class Dist>
NC_ALWAYS_INLINE uint32_t search_from(const Dist& d, uint32_t total, uint32_t cf, uint32_t g, uint32_t& c0,
                            uint32_t& c1) {
  const uint32_t at_g = d.cdf(g), above_g = g + 1 < total ? d.cdf(g + 1) : kTotal;
  if (at_g <= cf && cf < above_g) {
    c0 = at_g;
    c1 = above_g;
    return g;
  }
  return at_g > cf ? search_beyond(d, total, cf, g, at_g, true, c0, c1)
                   : search_beyond(d, total, cf, g + 1, above_g, false, c0, c1);
}

/// The value of decoded position pos of a distribution on [lo, lo + n) (+ escape at n): the
/// escape payload is read when pos == n.
NC_ALWAYS_INLINE int32_t decoded_value(RansDecoder& dec, int64_t lo, uint32_t n, uint32_t pos) {
  int64_t p = pos;
  if (pos == n) {  // escape
    const uint32_t head = dec.raw(7);
    const int len = int(head & 63);
    if (len < 1 || len > kMaxEscapeLength) throw CoderErr("corrupt stream: bad escape length");
    uint64_t v = 1;
    for (int rem = len - 1; rem > 0;) {
      const int b = rem % 16 ? rem % 16 : 16;
      rem -= b;
      v = (v << b) | dec.raw(b);
    }
    p = (head >> 6) ? int64_t(n) + int64_t(v - 1) : -int64_t(v);
  }
  const int64_t x = lo + p;
  if (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max())
    throw CoderErr("corrupt stream: decoded value outside int32");
  return int32_t(x);
}

template <class Dist, class = void>
struct HasLocate : std::false_type {};
template <class Dist>
struct HasLocate<Dist, std::void_t<decltype(&Dist::locate)>> : std::true_type {};

/// Decode one value under distribution d. Distributions with `kHasGuess` provide a position
/// (from approximate quantiles) to start the search; the result is the same either way.
template <class Dist>
NC_ALWAYS_INLINE int32_t decode_symbol(const Dist& d, RansDecoder& dec) {
  const uint32_t total = d.n + (d.escape ? 1 : 0);
  const uint32_t cf = dec.peek();
  uint32_t c0, c1, pos;
  if constexpr (HasLocate<Dist>::value) {
    pos = d.locate(cf, c0, c1);
  } else if constexpr (Dist::kHasGuess) {
    pos = search_from(d, total, cf, d.guess(cf, total), c0, c1);
  } else {
    pos = search(d, total, cf, c0);
    c1 = pos + 1 == total ? kTotal : d.cdf(pos + 1);
  }
  dec.advance({c0, c1 - c0});
  return decoded_value(dec, d.lo, d.n, pos);
}

/// Encoder of symbols [begin, end) of a chunk, one symbol per step from the last one.
template <class Model>
class ChunkEncoder {
 public:
  ChunkEncoder(const Model& model, const int32_t* symbols, size_t begin, size_t end)
      : model_(model), symbols_(symbols), begin_(begin), i_(end), enc_(end - begin) {}
  bool done() const { return i_ == begin_; }
  NC_ALWAYS_INLINE void step() {
    --i_;
    Op ops[kMaxOps];
    enc_.reserve_symbol();
    for (int k = symbol_ops(model_.dist(i_), symbols_[i_], i_, ops); k-- > 0;) enc_.put(ops[k]);
  }
  std::vector<uint8_t> finish() const { return enc_.finish(); }

 private:
  Model model_;  // a copy per chunk (models may keep per-worker buffers)
  const int32_t* symbols_;
  size_t begin_, i_;
  RansEncoder enc_;
};

/// Decoder of symbols [begin, end) of a chunk from its payload, one symbol per step.
template <class Model>
class ChunkDecoder {
 public:
  ChunkDecoder(const Model& model, const uint8_t* data, size_t len, int32_t* out, size_t begin,
               size_t end)
      : model_(model), dec_(data, len), out_(out), i_(begin), end_(end) {}
  bool done() const { return i_ == end_; }
  NC_ALWAYS_INLINE void step() {
    out_[i_] = decode_symbol(model_.dist(i_), dec_);
    ++i_;
  }
  void finish() const { dec_.finish(); }

 private:
  Model model_;
  RansDecoder dec_;
  int32_t* out_;
  size_t i_, end_;
};

/// Run two chunk coders in turns: their rANS state chains are independent, so the CPU overlaps
/// them (each chunk's bytes are those it gets alone). Inlined into the caller, which owns the
/// coders: their state then stays in registers.
template <class Coder>
NC_ALWAYS_INLINE void interleave(Coder& a, Coder& b) {
  while (!a.done() && !b.done()) {
    a.step();
    b.step();
  }
  while (!a.done()) a.step();
  while (!b.done()) b.step();
}

/// Encode symbols [begin, end) of a chunk into its payload.
template <class Model>
std::vector<uint8_t> encode_chunk(const Model& model, const int32_t* symbols, size_t begin, size_t end) {
  ChunkEncoder<Model> c(model, symbols, begin, end);
  while (!c.done()) c.step();
  return c.finish();
}

/// Encode two chunks in turns (the same payloads as encode_chunk).
template <class Model>
void encode_two(const Model& model, const int32_t* symbols, const size_t* bounds,
                std::vector<uint8_t>* out) {
  ChunkEncoder<Model> a(model, symbols, bounds[0], bounds[1]), b(model, symbols, bounds[1], bounds[2]);
  interleave(a, b);
  out[0] = a.finish();
  out[1] = b.finish();
}

/// Where a chunk's payload is and which symbols it codes.
struct ChunkSpan {
  const uint8_t* data;
  size_t len, begin, end;
};

/// Decode symbols [begin, end) of a chunk from its payload.
template <class Model>
void decode_chunk(const Model& model, const ChunkSpan& c, int32_t* out) {
  ChunkDecoder<Model> d(model, c.data, c.len, out, c.begin, c.end);
  while (!d.done()) d.step();
  d.finish();
}

/// Decode two chunks in turns.
template <class Model>
void decode_two(const Model& model, const ChunkSpan& a, const ChunkSpan& b, int32_t* out) {
  ChunkDecoder<Model> x(model, a.data, a.len, out, a.begin, a.end), y(model, b.data, b.len, out, b.begin, b.end);
  interleave(x, y);
  x.finish();
  y.finish();
}

/// -sum log2 p of the ops that code symbols [0, n) (exact model frequencies / 2^16).
template <class Model>
double ideal_bits(Model& model, const int32_t* symbols, size_t n) {
  Op ops[kMaxOps];
  double bits = 0;
  for (size_t i = 0; i < n; ++i) {
    const int k = symbol_ops(model.dist(i), symbols[i], i, ops);
    for (int j = 0; j < k; ++j) bits += kPrecision - std::log2(double(ops[j].freq));
  }
  return bits;
}

}  // namespace nc
