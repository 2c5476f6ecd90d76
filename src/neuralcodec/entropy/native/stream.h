// Stream framing (header, CRC32, chunk table), validation and the chunk-parallel drivers.
// Layout (docs/coder.md): format byte, model byte, varint symbol count, varint chunk size,
// CRC32 (LE) of every other byte of the stream, varint byte length per chunk, chunk payloads.
#pragma once
#include <algorithm>
#include <functional>

#include "core.h"

namespace nc {

enum ModelId : uint8_t { kGaussian = 1, kLaplace = 2, kGmm = 3, kCategorical = 4, kIndexed = 5 };
constexpr uint8_t kFormat = 1;
constexpr uint64_t kMaxChunkSize = uint64_t(1) << 24;

std::string model_name(uint8_t id);

/// zlib-compatible CRC32 (reflected, polynomial 0xEDB88320), chainable through `crc`.
uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc = 0);

/// Where each chunk's payload lies in the stream.
struct ChunkLayout {
  size_t chunk_size = 0;
  std::vector<size_t> offset, length;
};

/// Validate a whole stream (format, model, count, chunk table, sizes, CRC) before decoding.
ChunkLayout parse_stream(const uint8_t* data, size_t len, uint8_t model, size_t count);

/// Header + CRC + chunk table + payloads.
std::vector<uint8_t> assemble_stream(uint8_t model, size_t count, size_t chunk_size,
                                     const std::vector<std::vector<uint8_t>>& chunks);

/// fn(c) for c in [0, n) on at most `threads` threads (the caller's included). If any call
/// throws CoderErr, the error of the lowest failing index is rethrown (deterministic).
void parallel_for(size_t n, int threads, const std::function<void(size_t)>& fn);

inline size_t num_chunks(size_t count, size_t chunk_size) {
  return count ? (count - 1) / chunk_size + 1 : 0;
}

/// Chunks per worker task: two, coded in turns (see interleave), when every thread still gets
/// at least one task, else one. Streams never depend on it.
inline size_t chunks_per_task(size_t chunks, int threads) {
  return chunks >= 2 * size_t(std::max(threads, 1)) ? 2 : 1;
}

template <class Model>
std::vector<uint8_t> encode_stream(const Model& model, uint8_t id, const int32_t* symbols,
                                   size_t count, size_t chunk_size, int threads) {
  if (chunk_size < 1 || chunk_size > kMaxChunkSize)
    throw CoderErr("chunk_size must be in [1, 2^24]");
  std::vector<std::vector<uint8_t>> chunks(num_chunks(count, chunk_size));
  const size_t per = chunks_per_task(chunks.size(), threads);
  parallel_for((chunks.size() + per - 1) / per, threads, [&](size_t t) {
    const size_t first = t * per, last = std::min(chunks.size(), first + per);
    if (last - first == 2) {
      const size_t bounds[3] = {first * chunk_size, last * chunk_size - chunk_size,
                                std::min(count, last * chunk_size)};
      try {
        encode_two(model, symbols, bounds, &chunks[first]);
        return;
      } catch (const CoderErr&) {  // one at a time below: the error of the first failing chunk
      }
    }
    for (size_t c = first; c < last; ++c)
      chunks[c] = encode_chunk(model, symbols, c * chunk_size, std::min(count, (c + 1) * chunk_size));
  });
  return assemble_stream(id, count, chunk_size, chunks);
}

template <class Model>
void decode_stream(const Model& model, const ChunkLayout& layout, const uint8_t* data,
                   int32_t* out, size_t count, int threads) {
  const size_t n = layout.length.size(), per = chunks_per_task(n, threads);
  const auto span = [&](size_t c) {
    const size_t begin = c * layout.chunk_size;
    return ChunkSpan{data + layout.offset[c], layout.length[c], begin, std::min(count, begin + layout.chunk_size)};
  };
  parallel_for((n + per - 1) / per, threads, [&](size_t t) {
    const size_t first = t * per, last = std::min(n, first + per);
    if (last - first == 2) {
      try {
        decode_two(model, span(first), span(first + 1), out);
        return;
      } catch (const CoderErr&) {  // one at a time below: the error of the first failing chunk
      }
    }
    for (size_t c = first; c < last; ++c) decode_chunk(model, span(c), out);
  });
}

}  // namespace nc
