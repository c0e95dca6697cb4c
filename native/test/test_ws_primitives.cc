// test_ws_primitives.cc — core/ws/primitives: SHA-1 (FIPS 180-4 vectors and
// the padding boundaries), base64 (RFC 4648 vectors), UTF-8 validation
// (RFC 3629: overlongs, surrogates, truncation). See docs/architecture.md.
#include <string>

#include "../core/ws/primitives.h"
#include "unit.h"
#include "ws_test_util.h"

namespace ws = echocast::ws;
using namespace ws_test;

namespace {

std::string sha1_hex(const std::string& s) {
  std::uint8_t out[20];
  ws::sha1(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), out);
  return to_hex(out, 20);
}

std::string b64(const std::string& s) {
  return ws::base64(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

bool utf8(const Bytes& b) { return ws::valid_utf8(b.data(), b.size()); }

}  // namespace

TEST(ws_sha1_fips_vectors) {
  CHECK_EQ(sha1_hex("abc"), std::string("a9993e364706816aba3e25717850c26c9cd0d89d"));
  CHECK_EQ(sha1_hex(""), std::string("da39a3ee5e6b4b0d3255bfef95601890afd80709"));
  CHECK_EQ(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
           std::string("84983e441c3bd26ebaae4aa1f95129e5e54670f1"));
  CHECK_EQ(sha1_hex(std::string(1000000, 'a')),
           std::string("34aa973cd4c4daa4f61eeb2bdbad27316534016f"));
}

TEST(ws_sha1_padding_boundaries) {
  // Lengths around the one-or-two padding blocks (55/56) and a block (64).
  CHECK_EQ(sha1_hex(std::string(55, 'a')), std::string("c1c8bbdc22796e28c0e15163d20899b65621d65a"));
  CHECK_EQ(sha1_hex(std::string(56, 'a')), std::string("c2db330f6083854c99d4b5bfb6e8f29f201be699"));
  CHECK_EQ(sha1_hex(std::string(63, 'a')), std::string("03f09f5b158a7a8cdad920bddc29b81c18a551f5"));
  CHECK_EQ(sha1_hex(std::string(64, 'a')), std::string("0098ba824b5c16427bd7a1122a5a442a25ec644d"));
  CHECK_EQ(sha1_hex(std::string(65, 'a')), std::string("11655326c708d70319be2610e8a57d9a5b959d3b"));
  CHECK_EQ(sha1_hex(std::string(119, 'a')),
           std::string("ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56"));
  CHECK_EQ(sha1_hex(std::string(120, 'a')),
           std::string("f34c1488385346a55709ba056ddd08280dd4c6d6"));
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

TEST(ws_utf8_valid) {
  CHECK(utf8(B("")));
  CHECK(utf8(B("Hello, world")));
  CHECK(utf8(hex("c2a9")));      // U+00A9
  CHECK(utf8(hex("e282ac")));    // U+20AC
  CHECK(utf8(hex("ed9fbf")));    // U+D7FF, just below the surrogates
  CHECK(utf8(hex("ee8080")));    // U+E000, just above
  CHECK(utf8(hex("efbfbf")));    // U+FFFF
  CHECK(utf8(hex("f0908080")));  // U+10000
  CHECK(utf8(hex("f48fbfbf")));  // U+10FFFF, the last
  CHECK(utf8(
      B("ASCII run longer than eight bytes then \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")));
}

TEST(ws_utf8_invalid) {
  CHECK(!utf8(hex("c0af")));          // Overlong '/' in two bytes
  CHECK(!utf8(hex("e080af")));        // ... in three
  CHECK(!utf8(hex("f08080af")));      // ... in four
  CHECK(!utf8(hex("c1bf")));          // Overlong U+007F
  CHECK(!utf8(hex("e09fbf")));        // Overlong U+07FF
  CHECK(!utf8(hex("f08fbfbf")));      // Overlong U+FFFF
  CHECK(!utf8(hex("eda080")));        // U+D800
  CHECK(!utf8(hex("edadbf")));        // U+DB7F
  CHECK(!utf8(hex("edbfbf")));        // U+DFFF
  CHECK(!utf8(hex("eda080edb080")));  // A surrogate pair, CESU-style
  CHECK(!utf8(hex("f4908080")));      // U+110000
  CHECK(!utf8(hex("f7bfbfbf")));      // U+1FFFFF
  CHECK(!utf8(hex("f88888808080")));  // Five bytes
  CHECK(!utf8(hex("fe")));
  CHECK(!utf8(hex("ff")));
  CHECK(!utf8(hex("80")));  // A lone continuation byte
  CHECK(!utf8(hex("41bf42")));
  CHECK(!utf8(hex("c2")));  // Truncated at the end
  CHECK(!utf8(hex("e282")));
  CHECK(!utf8(hex("f09080")));
  CHECK(!utf8(hex("4142434445464748c2")));  // ... after an ASCII run
  CHECK(!utf8(hex("c241")));                // A missing continuation
  CHECK(!utf8(hex("e28241")));
  CHECK(!utf8(hex("cebae1bdb9cf83cebcceb5eda080656469746564")));  // Kuhn's "κόσμε" then a surrogate
}
