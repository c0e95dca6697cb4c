// test_websocket.cc — RFC 6455 pure code: SHA-1, base64, accept key, UTF-8,
// frame headers, the Decoder in both roles (RFC 6455 §5.7 examples, every
// error path, chunking), the Handshake, message_to_frames, and a replay of
// the fuzz seeds in test/fuzz/corpus-websocket/ through the fuzz checks.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../core/framer.h"
#include "../core/websocket.h"
#include "fuzz/websocket_check.h"
#include "unit.h"

namespace ws = echocast::ws;
using echocast::Framing;
using ws::Handshake;
using ws::Role;

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes hex(const char* h) {
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

std::string to_hex(const std::uint8_t* p, std::size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

std::string sha1_hex(const std::string& s) {
  std::uint8_t out[20];
  ws::sha1(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), out);
  return to_hex(out, 20);
}

std::string b64(const std::string& s) {
  return ws::base64(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

bool utf8(const Bytes& b) { return ws::valid_utf8(b.data(), b.size()); }

// One frame: b0 is the first byte as sent (FIN, RSV, opcode); with a key the
// payload is masked.
Bytes frame(std::uint8_t b0, const Bytes& payload, const std::uint8_t* key = nullptr) {
  std::uint8_t h[ws::kMaxHeader];
  std::size_t n = ws::encode_header(ws::kText, payload.size(), h, key);
  h[0] = b0;
  Bytes f(h, h + n);
  f.insert(f.end(), payload.begin(), payload.end());
  if (key != nullptr && !payload.empty()) ws::mask(f.data() + n, payload.size(), key);
  return f;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

const std::uint8_t kKey[4] = {0x37, 0xfa, 0x21, 0x3d};

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
    ev.push_back("C" + std::to_string(code) + ":" + std::string(reinterpret_cast<const char*>(r), n));
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
Decoded decode(Role role, const Bytes& in, std::size_t max = 1 << 20, std::size_t chunk = 0) {
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
std::uint16_t code_of(Role role, const Bytes& in, std::size_t max = 1 << 20) {
  Decoded a = decode(role, in, max);
  Decoded b = decode(role, in, max, 1);
  if (a.events != b.events || a.code != b.code) return 0xFFFF;
  return a.code;
}

struct Hs {
  Handshake::Result result;
  int status;
  std::string response;
  std::size_t consumed;
};

ws::HandshakeConfig test_config() {
  ws::HandshakeConfig c;
  c.path = "/ws";
  c.page = "<!doctype html><p>echocast</p>";
  return c;
}

// Feeds a request in one go (chunk 0) or in chunks; consumed is the sum.
Hs handshake(const std::string& req, std::size_t chunk = 0) {
  static const ws::HandshakeConfig config = test_config();
  Handshake h(&config);
  Hs r{Handshake::Result::NeedMore, 0, "", 0};
  const std::uint8_t* p = reinterpret_cast<const std::uint8_t*>(req.data());
  std::size_t step = chunk == 0 ? std::max<std::size_t>(req.size(), 1) : chunk;
  for (std::size_t i = 0; i < req.size(); i += step) {
    std::size_t used = 0;
    r.result = h.feed(p + i, std::min(step, req.size() - i), &used);
    r.consumed += used;
  }
  r.status = h.status();
  r.response = h.response();
  return r;
}

const char kUpgrade[] =
    "GET /ws HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

const char k101[] =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "\r\n";

// kUpgrade with one header line replaced (or removed, with "").
std::string upgrade_with(const std::string& line, const std::string& replacement) {
  std::string s = kUpgrade;
  std::size_t at = s.find(line);
  if (at == std::string::npos) return "(no such line)";
  std::size_t end = s.find("\r\n", at) + 2;
  return s.substr(0, at) + replacement + s.substr(end);
}

struct Frames : echocast::FrameSink {
  std::vector<std::string> bytes, payloads;
  void on_frame(const echocast::FrameView& f) override {
    bytes.emplace_back(reinterpret_cast<const char*>(f.bytes), f.size);
    payloads.emplace_back(reinterpret_cast<const char*>(f.bytes) + f.payload_offset, f.payload_size);
  }
};

Frames to_frames(Framing fr, const std::string& msg, std::size_t* count) {
  Frames f;
  std::vector<std::uint8_t> scratch;
  *count = ws::message_to_frames(fr, reinterpret_cast<const std::uint8_t*>(msg.data()), msg.size(),
                                 &scratch, &f);
  return f;
}

}  // namespace

// ---------------------------------------------------------------------------
// Primitives
// ---------------------------------------------------------------------------

TEST(ws_sha1_fips_vectors) {
  CHECK_EQ(sha1_hex("abc"), std::string("a9993e364706816aba3e25717850c26c9cd0d89d"));
  CHECK_EQ(sha1_hex(""), std::string("da39a3ee5e6b4b0d3255bfef95601890afd80709"));
  CHECK_EQ(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
           std::string("84983e441c3bd26ebaae4aa1f95129e5e54670f1"));
  CHECK_EQ(sha1_hex(std::string(1000000, 'a')), std::string("34aa973cd4c4daa4f61eeb2bdbad27316534016f"));
}

TEST(ws_sha1_padding_boundaries) {
  // Lengths around the one-or-two padding blocks (55/56) and a block (64).
  CHECK_EQ(sha1_hex(std::string(55, 'a')), std::string("c1c8bbdc22796e28c0e15163d20899b65621d65a"));
  CHECK_EQ(sha1_hex(std::string(56, 'a')), std::string("c2db330f6083854c99d4b5bfb6e8f29f201be699"));
  CHECK_EQ(sha1_hex(std::string(63, 'a')), std::string("03f09f5b158a7a8cdad920bddc29b81c18a551f5"));
  CHECK_EQ(sha1_hex(std::string(64, 'a')), std::string("0098ba824b5c16427bd7a1122a5a442a25ec644d"));
  CHECK_EQ(sha1_hex(std::string(65, 'a')), std::string("11655326c708d70319be2610e8a57d9a5b959d3b"));
  CHECK_EQ(sha1_hex(std::string(119, 'a')), std::string("ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56"));
  CHECK_EQ(sha1_hex(std::string(120, 'a')), std::string("f34c1488385346a55709ba056ddd08280dd4c6d6"));
}

TEST(ws_base64_rfc4648_vectors) {
  CHECK_EQ(b64(""), std::string(""));
  CHECK_EQ(b64("f"), std::string("Zg=="));
  CHECK_EQ(b64("fo"), std::string("Zm8="));
  CHECK_EQ(b64("foo"), std::string("Zm9v"));
  CHECK_EQ(b64("foob"), std::string("Zm9vYg=="));
  CHECK_EQ(b64("fooba"), std::string("Zm9vYmE="));
  CHECK_EQ(b64("foobar"), std::string("Zm9vYmFy"));
  Bytes high = hex("fbff");
  CHECK_EQ(ws::base64(high.data(), high.size()), std::string("+/8="));
}

TEST(ws_accept_key_rfc6455_example) {
  CHECK_EQ(ws::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), std::string("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
}

TEST(ws_utf8_valid) {
  CHECK(utf8(B("")));
  CHECK(utf8(B("Hello, world")));
  CHECK(utf8(hex("c2a9")));                 // U+00A9
  CHECK(utf8(hex("e282ac")));               // U+20AC
  CHECK(utf8(hex("ed9fbf")));               // U+D7FF, just below the surrogates
  CHECK(utf8(hex("ee8080")));               // U+E000, just above
  CHECK(utf8(hex("efbfbf")));               // U+FFFF
  CHECK(utf8(hex("f0908080")));             // U+10000
  CHECK(utf8(hex("f48fbfbf")));             // U+10FFFF, the last
  CHECK(utf8(B("ASCII run longer than eight bytes then \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")));
}

TEST(ws_utf8_invalid) {
  CHECK(!utf8(hex("c0af")));                // Overlong '/' in two bytes
  CHECK(!utf8(hex("e080af")));              // ... in three
  CHECK(!utf8(hex("f08080af")));            // ... in four
  CHECK(!utf8(hex("c1bf")));                // Overlong U+007F
  CHECK(!utf8(hex("e09fbf")));              // Overlong U+07FF
  CHECK(!utf8(hex("f08fbfbf")));            // Overlong U+FFFF
  CHECK(!utf8(hex("eda080")));              // U+D800
  CHECK(!utf8(hex("edadbf")));              // U+DB7F
  CHECK(!utf8(hex("edbfbf")));              // U+DFFF
  CHECK(!utf8(hex("eda080edb080")));        // A surrogate pair, CESU-style
  CHECK(!utf8(hex("f4908080")));            // U+110000
  CHECK(!utf8(hex("f7bfbfbf")));            // U+1FFFFF
  CHECK(!utf8(hex("f88888808080")));        // Five bytes
  CHECK(!utf8(hex("fe")));
  CHECK(!utf8(hex("ff")));
  CHECK(!utf8(hex("80")));                  // A lone continuation byte
  CHECK(!utf8(hex("41bf42")));
  CHECK(!utf8(hex("c2")));                  // Truncated at the end
  CHECK(!utf8(hex("e282")));
  CHECK(!utf8(hex("f09080")));
  CHECK(!utf8(hex("4142434445464748c2")));  // ... after an ASCII run
  CHECK(!utf8(hex("c241")));                // A missing continuation
  CHECK(!utf8(hex("e28241")));
  CHECK(!utf8(hex("cebae1bdb9cf83cebcceb5eda080656469746564")));  // Kuhn's "κόσμε" then a surrogate
}

TEST(ws_encode_header_sizes) {
  std::uint8_t h[ws::kMaxHeader];
  CHECK_EQ(ws::encode_header(ws::kText, 5, h), 2u);
  CHECK_EQ(to_hex(h, 2), std::string("8105"));
  CHECK_EQ(ws::encode_header(ws::kBinary, 125, h), 2u);
  CHECK_EQ(to_hex(h, 2), std::string("827d"));
  CHECK_EQ(ws::encode_header(ws::kBinary, 126, h), 4u);
  CHECK_EQ(to_hex(h, 4), std::string("827e007e"));
  CHECK_EQ(ws::encode_header(ws::kBinary, 256, h), 4u);           // RFC 6455 §5.7
  CHECK_EQ(to_hex(h, 4), std::string("827e0100"));
  CHECK_EQ(ws::encode_header(ws::kBinary, 65535, h), 4u);
  CHECK_EQ(to_hex(h, 4), std::string("827effff"));
  CHECK_EQ(ws::encode_header(ws::kBinary, 65536, h), 10u);        // RFC 6455 §5.7
  CHECK_EQ(to_hex(h, 10), std::string("827f0000000000010000"));
  CHECK_EQ(ws::encode_header(ws::kBinary, 0x0123456789ull, h), 10u);
  CHECK_EQ(to_hex(h, 10), std::string("827f0000000123456789"));
  CHECK_EQ(ws::encode_header(ws::kText, 5, h, kKey), 6u);
  CHECK_EQ(to_hex(h, 6), std::string("818537fa213d"));
  CHECK_EQ(ws::encode_header(ws::kBinary, 300, h, kKey), 8u);
  CHECK_EQ(to_hex(h, 8), std::string("82fe012c37fa213d"));
  CHECK_EQ(ws::encode_header(ws::kBinary, 70000, h, kKey), 14u);
  CHECK_EQ(to_hex(h, 14), std::string("82ff000000000001117037fa213d"));
  CHECK_EQ(ws::encode_header(ws::kPing, 0, h), 2u);
  CHECK_EQ(to_hex(h, 2), std::string("8900"));
}

TEST(ws_mask_rfc_example_and_offsets) {
  Bytes hello = B("Hello");
  ws::mask(hello.data(), hello.size(), kKey);
  CHECK_EQ(to_hex(hello.data(), hello.size()), std::string("7f9f4d5158"));   // RFC 6455 §5.7
  // Masking in pieces with the running offset equals masking at once.
  Bytes whole(100);
  for (std::size_t i = 0; i < whole.size(); ++i) whole[i] = static_cast<std::uint8_t>(i * 7);
  Bytes pieces = whole;
  ws::mask(whole.data(), whole.size(), kKey);
  std::size_t cuts[] = {0, 3, 4, 13, 30, 31, 64, 100};
  for (std::size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; ++i)
    ws::mask(pieces.data() + cuts[i], cuts[i + 1] - cuts[i], kKey, cuts[i]);
  CHECK(pieces == whole);
  ws::mask(whole.data(), whole.size(), kKey);   // Its own inverse.
  for (std::size_t i = 0; i < whole.size(); ++i) CHECK_EQ(whole[i], static_cast<std::uint8_t>(i * 7));
}

TEST(ws_close_frame) {
  Bytes f = ws::close_frame(1000, "bye");
  CHECK_EQ(to_hex(f.data(), f.size()), std::string("880503e8627965"));
  f = ws::close_frame(1009, nullptr);
  CHECK_EQ(to_hex(f.data(), f.size()), std::string("880203f1"));
  f = ws::close_frame(0, "ignored without a code");
  CHECK_EQ(to_hex(f.data(), f.size()), std::string("8800"));
  // A reason is cut to 123 bytes, at a character boundary.
  std::string longer(200, 'x');
  f = ws::close_frame(1001, longer.c_str());
  CHECK_EQ(f.size(), 2u + 125u);
  CHECK_EQ(f[1], 125);
  std::string euros;
  for (int i = 0; i < 50; ++i) euros += "\xe2\x82\xac";   // 150 bytes, 3 per character
  f = ws::close_frame(1001, euros.c_str());
  CHECK_EQ(f.size(), 2u + 2u + 123u);                      // 41 characters fit exactly
  f = ws::close_frame(1001, ("x" + euros).c_str());
  CHECK_EQ(f.size(), 2u + 2u + 121u);                      // "x" + 40 characters
  CHECK(ws::valid_utf8(f.data() + 4, f.size() - 4));
  // And a decoder takes it back.
  Decoded d = decode(Role::Client, ws::close_frame(1000, "bye"));
  CHECK_EQ(d.events, std::string("C1000:bye|"));
}

TEST(ws_pong_frame) {
  Bytes f = ws::pong_frame(reinterpret_cast<const std::uint8_t*>("Hello"), 5);
  CHECK_EQ(to_hex(f.data(), f.size()), std::string("8a0548656c6c6f"));   // RFC 6455 §5.7
  f = ws::pong_frame(nullptr, 0);
  CHECK_EQ(to_hex(f.data(), f.size()), std::string("8a00"));
  Bytes big(200, 'p');
  f = ws::pong_frame(big.data(), big.size());
  CHECK_EQ(f.size(), 127u);
  CHECK_EQ(f[1], 125);
}

TEST(ws_close_code_for_reasons) {
  CHECK_EQ(ws::close_code_for("client-closed"), 1000);
  CHECK_EQ(ws::close_code_for("client-error"), 1011);
  CHECK_EQ(ws::close_code_for("frame-too-large"), 1009);
  CHECK_EQ(ws::close_code_for("slow-consumer"), 1008);
  CHECK_EQ(ws::close_code_for("server-full"), 1013);
  CHECK_EQ(ws::close_code_for("server-closed"), 1001);
  CHECK_EQ(ws::close_code_for("cluster-unavailable"), 1008);
  CHECK_EQ(ws::close_code_for("protocol-error"), 1002);
  CHECK_EQ(ws::close_code_for("no-such-reason"), 1011);
  CHECK_EQ(ws::close_code_for(nullptr), 1011);
}

// ---------------------------------------------------------------------------
// Decoder: RFC 6455 §5.7 examples
// ---------------------------------------------------------------------------

TEST(ws_rfc_unmasked_hello_client_role) {
  Decoded d = decode(Role::Client, hex("81 05 48 65 6c 6c 6f"));
  CHECK_EQ(d.events, std::string("THello|"));
  CHECK_EQ(d.code, 0);
  // The same frame reaching a server is a protocol error (unmasked).
  CHECK_EQ(code_of(Role::Server, hex("81 05 48 65 6c 6c 6f")), 1002);
}

TEST(ws_rfc_masked_hello_server_role) {
  Bytes in = hex("81 85 37 fa 21 3d 7f 9f 4d 51 58");
  Decoded d = decode(Role::Server, in);
  CHECK_EQ(d.events, std::string("THello|"));
  CHECK_EQ(d.code, 0);
  CHECK_EQ(decode(Role::Server, in, 1 << 20, 1).events, std::string("THello|"));
  CHECK_EQ(code_of(Role::Client, in), 1002);   // Masked, to a client.
  CHECK(frame(0x81, B("Hello"), kKey) == in);
}

TEST(ws_rfc_fragmented_hello) {
  Bytes in = hex("01 03 48 65 6c 80 02 6c 6f");
  Decoded d = decode(Role::Client, in);
  CHECK_EQ(d.events, std::string("THello|"));
  CHECK_EQ(d.code, 0);
  Bytes masked = cat({frame(0x01, B("Hel"), kKey), frame(0x80, B("lo"), kKey)});
  CHECK_EQ(decode(Role::Server, masked).events, std::string("THello|"));
  CHECK_EQ(decode(Role::Server, masked, 1 << 20, 1).events, std::string("THello|"));
}

TEST(ws_rfc_ping_and_pong) {
  Decoded d = decode(Role::Client, hex("89 05 48 65 6c 6c 6f"));
  CHECK_EQ(d.events, std::string("PHello|"));
  // A masked pong reaches a server: accepted, ignored.
  d = decode(Role::Server, hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58"));
  CHECK_EQ(d.events, std::string(""));
  CHECK_EQ(d.code, 0);
  // A masked ping reaches a server.
  d = decode(Role::Server, frame(0x89, B("Hello"), kKey), 1 << 20, 1);
  CHECK_EQ(d.events, std::string("PHello|"));
}

TEST(ws_rfc_binary_256_and_64k) {
  Bytes p256(256), p64k(65536);
  for (std::size_t i = 0; i < p256.size(); ++i) p256[i] = static_cast<std::uint8_t>(i);
  for (std::size_t i = 0; i < p64k.size(); ++i) p64k[i] = static_cast<std::uint8_t>(i * 31 + 7);
  Bytes f256 = cat({hex("82 7e 01 00"), p256});
  Bytes f64k = cat({hex("82 7f 00 00 00 00 00 01 00 00"), p64k});
  CHECK(frame(0x82, p256) == f256);
  CHECK(frame(0x82, p64k) == f64k);
  CHECK_EQ(decode(Role::Client, f256).events, "B" + to_hex(p256.data(), p256.size()) + "|");
  CHECK_EQ(decode(Role::Client, f64k).events, "B" + to_hex(p64k.data(), p64k.size()) + "|");
  CHECK_EQ(decode(Role::Client, f64k, 65536, 1000).events, "B" + to_hex(p64k.data(), p64k.size()) + "|");
  Bytes m64k = frame(0x82, p64k, kKey);
  CHECK_EQ(decode(Role::Server, m64k, 65536, 777).events, "B" + to_hex(p64k.data(), p64k.size()) + "|");
  CHECK_EQ(decode(Role::Server, m64k, 65535).code, 1009);
}

// ---------------------------------------------------------------------------
// Decoder: streams, chunking, control frames between fragments
// ---------------------------------------------------------------------------

TEST(ws_byte_by_byte_equals_one_feed) {
  for (Role role : {Role::Server, Role::Client}) {
    const std::uint8_t* k = role == Role::Server ? kKey : nullptr;
    Bytes p300(300, 'z');
    Bytes in = cat({frame(0x81, B("one"), k), frame(0x02, hex("00ff"), k), frame(0x89, B("ping"), k),
                    frame(0x00, hex("10"), k), frame(0x8a, B("pong"), k), frame(0x80, hex("20"), k),
                    frame(0x81, B(""), k), frame(0x82, p300, k), frame(0x01, B("\xe2\x82"), k),
                    frame(0x80, B("\xac"), k), frame(0x88, B("\x03\xe8" "done"), k),
                    frame(0x81, B("after the close"), k)});
    std::string want = "Tone|Pping|B00ff1020|T|B" + to_hex(p300.data(), p300.size()) +
                       "|T\xe2\x82\xac|C1000:done|";
    for (std::size_t chunk : {0, 1, 2, 3, 5, 7, 64}) {
      Decoded d = decode(role, in, 1 << 20, chunk);
      CHECK_EQ(d.events, want);
      CHECK_EQ(d.code, 0);
      CHECK(d.closed);
    }
  }
}

TEST(ws_interleaved_controls_and_empty_fragments) {
  Bytes in = cat({frame(0x01, B("")), frame(0x89, B("a")), frame(0x00, B("")), frame(0x8a, B("")),
                  frame(0x89, B("")), frame(0x80, B(""))});
  CHECK_EQ(decode(Role::Client, in).events, std::string("Pa|P|T|"));
  CHECK_EQ(decode(Role::Client, in, 0).events, std::string("Pa|P|T|"));   // Empty fits max 0.
}

TEST(ws_text_split_inside_a_character) {
  // A fragment boundary inside a multi-byte character is fine: UTF-8 is
  // checked on the whole message.
  Bytes in = cat({frame(0x01, hex("f0")), frame(0x00, hex("9f")), frame(0x80, hex("98 80"))});
  CHECK_EQ(decode(Role::Client, in).events, std::string("T\xf0\x9f\x98\x80|"));
}

TEST(ws_close_without_payload_is_1005) {
  Decoded d = decode(Role::Client, hex("88 00"));
  CHECK_EQ(d.events, std::string("C1005:|"));
  CHECK(d.closed);
  d = decode(Role::Server, frame(0x88, B(""), kKey), 1 << 20, 1);
  CHECK_EQ(d.events, std::string("C1005:|"));
}

TEST(ws_nothing_parsed_after_close) {
  ws::Decoder d(Role::Client, 100);
  Events e;
  Bytes in = cat({frame(0x88, B("\x03\xe8")), frame(0x81, B("x")), hex("ff ff ff")});
  CHECK_EQ(d.feed(in.data(), in.size(), &e), 0);
  CHECK(d.closed());
  CHECK_EQ(e.str(), std::string("C1000:|"));
  Bytes more = frame(0x81, B("y"));
  CHECK_EQ(d.feed(more.data(), more.size(), &e), 0);
  CHECK_EQ(e.str(), std::string("C1000:|"));
}

TEST(ws_valid_close_codes) {
  for (int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
                   3999, 4000, 4999}) {
    Bytes p = {static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code)};
    Decoded d = decode(Role::Client, frame(0x88, p));
    CHECK_EQ(d.events, "C" + std::to_string(code) + ":|");
    CHECK_EQ(d.code, 0);
  }
}

// ---------------------------------------------------------------------------
// Decoder: every error
// ---------------------------------------------------------------------------

TEST(ws_error_masking_per_role) {
  CHECK_EQ(code_of(Role::Server, frame(0x81, B("hi"))), 1002);
  CHECK_EQ(code_of(Role::Client, frame(0x81, B("hi"), kKey)), 1002);
  CHECK_EQ(code_of(Role::Server, frame(0x89, B(""))), 1002);   // Control frames too.
  CHECK_EQ(code_of(Role::Client, frame(0x8a, B(""), kKey)), 1002);
}

TEST(ws_error_rsv_bits) {
  for (std::uint8_t rsv : {0x40, 0x20, 0x10, 0x70}) {
    CHECK_EQ(code_of(Role::Client, frame(static_cast<std::uint8_t>(0x81 | rsv), B("x"))), 1002);
    CHECK_EQ(code_of(Role::Server, frame(static_cast<std::uint8_t>(0x89 | rsv), B("x"), kKey)), 1002);
  }
}

TEST(ws_error_unknown_opcodes) {
  for (std::uint8_t op : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    CHECK_EQ(code_of(Role::Client, frame(static_cast<std::uint8_t>(0x80 | op), B(""))), 1002);
    CHECK_EQ(code_of(Role::Server, frame(static_cast<std::uint8_t>(0x80 | op), B(""), kKey)), 1002);
  }
}

TEST(ws_error_control_too_long_or_fragmented) {
  CHECK_EQ(code_of(Role::Client, frame(0x89, Bytes(125, 'p'))), 0);
  CHECK_EQ(code_of(Role::Client, frame(0x89, Bytes(126, 'p'))), 1002);
  CHECK_EQ(code_of(Role::Client, frame(0x8a, Bytes(126, 'p'))), 1002);
  CHECK_EQ(code_of(Role::Client, frame(0x88, Bytes(200, 'p'))), 1002);
  CHECK_EQ(code_of(Role::Client, hex("89 7e")), 1002);          // Known from two bytes.
  CHECK_EQ(code_of(Role::Client, frame(0x09, B("p"))), 1002);   // A ping without FIN.
  CHECK_EQ(code_of(Role::Client, frame(0x08, B(""))), 1002);
  CHECK_EQ(code_of(Role::Server, frame(0x0a, B(""), kKey)), 1002);
}

TEST(ws_error_continuation_rules) {
  CHECK_EQ(code_of(Role::Client, frame(0x80, B("x"))), 1002);   // Nothing to continue.
  CHECK_EQ(code_of(Role::Client, frame(0x00, B("x"))), 1002);
  CHECK_EQ(code_of(Role::Client, cat({frame(0x81, B("a")), frame(0x80, B("b"))})), 1002);
  // A new data frame while one is being reassembled.
  Decoded d = decode(Role::Client, cat({frame(0x01, B("a")), frame(0x81, B("b"))}));
  CHECK_EQ(d.code, 1002);
  CHECK_EQ(d.events, std::string(""));
  CHECK_EQ(code_of(Role::Client, cat({frame(0x01, B("a")), frame(0x02, B("b"))})), 1002);
  CHECK_EQ(code_of(Role::Server, cat({frame(0x02, B("a"), kKey), frame(0x82, B("b"), kKey)})), 1002);
}

TEST(ws_error_64bit_length_top_bit) {
  CHECK_EQ(code_of(Role::Client, hex("82 7f 80 00 00 00 00 00 00 00")), 1002);
  CHECK_EQ(code_of(Role::Client, hex("82 7f ff ff ff ff ff ff ff ff")), 1002);
  // The largest legal length is merely too big.
  CHECK_EQ(code_of(Role::Client, hex("82 7f 7f ff ff ff ff ff ff ff")), 1009);
}

TEST(ws_error_close_payload) {
  CHECK_EQ(code_of(Role::Client, frame(0x88, hex("03"))), 1002);   // One byte.
  for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    Bytes p = {static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code)};
    Decoded d = decode(Role::Client, frame(0x88, p));
    CHECK_EQ(d.code, 1002);
    CHECK(!d.closed);
    CHECK_EQ(d.events, std::string(""));
  }
  Decoded d = decode(Role::Server, frame(0x88, hex("03e8 c0af"), kKey));   // Reason not UTF-8.
  CHECK_EQ(d.code, 1007);
  CHECK(!d.closed);
  CHECK_EQ(code_of(Role::Client, frame(0x88, hex("03e8 eda080"))), 1007);
}

TEST(ws_error_invalid_utf8_text) {
  CHECK_EQ(code_of(Role::Client, frame(0x81, hex("c0af"))), 1007);
  CHECK_EQ(code_of(Role::Server, frame(0x81, hex("eda080"), kKey)), 1007);
  CHECK_EQ(code_of(Role::Client, frame(0x81, hex("f4908080"))), 1007);
  CHECK_EQ(code_of(Role::Client, cat({frame(0x01, B("ok")), frame(0x80, hex("e282"))})), 1007);
  // The same bytes in a binary message are fine.
  CHECK_EQ(code_of(Role::Client, frame(0x82, hex("c0af"))), 0);
  // Messages before the bad one are delivered.
  Decoded d = decode(Role::Client, cat({frame(0x81, B("good")), frame(0x81, hex("ff"))}));
  CHECK_EQ(d.events, std::string("Tgood|"));
  CHECK_EQ(d.code, 1007);
}

TEST(ws_error_too_big_from_the_header) {
  // Exactly the limit passes; one more fails as soon as the header is in,
  // before any payload byte.
  CHECK_EQ(code_of(Role::Client, frame(0x82, Bytes(10, 'x')), 10), 0);
  ws::Decoder d(Role::Client, 10);
  Events e;
  Bytes h = hex("82 0b");
  CHECK_EQ(d.feed(h.data(), h.size(), &e), 1009);
  ws::Decoder d2(Role::Server, 1000);
  Bytes h2 = hex("82 fe 03 e9");   // 1001, the mask key not yet here
  CHECK_EQ(d2.feed(h2.data(), h2.size(), &e), 0);
  Bytes key(kKey, kKey + 4);
  CHECK_EQ(d2.feed(key.data(), key.size(), &e), 1009);
  ws::Decoder d3(Role::Client, 1 << 20);
  Bytes h3 = hex("82 7f 00 00 00 01 00 00 00 00");   // 4 GiB announced
  CHECK_EQ(d3.feed(h3.data(), h3.size(), &e), 1009);
  CHECK_EQ(e.str(), std::string(""));
  CHECK_EQ(code_of(Role::Client, frame(0x81, B("x")), 0), 1009);
}

TEST(ws_error_too_big_as_fragments_add_up) {
  Bytes in = cat({frame(0x01, Bytes(6, 'a')), frame(0x89, B("p")), frame(0x00, Bytes(4, 'b')),
                  frame(0x80, Bytes(1, 'c'))});
  Decoded d = decode(Role::Client, in, 10);
  CHECK_EQ(d.code, 1009);
  CHECK_EQ(d.events, std::string("Pp|"));
  CHECK_EQ(decode(Role::Client, in, 10, 1).code, 1009);
  CHECK_EQ(decode(Role::Client, in, 11).events, std::string("Pp|Taaaaaabbbbc|"));
  // Known at the header of the fragment that goes over: no payload needed.
  ws::Decoder dec(Role::Client, 10);
  Events e;
  Bytes first = frame(0x02, Bytes(8, 'a'));
  Bytes second_header = hex("80 03");
  CHECK_EQ(dec.feed(first.data(), first.size(), &e), 0);
  CHECK_EQ(dec.feed(second_header.data(), second_header.size(), &e), 1009);
}

TEST(ws_errors_stick) {
  ws::Decoder d(Role::Server, 100);
  Events e;
  Bytes bad = frame(0x81, B("x"));   // Unmasked to a server.
  Bytes good = frame(0x81, B("ok"), kKey);
  CHECK_EQ(d.feed(bad.data(), bad.size(), &e), 1002);
  CHECK_EQ(d.feed(good.data(), good.size(), &e), 1002);
  CHECK_EQ(d.feed(nullptr, 0, &e), 1002);
  CHECK_EQ(e.str(), std::string(""));
  CHECK(!d.closed());
  ws::Decoder d2(Role::Client, 100);
  Bytes bad2 = frame(0x81, hex("ff"));
  Bytes good2 = frame(0x81, B("ok"));
  CHECK_EQ(d2.feed(bad2.data(), bad2.size(), &e), 1007);
  CHECK_EQ(d2.feed(good2.data(), good2.size(), &e), 1007);
  CHECK_EQ(e.str(), std::string(""));
}

TEST(ws_error_after_good_frames_in_one_feed) {
  Bytes in = cat({frame(0x81, B("a")), frame(0x89, B("b")), frame(0xc1, B("c")), frame(0x81, B("d"))});
  Decoded d = decode(Role::Client, in);
  CHECK_EQ(d.events, std::string("Ta|Pb|"));
  CHECK_EQ(d.code, 1002);
}

// ---------------------------------------------------------------------------
// Handshake
// ---------------------------------------------------------------------------

TEST(ws_handshake_upgrade_exact_101) {
  Hs r = handshake(kUpgrade);
  CHECK(r.result == Handshake::Result::Upgrade);
  CHECK_EQ(r.status, 101);
  CHECK_EQ(r.response, std::string(k101));
  CHECK_EQ(r.consumed, std::strlen(kUpgrade));
}

TEST(ws_handshake_leftover_bytes) {
  static const ws::HandshakeConfig config = test_config();
  Handshake h(&config);
  Bytes first = frame(0x81, B("Hi"), kKey);
  std::string in = std::string(kUpgrade) + std::string(first.begin(), first.end());
  std::size_t used = 0;
  CHECK(h.feed(reinterpret_cast<const std::uint8_t*>(in.data()), in.size(), &used) ==
        Handshake::Result::Upgrade);
  CHECK_EQ(used, std::strlen(kUpgrade));
  // The leftover is the first WebSocket frame.
  ws::Decoder d(Role::Server, 100);
  Events e;
  CHECK_EQ(d.feed(reinterpret_cast<const std::uint8_t*>(in.data()) + used, in.size() - used, &e), 0);
  CHECK_EQ(e.str(), std::string("THi|"));
  // Later feeds: the same result, nothing taken.
  CHECK(h.feed(reinterpret_cast<const std::uint8_t*>("GET"), 3, &used) == Handshake::Result::Upgrade);
  CHECK_EQ(used, 0u);
  CHECK_EQ(h.status(), 101);
}

TEST(ws_handshake_split_across_feeds) {
  for (std::size_t chunk : {1, 2, 3, 7, 16, 100}) {
    Hs r = handshake(kUpgrade, chunk);
    CHECK(r.result == Handshake::Result::Upgrade);
    CHECK_EQ(r.response, std::string(k101));
    CHECK_EQ(r.consumed, std::strlen(kUpgrade));
  }
  static const ws::HandshakeConfig config = test_config();
  Handshake h(&config);
  std::size_t used = 0;
  CHECK(h.feed(reinterpret_cast<const std::uint8_t*>(kUpgrade), 20, &used) == Handshake::Result::NeedMore);
  CHECK_EQ(used, 20u);
  CHECK_EQ(h.status(), 0);
  CHECK(h.feed(nullptr, 0, &used) == Handshake::Result::NeedMore);
  CHECK_EQ(used, 0u);
}

TEST(ws_handshake_header_forms) {
  // Case-insensitive names and values, token lists, OWS, a query string.
  std::string req =
      "GET /ws?token=abc&x=1 HTTP/1.1\r\n"
      "host: a\r\n"
      "UPGRADE:WebSocket\r\n"
      "connection: keep-alive,  UPGRADE \r\n"
      "SEC-WEBSOCKET-KEY:   dGhlIHNhbXBsZSBub25jZQ==\t\r\n"
      "sec-websocket-version: 13\r\n"
      "Sec-WebSocket-Extensions: permessage-deflate\r\n"
      "Sec-WebSocket-Protocol: chat\r\n"
      "\r\n";
  Hs r = handshake(req);
  CHECK(r.result == Handshake::Result::Upgrade);
  CHECK_EQ(r.response, std::string(k101));   // No extension, no subprotocol.
  // Connection split over two header lines.
  r = handshake(upgrade_with("Connection:", "Connection: keep-alive\r\nConnection: Upgrade\r\n"));
  CHECK(r.result == Handshake::Result::Upgrade);
}

TEST(ws_handshake_rejections_400) {
  CHECK_EQ(handshake(upgrade_with("Sec-WebSocket-Key:", "")).status, 400);
  CHECK_EQ(handshake(upgrade_with("Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n")).status, 400);
  CHECK_EQ(handshake(upgrade_with("Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n")).status, 400);
  CHECK_EQ(handshake(upgrade_with("Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n")).status, 400);
  CHECK_EQ(handshake(upgrade_with("Sec-WebSocket-Key:",
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")).status, 400);
  CHECK_EQ(handshake(upgrade_with("Connection:", "")).status, 400);
  CHECK_EQ(handshake(upgrade_with("Connection:", "Connection: keep-alive\r\n")).status, 400);
  CHECK_EQ(handshake(upgrade_with("Connection:", "Connection: upgrader\r\n")).status, 400);
  CHECK_EQ(handshake(upgrade_with("Upgrade:", "")).status, 400);   // Key and version, no Upgrade.
  std::string s = kUpgrade;
  CHECK_EQ(handshake("POST" + s.substr(3)).status, 405);           // Not GET or HEAD: 405 always.
  CHECK_EQ(handshake("HEAD" + s.substr(3)).status, 400);
  CHECK_EQ(handshake(upgrade_with("GET /ws", "GET /ws HTTP/1.0\r\n")).status, 400);
  // Not HTTP, or not strictly.
  CHECK_EQ(handshake("GET /ws HTTP/1.1\nHost: a\n\n").status, 400);              // Bare LF
  CHECK_EQ(handshake("GET /ws HTTP/1.1\r\nHost: a\rb\r\n\r\n").status, 400);     // Bare CR
  CHECK_EQ(handshake("GET  /ws HTTP/1.1\r\n\r\n").status, 400);
  CHECK_EQ(handshake("GET /ws\r\n\r\n").status, 400);
  CHECK_EQ(handshake("GET /ws HTTP/2.0\r\n\r\n").status, 400);
  CHECK_EQ(handshake("GET /ws HTTP/1.1 x\r\n\r\n").status, 400);
  CHECK_EQ(handshake("\r\n").status, 400);
  CHECK_EQ(handshake("GET /ws HTTP/1.1\r\nHost : a\r\n\r\n").status, 400);        // Space before ':'
  CHECK_EQ(handshake("GET /ws HTTP/1.1\r\nNoColon\r\n\r\n").status, 400);
  CHECK_EQ(handshake("GET /ws HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n").status, 400);
  CHECK_EQ(handshake(std::string("GET /ws HTTP/1.1\r\nX: a\0b\r\n\r\n", 28)).status, 400);
  // Garbage is answered at once, without waiting for a blank line.
  static const ws::HandshakeConfig config = test_config();
  Handshake h(&config);
  std::size_t used = 0;
  const std::uint8_t tls[] = {0x16, 0x03, 0x01, 0x02, 0x00};
  CHECK(h.feed(tls, sizeof tls, &used) == Handshake::Result::Reject);
  CHECK_EQ(h.status(), 400);
  CHECK(used <= sizeof tls);
  Hs r = handshake("hello\n");
  CHECK(r.result == Handshake::Result::Reject);
  CHECK_EQ(r.status, 400);
  CHECK(r.response.compare(0, 25, "HTTP/1.1 400 Bad Request\r") == 0);
  CHECK(r.response.find("\r\nConnection: close\r\n") != std::string::npos);
  CHECK(r.response.find("\r\nContent-Length: 12\r\n") != std::string::npos);
  CHECK(r.response.size() >= 12 && r.response.compare(r.response.size() - 12, 12, "Bad Request\n") == 0);
}

TEST(ws_handshake_rejections_426) {
  for (const char* v : {"Sec-WebSocket-Version: 8\r\n", "Sec-WebSocket-Version: 14\r\n",
                        "Sec-WebSocket-Version: 13, 8\r\n", ""}) {
    Hs r = handshake(upgrade_with("Sec-WebSocket-Version:", v));
    CHECK(r.result == Handshake::Result::Reject);
    CHECK_EQ(r.status, 426);
    CHECK(r.response.compare(0, 30, "HTTP/1.1 426 Upgrade Required\r") == 0);
    CHECK(r.response.find("\r\nSec-WebSocket-Version: 13\r\n") != std::string::npos);
    CHECK(r.response.find("\r\nConnection: close\r\n") != std::string::npos);
    CHECK(r.response.find("\r\nContent-Length: ") != std::string::npos);
  }
}

TEST(ws_handshake_rejections_404_405) {
  std::string s = kUpgrade;
  Hs r = handshake(upgrade_with("GET /ws", "GET /other HTTP/1.1\r\n"));
  CHECK_EQ(r.status, 404);
  CHECK(r.response.compare(0, 24, "HTTP/1.1 404 Not Found\r\n") == 0);
  CHECK_EQ(handshake("GET /wsx HTTP/1.1\r\nHost: a\r\n\r\n").status, 404);
  CHECK_EQ(handshake("GET /ws/ HTTP/1.1\r\nHost: a\r\n\r\n").status, 404);
  CHECK_EQ(handshake("GET /other?/ws HTTP/1.1\r\nHost: a\r\n\r\n").status, 404);
  CHECK_EQ(handshake("GET http://a/ws HTTP/1.1\r\nHost: a\r\n\r\n").status, 404);
  r = handshake("POST /ws HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  CHECK(r.result == Handshake::Result::Reject);
  CHECK_EQ(r.status, 405);
  CHECK(r.response.find("\r\nAllow: GET, HEAD\r\n") != std::string::npos);
  CHECK(r.response.find("\r\nConnection: close\r\n") != std::string::npos);
  CHECK_EQ(handshake("DELETE /ws HTTP/1.1\r\n\r\n").status, 405);
  // A HEAD answered with an error has no body.
  r = handshake("HEAD /nope HTTP/1.1\r\n\r\n");
  CHECK_EQ(r.status, 404);
  CHECK(r.response.find("\r\nContent-Length: 10\r\n") != std::string::npos);
  CHECK(r.response.compare(r.response.size() - 4, 4, "\r\n\r\n") == 0);
}

TEST(ws_handshake_oversize_head_431) {
  std::string big = "GET /ws HTTP/1.1\r\nX-Filler: " + std::string(9000, 'f') + "\r\n\r\n";
  Hs r = handshake(big);
  CHECK(r.result == Handshake::Result::Reject);
  CHECK_EQ(r.status, 431);
  CHECK_EQ(r.consumed, ws::kMaxRequestHead);
  CHECK(r.response.compare(0, 46, "HTTP/1.1 431 Request Header Fields Too Large\r\n") == 0);
  CHECK(r.response.find("\r\nConnection: close\r\n") != std::string::npos);
  CHECK_EQ(handshake(big, 100).status, 431);
  CHECK_EQ(handshake(std::string(20000, 'G')).status, 431);   // No line end at all.
  // A head of exactly kMaxRequestHead bytes is accepted; one more is not.
  std::string head = "GET /ws HTTP/1.1\r\nX-Filler: ";
  std::string tail = "\r\n\r\n";
  std::string exact = head + std::string(ws::kMaxRequestHead - head.size() - tail.size(), 'f') + tail;
  CHECK_EQ(exact.size(), ws::kMaxRequestHead);
  r = handshake(exact, 1);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.consumed, ws::kMaxRequestHead);
  std::string over = head + std::string(ws::kMaxRequestHead - head.size() - tail.size() + 1, 'f') + tail;
  CHECK_EQ(handshake(over).status, 431);
}

TEST(ws_handshake_page_get_and_head) {
  const std::string page = "<!doctype html><p>echocast</p>";
  std::string want_head =
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/html; charset=utf-8\r\n"
      "Content-Length: " + std::to_string(page.size()) + "\r\n"
      "Cache-Control: no-store\r\n"
      "Connection: close\r\n"
      "\r\n";
  std::string req = "GET /ws HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\n\r\n";
  Hs r = handshake(req);
  CHECK(r.result == Handshake::Result::Page);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.response, want_head + page);
  CHECK_EQ(r.consumed, req.size());
  r = handshake("GET /ws?v=2 HTTP/1.0\r\n\r\n", 1);
  CHECK(r.result == Handshake::Result::Page);
  CHECK_EQ(r.response, want_head + page);
  r = handshake("HEAD /ws HTTP/1.1\r\nHost: a\r\n\r\n");
  CHECK(r.result == Handshake::Result::Page);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.response, want_head);   // Content-Length of the page, no body.
  // An Upgrade to something else is not a WebSocket request: the page.
  r = handshake("GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
  CHECK(r.result == Handshake::Result::Page);
  // Bytes after the head are not taken.
  req = "GET /ws HTTP/1.1\r\n\r\nGET /ws HTTP/1.1\r\n\r\n";
  r = handshake(req);
  CHECK_EQ(r.consumed, req.size() / 2);
}

// ---------------------------------------------------------------------------
// message_to_frames
// ---------------------------------------------------------------------------

TEST(ws_message_to_frames_line) {
  std::size_t n = 0;
  Frames f = to_frames(Framing::Line, "a\nb", &n);
  CHECK_EQ(n, 2u);
  CHECK(f.bytes == (std::vector<std::string>{"a\n", "b\n"}));
  CHECK(f.payloads == (std::vector<std::string>{"a", "b"}));
  f = to_frames(Framing::Line, "a\n", &n);
  CHECK_EQ(n, 1u);
  CHECK(f.bytes == (std::vector<std::string>{"a\n"}));
  f = to_frames(Framing::Line, "", &n);
  CHECK_EQ(n, 1u);
  CHECK(f.bytes == (std::vector<std::string>{"\n"}));
  CHECK(f.payloads == (std::vector<std::string>{""}));
  f = to_frames(Framing::Line, "\n\nx\r\n", &n);
  CHECK_EQ(n, 3u);
  CHECK(f.bytes == (std::vector<std::string>{"\n", "\n", "x\r\n"}));
  CHECK(f.payloads == (std::vector<std::string>{"", "", "x\r"}));
  f = to_frames(Framing::Line, std::string("\x00\xff", 2), &n);
  CHECK_EQ(n, 1u);
  CHECK(f.bytes == (std::vector<std::string>{std::string("\x00\xff\n", 3)}));
}

TEST(ws_message_to_frames_raw) {
  std::size_t n = 0;
  Frames f = to_frames(Framing::Raw, "a\nb", &n);
  CHECK_EQ(n, 1u);
  CHECK(f.bytes == (std::vector<std::string>{"a\nb"}));
  CHECK(f.payloads == (std::vector<std::string>{"a\nb"}));
  f = to_frames(Framing::Raw, "", &n);
  CHECK_EQ(n, 0u);
  CHECK(f.bytes.empty());
  f = to_frames(Framing::Raw, std::string("\x00\x01\xfe", 3), &n);
  CHECK_EQ(n, 1u);
  CHECK(f.bytes == (std::vector<std::string>{std::string("\x00\x01\xfe", 3)}));
}

TEST(ws_message_to_frames_length) {
  std::size_t n = 0;
  Frames f = to_frames(Framing::Length, "a\nb", &n);
  CHECK_EQ(n, 1u);
  CHECK(f.bytes == (std::vector<std::string>{std::string("\0\0\0\3a\nb", 7)}));
  CHECK(f.payloads == (std::vector<std::string>{"a\nb"}));
  f = to_frames(Framing::Length, "", &n);
  CHECK_EQ(n, 1u);
  CHECK(f.bytes == (std::vector<std::string>{std::string(4, '\0')}));
  CHECK(f.payloads == (std::vector<std::string>{""}));
  std::string bin(300, '\xab');
  f = to_frames(Framing::Length, bin, &n);
  CHECK_EQ(n, 1u);
  CHECK(f.bytes == (std::vector<std::string>{std::string("\0\0\x01\x2c", 4) + bin}));
}

TEST(ws_message_to_frames_agree_with_framer) {
  // Each framing's frames, re-split by a Framer, are the same frames.
  for (const char* m : {"a\nb", "a\n", "", "\n", "one\ntwo\n\nthree"}) {
    std::string v = websocket_check::check_frames(reinterpret_cast<const std::uint8_t*>(m), std::strlen(m));
    CHECK_EQ(v, std::string(""));
  }
}

// ---------------------------------------------------------------------------
// The fuzz seeds, through the fuzz target's checks
// ---------------------------------------------------------------------------

TEST(ws_fuzz_corpus_replays) {
  const char* env = std::getenv("ECHOCAST_FUZZ_DIR");
#ifdef ECHOCAST_FUZZ_DIR
  std::filesystem::path dir = (env != nullptr && *env != '\0') ? env : ECHOCAST_FUZZ_DIR;
#else
  std::filesystem::path dir = (env != nullptr && *env != '\0') ? env : "native/test/fuzz";
#endif
  dir /= "corpus-websocket";
  std::error_code ec;
  CHECK(std::filesystem::is_directory(dir, ec));
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.is_regular_file(ec)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  CHECK(files.size() >= 10);
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string v = websocket_check::check_case(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                                bytes.size());
    CHECK_EQ(f.filename().string() + ": " + v, f.filename().string() + ": ");
  }
}

TEST(ws_header_value_finds_a_field_without_case_and_trims_it) {
  const std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Accept-X: no\r\nsec-websocket-ACCEPT: \t s3pPLMBiTxaQ9kYGzzhZRbK+xOo= \r\n";
  std::string v;
  CHECK(ws::header_value(head, "sec-websocket-accept", &v));
  CHECK_EQ(v, std::string("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
  CHECK(ws::header_value(head, "upgrade", &v));
  CHECK_EQ(v, std::string("websocket"));
  CHECK(!ws::header_value(head, "connection", &v));
  // The start line is not a field, and a head without fields has none.
  CHECK(!ws::header_value("HTTP/1.1 101 upgrade: x", "http/1.1 101 upgrade", &v));
  CHECK(!ws::header_value("", "upgrade", &v));
}
