// ws_test_util.h — what the WebSocket protocol's tests (test_ws_*.cc) share:
// bytes from hex and back, a frame built by hand (masked or not), and a
// Decoder run over bytes in one feed or in chunks, its events as text. Test
// code only; the protocol itself is core/ws/ (docs/architecture.md).
#ifndef ECHOCAST_TEST_WS_TEST_UTIL_H
#define ECHOCAST_TEST_WS_TEST_UTIL_H

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

#include "../core/ws/decoder.h"
#include "../core/ws/frame.h"

namespace ws_test {

namespace ws = echocast::ws;
using ws::Role;

using Bytes = std::vector<std::uint8_t>;

inline Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }

inline Bytes hex(const char* h) {
  Bytes out;
  for (const char* p = h; *p != '\0';) {
    if (*p == ' ') {
      ++p;
      continue;
    }
    out.push_back(static_cast<std::uint8_t>(std::strtoul(std::string(p, 2).c_str(), nullptr, 16)));
    p += 2;
  }
  return out;
}

inline std::string to_hex(const std::uint8_t* p, std::size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

// One frame: b0 is the first byte as sent (FIN, RSV, opcode); with a key the
// payload is masked.
inline Bytes frame(std::uint8_t b0, const Bytes& payload, const std::uint8_t* key = nullptr) {
  std::uint8_t h[ws::kMaxHeader];
  std::size_t n = ws::encode_header(ws::kText, payload.size(), h, key);
  h[0] = b0;
  Bytes f(h, h + n);
  f.insert(f.end(), payload.begin(), payload.end());
  if (key != nullptr && !payload.empty()) ws::mask(f.data() + n, payload.size(), key);
  return f;
}

inline Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

inline constexpr std::uint8_t kKey[4] = {0x37, 0xfa, 0x21, 0x3d};

// The events of a Decoder as text: T<text> B<hex> P<ping> C<code>:<reason>.
struct Events : ws::MessageSink {
  std::vector<std::string> ev;
  void on_message(const std::uint8_t* d, std::size_t n, bool text) override {
    ev.push_back(text ? "T" + std::string(reinterpret_cast<const char*>(d), n)
                      : "B" + to_hex(d, n));
  }
  void on_ping(const std::uint8_t* d, std::size_t n) override {
    ev.push_back("P" + std::string(reinterpret_cast<const char*>(d), n));
  }
  void on_close(std::uint16_t code, const std::uint8_t* r, std::size_t n) override {
    ev.push_back("C" + std::to_string(code) + ":" +
                 std::string(reinterpret_cast<const char*>(r), n));
  }
  std::string str() const {
    std::string s;
    for (const std::string& e : ev) s += e + "|";
    return s;
  }
};

struct Decoded {
  std::string events;
  std::uint16_t code;
  bool closed;
};

// Decodes in one feed (chunk 0) or in chunks of `chunk` bytes.
inline Decoded decode(Role role, const Bytes& in, std::size_t max = 1 << 20,
                      std::size_t chunk = 0) {
  ws::Decoder d(role, max);
  Events e;
  std::uint16_t code = 0;
  if (chunk == 0) {
    code = d.feed(in.data(), in.size(), &e);
  } else {
    for (std::size_t i = 0; i < in.size(); i += chunk)
      code = d.feed(in.data() + i, std::min(chunk, in.size() - i), &e);
  }
  return Decoded{e.str(), code, d.closed()};
}

// The code, checking that one feed and byte-by-byte feeding agree.
inline std::uint16_t code_of(Role role, const Bytes& in, std::size_t max = 1 << 20) {
  Decoded a = decode(role, in, max);
  Decoded b = decode(role, in, max, 1);
  if (a.events != b.events || a.code != b.code) return 0xFFFF;
  return a.code;
}

}  // namespace ws_test

#endif  // ECHOCAST_TEST_WS_TEST_UTIL_H
