// test_ws_decoder.cc — core/ws/decoder in both roles: the RFC 6455 §5.7
// examples, streams fed whole or in chunks, control frames between
// fragments, and every error path with its close code. See
// docs/architecture.md.
#include <cstring>
#include <string>

#include "../core/ws/decoder.h"
#include "unit.h"
#include "ws_test_util.h"

namespace ws = echocast::ws;
using namespace ws_test;
using ws::Role;

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
  CHECK_EQ(code_of(Role::Client, in), 1002);  // Masked, to a client.
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
  CHECK_EQ(decode(Role::Client, f64k, 65536, 1000).events,
           "B" + to_hex(p64k.data(), p64k.size()) + "|");
  Bytes m64k = frame(0x82, p64k, kKey);
  CHECK_EQ(decode(Role::Server, m64k, 65536, 777).events,
           "B" + to_hex(p64k.data(), p64k.size()) + "|");
  CHECK_EQ(decode(Role::Server, m64k, 65535).code, 1009);
}

// ---------------------------------------------------------------------------
// Decoder: streams, chunking, control frames between fragments
// ---------------------------------------------------------------------------

TEST(ws_byte_by_byte_equals_one_feed) {
  for (Role role : {Role::Server, Role::Client}) {
    const std::uint8_t* k = role == Role::Server ? kKey : nullptr;
    Bytes p300(300, 'z');
    Bytes in = cat({frame(0x81, B("one"), k), frame(0x02, hex("00ff"), k),
                    frame(0x89, B("ping"), k), frame(0x00, hex("10"), k), frame(0x8a, B("pong"), k),
                    frame(0x80, hex("20"), k), frame(0x81, B(""), k), frame(0x82, p300, k),
                    frame(0x01, B("\xe2\x82"), k), frame(0x80, B("\xac"), k),
                    frame(0x88,
                          B("\x03\xe8"
                            "done"),
                          k),
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
  CHECK_EQ(decode(Role::Client, in, 0).events, std::string("Pa|P|T|"));  // Empty fits max 0.
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
  CHECK_EQ(code_of(Role::Server, frame(0x89, B(""))), 1002);  // Control frames too.
  CHECK_EQ(code_of(Role::Client, frame(0x8a, B(""), kKey)), 1002);
}

TEST(ws_error_rsv_bits) {
  for (std::uint8_t rsv : {0x40, 0x20, 0x10, 0x70}) {
    CHECK_EQ(code_of(Role::Client, frame(static_cast<std::uint8_t>(0x81 | rsv), B("x"))), 1002);
    CHECK_EQ(code_of(Role::Server, frame(static_cast<std::uint8_t>(0x89 | rsv), B("x"), kKey)),
             1002);
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
  CHECK_EQ(code_of(Role::Client, hex("89 7e")), 1002);         // Known from two bytes.
  CHECK_EQ(code_of(Role::Client, frame(0x09, B("p"))), 1002);  // A ping without FIN.
  CHECK_EQ(code_of(Role::Client, frame(0x08, B(""))), 1002);
  CHECK_EQ(code_of(Role::Server, frame(0x0a, B(""), kKey)), 1002);
}

TEST(ws_error_continuation_rules) {
  CHECK_EQ(code_of(Role::Client, frame(0x80, B("x"))), 1002);  // Nothing to continue.
  CHECK_EQ(code_of(Role::Client, frame(0x00, B("x"))), 1002);
  CHECK_EQ(code_of(Role::Client, cat({frame(0x81, B("a")), frame(0x80, B("b"))})), 1002);
  // A new data frame while one is being reassembled.
  Decoded d = decode(Role::Client, cat({frame(0x01, B("a")), frame(0x81, B("b"))}));
  CHECK_EQ(d.code, 1002);
  CHECK_EQ(d.events, std::string(""));
  CHECK_EQ(code_of(Role::Client, cat({frame(0x01, B("a")), frame(0x02, B("b"))})), 1002);
  CHECK_EQ(code_of(Role::Server, cat({frame(0x02, B("a"), kKey), frame(0x82, B("b"), kKey)})),
           1002);
}

TEST(ws_error_64bit_length_top_bit) {
  CHECK_EQ(code_of(Role::Client, hex("82 7f 80 00 00 00 00 00 00 00")), 1002);
  CHECK_EQ(code_of(Role::Client, hex("82 7f ff ff ff ff ff ff ff ff")), 1002);
  // The largest legal length is merely too big.
  CHECK_EQ(code_of(Role::Client, hex("82 7f 7f ff ff ff ff ff ff ff")), 1009);
}

TEST(ws_error_close_payload) {
  CHECK_EQ(code_of(Role::Client, frame(0x88, hex("03"))), 1002);  // One byte.
  for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    Bytes p = {static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code)};
    Decoded d = decode(Role::Client, frame(0x88, p));
    CHECK_EQ(d.code, 1002);
    CHECK(!d.closed);
    CHECK_EQ(d.events, std::string(""));
  }
  Decoded d = decode(Role::Server, frame(0x88, hex("03e8 c0af"), kKey));  // Reason not UTF-8.
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
  Bytes h2 = hex("82 fe 03 e9");  // 1001, the mask key not yet here
  CHECK_EQ(d2.feed(h2.data(), h2.size(), &e), 0);
  Bytes key(kKey, kKey + 4);
  CHECK_EQ(d2.feed(key.data(), key.size(), &e), 1009);
  ws::Decoder d3(Role::Client, 1 << 20);
  Bytes h3 = hex("82 7f 00 00 00 01 00 00 00 00");  // 4 GiB announced
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
  Bytes bad = frame(0x81, B("x"));  // Unmasked to a server.
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
  Bytes in =
      cat({frame(0x81, B("a")), frame(0x89, B("b")), frame(0xc1, B("c")), frame(0x81, B("d"))});
  Decoded d = decode(Role::Client, in);
  CHECK_EQ(d.events, std::string("Ta|Pb|"));
  CHECK_EQ(d.code, 1002);
}
