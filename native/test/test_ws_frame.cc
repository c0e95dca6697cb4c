// test_ws_frame.cc — core/ws/frame: frame headers (every length form, with
// and without a mask), masking (RFC 6455 §5.7, in pieces), close and pong
// frames, and the close code of each disconnect reason. See
// docs/architecture.md.
#include <string>

#include "../core/ws/frame.h"
#include "../core/ws/primitives.h"
#include "unit.h"
#include "ws_test_util.h"

namespace ws = echocast::ws;
using namespace ws_test;
using ws::Role;

TEST(ws_encode_header_sizes) {
  std::uint8_t h[ws::kMaxHeader];
  CHECK_EQ(ws::encode_header(ws::kText, 5, h), 2u);
  CHECK_EQ(to_hex(h, 2), std::string("8105"));
  CHECK_EQ(ws::encode_header(ws::kBinary, 125, h), 2u);
  CHECK_EQ(to_hex(h, 2), std::string("827d"));
  CHECK_EQ(ws::encode_header(ws::kBinary, 126, h), 4u);
  CHECK_EQ(to_hex(h, 4), std::string("827e007e"));
  CHECK_EQ(ws::encode_header(ws::kBinary, 256, h), 4u);  // RFC 6455 §5.7
  CHECK_EQ(to_hex(h, 4), std::string("827e0100"));
  CHECK_EQ(ws::encode_header(ws::kBinary, 65535, h), 4u);
  CHECK_EQ(to_hex(h, 4), std::string("827effff"));
  CHECK_EQ(ws::encode_header(ws::kBinary, 65536, h), 10u);  // RFC 6455 §5.7
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
  CHECK_EQ(to_hex(hello.data(), hello.size()), std::string("7f9f4d5158"));  // RFC 6455 §5.7
  // Masking in pieces with the running offset equals masking at once.
  Bytes whole(100);
  for (std::size_t i = 0; i < whole.size(); ++i) whole[i] = static_cast<std::uint8_t>(i * 7);
  Bytes pieces = whole;
  ws::mask(whole.data(), whole.size(), kKey);
  std::size_t cuts[] = {0, 3, 4, 13, 30, 31, 64, 100};
  for (std::size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; ++i)
    ws::mask(pieces.data() + cuts[i], cuts[i + 1] - cuts[i], kKey, cuts[i]);
  CHECK(pieces == whole);
  ws::mask(whole.data(), whole.size(), kKey);  // Its own inverse.
  for (std::size_t i = 0; i < whole.size(); ++i)
    CHECK_EQ(whole[i], static_cast<std::uint8_t>(i * 7));
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
  for (int i = 0; i < 50; ++i) euros += "\xe2\x82\xac";  // 150 bytes, 3 per character
  f = ws::close_frame(1001, euros.c_str());
  CHECK_EQ(f.size(), 2u + 2u + 123u);  // 41 characters fit exactly
  f = ws::close_frame(1001, ("x" + euros).c_str());
  CHECK_EQ(f.size(), 2u + 2u + 121u);  // "x" + 40 characters
  CHECK(ws::valid_utf8(f.data() + 4, f.size() - 4));
  // And a decoder takes it back.
  Decoded d = decode(Role::Client, ws::close_frame(1000, "bye"));
  CHECK_EQ(d.events, std::string("C1000:bye|"));
}

TEST(ws_pong_frame) {
  Bytes f = ws::pong_frame(reinterpret_cast<const std::uint8_t*>("Hello"), 5);
  CHECK_EQ(to_hex(f.data(), f.size()), std::string("8a0548656c6c6f"));  // RFC 6455 §5.7
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
