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

template <class Model>
std::vector<uint8_t> encode_stream(const Model& model, uint8_t id, const int32_t* symbols,
                                   size_t count, size_t chunk_size, int threads) {
  if (chunk_size < 1 || chunk_size > kMaxChunkSize)
    throw CoderErr("chunk_size must be in [1, 2^24]");
  std::vector<std::vector<uint8_t>> chunks(num_chunks(count, chunk_size));
  parallel_for(chunks.size(), threads, [&](size_t c) {
    Model m = model;
    const size_t begin = c * chunk_size;
    chunks[c] = encode_chunk(m, symbols, begin, std::min(count, begin + chunk_size));
  });
  return assemble_stream(id, count, chunk_size, chunks);
}

template <class Model>
void decode_stream(const Model& model, const ChunkLayout& layout, const uint8_t* data,
                   int32_t* out, size_t count, int threads) {
  parallel_for(layout.length.size(), threads, [&](size_t c) {
    Model m = model;
    const size_t begin = c * layout.chunk_size;
    decode_chunk(m, data + layout.offset[c], layout.length[c], out, begin,
                 std::min(count, begin + layout.chunk_size));
  });
}

}  // namespace nc
