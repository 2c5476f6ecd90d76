// Standalone timing of the mixture decoder (no Python): reads the parameters and symbols written
// by `bench/gmm_decode.py --write FILE`, encodes them in chunks on the SIMD path, then times the
// decoder (thread CPU time) one chunk at a time and two chunks in turns, checking the symbols.
// Build: g++ -O3 -std=c++17 -ffp-contract=off -fno-fast-math -I src/neuralcodec/entropy/native
//        bench/gmm_decode.cpp -o /tmp/gmm_decode
// Run:   /tmp/gmm_decode FILE [reps]   -> "one <Msym/s> two <Msym/s> enc <Msym/s>" (medians)
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "mixture_simd.h"

static double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main(int argc, char** argv) {
  if (argc < 2) return std::fprintf(stderr, "usage: gmm_decode FILE [reps]\n"), 2;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
  FILE* f = std::fopen(argv[1], "rb");
  if (!f) return std::fprintf(stderr, "cannot open %s\n", argv[1]), 2;
  uint64_t n = 0;
  if (std::fread(&n, 8, 1, f) != 1) return 2;
  const int k = 3;
  std::vector<float> w(n * k), m(n * k), s(n * k);
  std::vector<int32_t> x(n);
  if (std::fread(w.data(), 4, n * k, f) != n * k || std::fread(m.data(), 4, n * k, f) != n * k ||
      std::fread(s.data(), 4, n * k, f) != n * k || std::fread(x.data(), 4, n, f) != n)
    return std::fprintf(stderr, "short file\n"), 2;
  std::fclose(f);
  if (!nc::simd_active()) return std::fprintf(stderr, "no SIMD path on this CPU\n"), 2;
  const nc::SimdGmmModel<3> model{nc::GmmModelT<3>{w.data(), m.data(), s.data(), k}};
  const size_t chunk = 65536, chunks = (n + chunk - 1) / chunk;
  std::vector<std::vector<uint8_t>> payload(chunks);
  std::vector<double> t_enc, t_one, t_two;
  std::vector<int32_t> out(n);
  for (int r = 0; r < reps; ++r) {
    double t0 = cpu_seconds();
    for (size_t c = 0; c < chunks; ++c)
      payload[c] = nc::encode_chunk(model, x.data(), c * chunk, std::min<size_t>(n, (c + 1) * chunk));
    t_enc.push_back(cpu_seconds() - t0);
    const auto span = [&](size_t c) {
      return nc::ChunkSpan{payload[c].data(), payload[c].size(), c * chunk, std::min<size_t>(n, (c + 1) * chunk)};
    };
    std::fill(out.begin(), out.end(), 0);
    t0 = cpu_seconds();
    for (size_t c = 0; c < chunks; ++c) nc::decode_chunk(model, span(c), out.data());
    t_one.push_back(cpu_seconds() - t0);
    if (out != x) return std::fprintf(stderr, "MISMATCH (one chunk at a time)\n"), 1;
    std::fill(out.begin(), out.end(), 0);
    t0 = cpu_seconds();
    size_t c = 0;
    for (; c + 1 < chunks; c += 2) nc::decode_two(model, span(c), span(c + 1), out.data());
    if (c < chunks) nc::decode_chunk(model, span(c), out.data());
    t_two.push_back(cpu_seconds() - t0);
    if (out != x) return std::fprintf(stderr, "MISMATCH (two chunks in turns)\n"), 1;
  }
  size_t bytes = 0;
  for (const auto& p : payload) bytes += p.size();
  std::printf("one %.2f two %.2f enc %.2f bytes %zu\n", n / median(t_one) / 1e6, n / median(t_two) / 1e6,
              n / median(t_enc) / 1e6, bytes);
  return 0;
}
