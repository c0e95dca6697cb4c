// ws/primitives.cc — see primitives.h. FIPS 180-4 (SHA-1), RFC 4648
// (base64), RFC 3629 (UTF-8).
#include "primitives.h"

#include <cstring>

namespace echocast {
namespace ws {

namespace {

inline std::uint32_t rotl(std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

void sha1_block(std::uint32_t h[5], const std::uint8_t* p) {
  std::uint32_t w[80];
  for (int t = 0; t < 16; ++t) {
    w[t] = (static_cast<std::uint32_t>(p[4 * t]) << 24) |
           (static_cast<std::uint32_t>(p[4 * t + 1]) << 16) |
           (static_cast<std::uint32_t>(p[4 * t + 2]) << 8) |
           static_cast<std::uint32_t>(p[4 * t + 3]);
  }
  for (int t = 16; t < 80; ++t) w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int t = 0; t < 80; ++t) {
    std::uint32_t f, k;
    if (t < 20) {
      f = (b & c) | (~b & d);
      k = 0x5A827999u;
    } else if (t < 40) {
      f = b ^ c ^ d;
      k = 0x6ED9EBA1u;
    } else if (t < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8F1BBCDCu;
    } else {
      f = b ^ c ^ d;
      k = 0xCA62C1D6u;
    }
    std::uint32_t tmp = rotl(a, 5) + f + e + k + w[t];
    e = d;
    d = c;
    c = rotl(b, 30);
    b = a;
    a = tmp;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

const char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

void sha1(const std::uint8_t* data, std::size_t len, std::uint8_t out[20]) {
  std::uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  std::size_t full = len - len % 64;
  for (std::size_t i = 0; i < full; i += 64) sha1_block(h, data + i);
  // The tail, the 0x80 byte, zeros and the 64-bit length in bits: one or
  // two more blocks.
  std::uint8_t tail[128] = {};
  std::size_t rest = len - full;
  if (rest > 0) std::memcpy(tail, data + full, rest);
  tail[rest] = 0x80;
  std::size_t blocks = rest < 56 ? 1 : 2;
  std::uint64_t bits = static_cast<std::uint64_t>(len) * 8u;
  for (int i = 0; i < 8; ++i)
    tail[blocks * 64 - 1 - i] = static_cast<std::uint8_t>(bits >> (8 * i));
  for (std::size_t b = 0; b < blocks; ++b) sha1_block(h, tail + 64 * b);
  for (int i = 0; i < 5; ++i) {
    out[4 * i] = static_cast<std::uint8_t>(h[i] >> 24);
    out[4 * i + 1] = static_cast<std::uint8_t>(h[i] >> 16);
    out[4 * i + 2] = static_cast<std::uint8_t>(h[i] >> 8);
    out[4 * i + 3] = static_cast<std::uint8_t>(h[i]);
  }
}

std::string base64(const std::uint8_t* data, std::size_t len) {
  std::string out;
  out.reserve((len + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    std::uint32_t v = (static_cast<std::uint32_t>(data[i]) << 16) |
                      (static_cast<std::uint32_t>(data[i + 1]) << 8) | data[i + 2];
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += kBase64[v & 63];
  }
  if (len - i == 1) {
    std::uint32_t v = static_cast<std::uint32_t>(data[i]) << 16;
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += "==";
  } else if (len - i == 2) {
    std::uint32_t v = (static_cast<std::uint32_t>(data[i]) << 16) |
                      (static_cast<std::uint32_t>(data[i + 1]) << 8);
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool valid_utf8(const std::uint8_t* data, std::size_t len) {
  std::size_t i = 0;
  while (i < len) {
    // ASCII runs, eight bytes at a time.
    while (i + 8 <= len) {
      std::uint64_t w;
      std::memcpy(&w, data + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= len) break;
    std::uint8_t c = data[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n;           // Continuation bytes that follow.
    std::uint8_t lo = 0x80;  // Range of the first continuation byte.
    std::uint8_t hi = 0xBF;
    if (c < 0xC2) {
      return false;  // A stray continuation byte, or an overlong C0/C1.
    } else if (c < 0xE0) {
      n = 1;
    } else if (c < 0xF0) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;  // Overlong.
      if (c == 0xED) hi = 0x9F;  // Surrogates U+D800..DFFF.
    } else if (c < 0xF5) {
      n = 3;
      if (c == 0xF0) lo = 0x90;  // Overlong.
      if (c == 0xF4) hi = 0x8F;  // Past U+10FFFF.
    } else {
      return false;
    }
    if (len - i - 1 < n) return false;  // Truncated.
    if (data[i + 1] < lo || data[i + 1] > hi) return false;
    for (std::size_t k = 2; k <= n; ++k)
      if ((data[i + k] & 0xC0) != 0x80) return false;
    i += n + 1;
  }
  return true;
}

}  // namespace ws
}  // namespace echocast
