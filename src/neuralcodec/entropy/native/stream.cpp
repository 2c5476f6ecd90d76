#include "stream.h"

#include <atomic>
#include <system_error>
#include <thread>

namespace nc {

std::string model_name(uint8_t id) {
  switch (id) {
    case kGaussian: return "gaussian";
    case kLaplace: return "laplace";
    case kGmm: return "gmm";
    case kCategorical: return "categorical";
    case kIndexed: return "indexed";
    default: return "unknown (" + std::to_string(id) + ")";
  }
}

namespace {

struct CrcTables {
  uint32_t t[8][256];
  CrcTables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (int s = 1; s < 8; ++s)
      for (uint32_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
};

const CrcTables kCrc;

uint32_t load_le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

void put_varint(std::vector<uint8_t>& out, uint64_t v) {
  for (; v >= 0x80; v >>= 7) out.push_back(uint8_t(v | 0x80));
  out.push_back(uint8_t(v));
}

/// LEB128, canonical (no redundant trailing zero groups), at most 64 bits.
bool get_varint(const uint8_t* data, size_t len, size_t& pos, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && pos < len; shift += 7) {
    const uint8_t b = data[pos++];
    if (shift == 63 && b > 1) return false;
    v |= uint64_t(b & 0x7F) << shift;
    if (!(b & 0x80)) return b != 0 || shift == 0;
  }
  return false;
}

void lower_to(std::atomic<size_t>& a, size_t v) {
  size_t cur = a.load();
  while (v < cur && !a.compare_exchange_weak(cur, v)) {
  }
}

}  // namespace

uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc) {
  const auto& t = kCrc.t;
  crc = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    const uint32_t a = crc ^ load_le32(p), b = load_le32(p + 4);
    crc = t[7][a & 0xFF] ^ t[6][(a >> 8) & 0xFF] ^ t[5][(a >> 16) & 0xFF] ^ t[4][a >> 24] ^
          t[3][b & 0xFF] ^ t[2][(b >> 8) & 0xFF] ^ t[1][(b >> 16) & 0xFF] ^ t[0][b >> 24];
  }
  for (; n; --n) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFF];
  return ~crc;
}

std::vector<uint8_t> assemble_stream(uint8_t model, size_t count, size_t chunk_size,
                                     const std::vector<std::vector<uint8_t>>& chunks) {
  std::vector<uint8_t> out = {kFormat, model};
  put_varint(out, count);
  put_varint(out, chunk_size);
  const size_t crc_at = out.size();
  out.resize(crc_at + 4);
  size_t payload = 0;
  for (const auto& c : chunks) {
    put_varint(out, c.size());
    payload += c.size();
  }
  out.reserve(out.size() + payload);
  for (const auto& c : chunks) out.insert(out.end(), c.begin(), c.end());
  uint32_t crc = crc32(out.data(), crc_at);
  crc = crc32(out.data() + crc_at + 4, out.size() - crc_at - 4, crc);
  for (int b = 0; b < 4; ++b) out[crc_at + b] = uint8_t(crc >> (8 * b));
  return out;
}

ChunkLayout parse_stream(const uint8_t* data, size_t len, uint8_t model, size_t count) {
  if (len < 2) throw CoderErr("corrupt stream: " + std::to_string(len) + " bytes is too short");
  if (data[0] != kFormat)
    throw CoderErr("unsupported stream format " + std::to_string(data[0]) + " (expected " +
                   std::to_string(kFormat) + ")");
  if (data[1] != model)
    throw CoderErr("stream was encoded with the " + model_name(data[1]) + " model, not " +
                   model_name(model));
  size_t pos = 2;
  uint64_t n = 0, chunk = 0;
  if (!get_varint(data, len, pos, n)) throw CoderErr("corrupt stream: bad symbol count");
  if (n != count)
    throw CoderErr("stream holds " + std::to_string(n) + " symbols but parameters for " +
                   std::to_string(count) + " were given");
  if (!get_varint(data, len, pos, chunk) || chunk < 1 || chunk > kMaxChunkSize)
    throw CoderErr("corrupt stream: bad chunk size");
  if (len - pos < 4) throw CoderErr("corrupt stream: truncated header");
  const uint32_t stored = load_le32(data + pos);
  const uint32_t crc = crc32(data + pos + 4, len - pos - 4, crc32(data, pos));
  if (crc != stored) throw CoderErr("corrupt stream: CRC32 mismatch");
  pos += 4;
  ChunkLayout layout;
  layout.chunk_size = size_t(chunk);
  const size_t nchunks = num_chunks(count, layout.chunk_size);
  if (nchunks > len - pos) throw CoderErr("corrupt stream: truncated chunk table");
  layout.length.resize(nchunks);
  layout.offset.resize(nchunks);
  uint64_t total = 0;
  for (size_t c = 0; c < nchunks; ++c) {
    uint64_t l = 0;
    if (!get_varint(data, len, pos, l) || l > len || l < 4 || l % 2)
      throw CoderErr("corrupt stream: bad chunk length");
    layout.length[c] = size_t(l);
    total += l;
    if (total > len) throw CoderErr("corrupt stream: chunk lengths exceed the stream");
  }
  if (total != len - pos)
    throw CoderErr("corrupt stream: chunk lengths do not match the stream size");
  for (size_t c = 0; c < nchunks; ++c) {
    layout.offset[c] = pos;
    pos += layout.length[c];
  }
  return layout;
}

void parallel_for(size_t n, int threads, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0}, failed{SIZE_MAX};
  std::vector<std::string> errors(n);
  auto work = [&]() {
    for (size_t c; (c = next.fetch_add(1)) < n;) {
      if (c > failed.load()) continue;  // a lower chunk failed already
      try {
        fn(c);
      } catch (const CoderErr& e) {
        errors[c] = e.what();
        lower_to(failed, c);
      } catch (const std::bad_alloc&) {
        errors[c] = "out of memory";
        lower_to(failed, c);
      } catch (...) {  // never let an exception escape a worker thread
        errors[c] = "internal error in the entropy coder";
        lower_to(failed, c);
      }
    }
  };
  const size_t workers = std::min(n, size_t(std::max(threads, 1)));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < workers; ++t) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // fewer threads; same result
    }
  }
  work();
  for (auto& th : pool) th.join();
  if (failed.load() != SIZE_MAX) throw CoderErr(errors[failed.load()]);
}

}  // namespace nc
