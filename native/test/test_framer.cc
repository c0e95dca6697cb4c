// test_framer.cc — line / raw / length splitting, limits, chunk boundaries.
#include <string>
#include <vector>

#include "../core/framer.h"
#include "unit.h"

using echocast::Framer;
using echocast::FrameSink;
using echocast::FrameView;
using echocast::Framing;

namespace {

struct Collect : FrameSink {
  std::vector<std::string> frames;    // Relayed bytes.
  std::vector<std::string> payloads;  // Message payloads.
  void on_frame(const FrameView& f) override {
    frames.emplace_back(reinterpret_cast<const char*>(f.bytes), f.size);
    payloads.emplace_back(reinterpret_cast<const char*>(f.bytes) + f.payload_offset,
                          f.payload_size);
  }
};

bool feed(Framer& fr, const std::string& s, Collect* c) {
  return fr.feed(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), c);
}

// Feeds one byte at a time; returns false at the first error.
bool feed_bytes(Framer& fr, const std::string& s, Collect* c) {
  for (char ch : s) {
    std::uint8_t b = static_cast<std::uint8_t>(ch);
    if (!fr.feed(&b, 1, c)) return false;
  }
  return true;
}

std::string be32(std::uint32_t n) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(n >> 24);
  s[1] = static_cast<char>(n >> 16);
  s[2] = static_cast<char>(n >> 8);
  s[3] = static_cast<char>(n);
  return s;
}

}  // namespace

TEST(framer_parse_names) {
  Framing f;
  CHECK(echocast::parse_framing("line", &f) && f == Framing::Line);
  CHECK(echocast::parse_framing("raw", &f) && f == Framing::Raw);
  CHECK(echocast::parse_framing("length", &f) && f == Framing::Length);
  CHECK(!echocast::parse_framing("lines", &f));
}

TEST(line_splits_and_keeps_cr) {
  Framer fr(Framing::Line, 100);
  Collect c;
  CHECK(feed(fr, "Hello\nWor", &c));
  CHECK(feed(fr, "ld\r\n\nx", &c));
  CHECK_EQ(c.frames.size(), 3u);
  CHECK_EQ(c.frames[0], std::string("Hello\n"));
  CHECK_EQ(c.payloads[0], std::string("Hello"));
  CHECK_EQ(c.frames[1], std::string("World\r\n"));
  CHECK_EQ(c.payloads[1], std::string("World\r"));
  CHECK_EQ(c.frames[2], std::string("\n"));
  CHECK_EQ(c.payloads[2], std::string(""));
  CHECK_EQ(fr.buffered(), 1u);  // "x" waits; dropped at disconnect.
}

TEST(line_byte_by_byte_equals_whole) {
  std::string input = "a\nbb\r\n\0c\n\xff\xfe\n";
  input += std::string("tail");
  Framer a(Framing::Line, 64), b(Framing::Line, 64);
  Collect ca, cb;
  CHECK(feed(a, input, &ca));
  CHECK(feed_bytes(b, input, &cb));
  CHECK(ca.frames == cb.frames);
  CHECK(ca.payloads == cb.payloads);
}

TEST(line_limit_counts_newline) {
  {
    Framer fr(Framing::Line, 4);
    Collect c;
    CHECK(feed(fr, "abc\n", &c));  // 4 bytes with '\n': allowed.
    CHECK_EQ(c.frames.size(), 1u);
  }
  {
    Framer fr(Framing::Line, 4);
    Collect c;
    CHECK(!feed(fr, "abcd\n", &c));  // 5 bytes: too large.
  }
  {
    Framer fr(Framing::Line, 4);
    Collect c;
    CHECK(feed(fr, "abc", &c));
    CHECK(!feed(fr, "d", &c));  // 4 bytes and no '\n' yet: cannot fit.
  }
  {
    Framer fr(Framing::Line, 4);
    Collect c;
    CHECK(!feed_bytes(fr, "ab\ncdef\n", &c));
    CHECK_EQ(c.frames.size(), 1u);  // "ab\n" came out before the error.
  }
}

TEST(line_frames_before_error_in_same_chunk) {
  Framer fr(Framing::Line, 8);
  Collect c;
  CHECK(!feed(fr, "ok\nalso\n123456789\nlater\n", &c));
  CHECK_EQ(c.frames.size(), 2u);
  CHECK_EQ(c.payloads[1], std::string("also"));
}

TEST(raw_each_chunk_is_a_frame) {
  Framer fr(Framing::Raw, 5);
  Collect c;
  CHECK(feed(fr, "abc", &c));
  CHECK(feed(fr, "a\nb\n", &c));
  CHECK(feed(fr, "", &c));
  CHECK_EQ(c.frames.size(), 2u);
  CHECK_EQ(c.payloads[1], std::string("a\nb\n"));
  CHECK(feed(fr, "12345", &c));
  CHECK(!feed(fr, "123456", &c));
}

TEST(length_whole_and_split) {
  std::string input = be32(5) + "hello" + be32(0) + be32(3) + std::string("\0\n\r", 3);
  Framer a(Framing::Length, 16), b(Framing::Length, 16);
  Collect ca, cb;
  CHECK(feed(a, input, &ca));
  CHECK(feed_bytes(b, input, &cb));
  CHECK_EQ(ca.frames.size(), 3u);
  CHECK(ca.frames == cb.frames);
  CHECK(ca.payloads == cb.payloads);
  CHECK_EQ(ca.frames[0], be32(5) + "hello");
  CHECK_EQ(ca.payloads[0], std::string("hello"));
  CHECK_EQ(ca.payloads[1], std::string(""));
  CHECK_EQ(ca.payloads[2], std::string("\0\n\r", 3));
}

TEST(length_limit_counts_payload_only) {
  {
    Framer fr(Framing::Length, 4);
    Collect c;
    CHECK(feed(fr, be32(4) + "abcd", &c));
    CHECK_EQ(c.frames.size(), 1u);
  }
  {
    Framer fr(Framing::Length, 4);
    Collect c;
    CHECK(!feed(fr, be32(5), &c));  // Rejected on the prefix alone.
  }
  {
    Framer fr(Framing::Length, 4);
    Collect c;
    std::string p = be32(0xFFFFFFFFu);
    CHECK(feed(fr, p.substr(0, 3), &c));
    CHECK(!feed(fr, p.substr(3), &c));
  }
  {
    Framer fr(Framing::Length, 4);
    Collect c;
    CHECK(feed(fr, be32(2) + "ab" + be32(1), &c));
    CHECK_EQ(c.frames.size(), 1u);
    CHECK_EQ(fr.buffered(), 4u);  // Partial frame kept, dropped at disconnect.
  }
}

TEST(length_random_chunking_matches) {
  std::string input;
  for (std::uint32_t i = 0; i < 50; ++i)
    input += be32(i % 7) + std::string(i % 7, static_cast<char>('a' + i % 26));
  Framer whole(Framing::Length, 16);
  Collect cw;
  CHECK(feed(whole, input, &cw));
  unsigned seed = 12345;
  Framer parts(Framing::Length, 16);
  Collect cp;
  std::size_t pos = 0;
  while (pos < input.size()) {
    seed = seed * 1103515245u + 12345u;
    std::size_t n = 1 + (seed >> 16) % 13;
    if (n > input.size() - pos) n = input.size() - pos;
    CHECK(feed(parts, input.substr(pos, n), &cp));
    pos += n;
  }
  CHECK_EQ(cw.frames.size(), 50u);
  CHECK(cw.frames == cp.frames);
}
