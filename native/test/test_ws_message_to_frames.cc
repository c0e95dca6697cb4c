// test_ws_message_to_frames.cc — core/ws/message_to_frames: a client's
// message into frames of each framing (docs/contract.md §6), and those
// frames re-split by a Framer through the fuzz target's check. See
// docs/architecture.md.
#include <cstring>
#include <string>
#include <vector>

#include "../core/framer.h"
#include "../core/ws/message_to_frames.h"
#include "fuzz/websocket_check.h"
#include "unit.h"

namespace ws = echocast::ws;
using echocast::Framing;

namespace {

struct Frames : echocast::FrameSink {
  std::vector<std::string> bytes, payloads;
  void on_frame(const echocast::FrameView& f) override {
    bytes.emplace_back(reinterpret_cast<const char*>(f.bytes), f.size);
    payloads.emplace_back(reinterpret_cast<const char*>(f.bytes) + f.payload_offset,
                          f.payload_size);
  }
};

Frames to_frames(Framing fr, const std::string& msg, std::size_t* count) {
  Frames f;
  std::vector<std::uint8_t> scratch;
  *count = ws::message_to_frames(fr, reinterpret_cast<const std::uint8_t*>(msg.data()), msg.size(),
                                 &scratch, &f);
  return f;
}

using Strings = std::vector<std::string>;

// Checks that `msg` in framing `fr` becomes exactly the frames `bytes` (as
// many frames as there are, in wire form) and, when given, these payloads.
void expect_frames(Framing fr, const std::string& msg, const Strings& bytes) {
  std::size_t n = 0;
  Frames f = to_frames(fr, msg, &n);
  CHECK_EQ(n, bytes.size());
  CHECK(f.bytes == bytes);
}

void expect_frames(Framing fr, const std::string& msg, const Strings& bytes,
                   const Strings& payloads) {
  expect_frames(fr, msg, bytes);
  std::size_t n = 0;
  CHECK(to_frames(fr, msg, &n).payloads == payloads);
}

}  // namespace

TEST(ws_message_to_frames_line) {
  expect_frames(Framing::Line, "a\nb", {"a\n", "b\n"}, {"a", "b"});
  expect_frames(Framing::Line, "a\n", {"a\n"});
  expect_frames(Framing::Line, "", {"\n"}, {""});
  expect_frames(Framing::Line, "\n\nx\r\n", {"\n", "\n", "x\r\n"}, {"", "", "x\r"});
  expect_frames(Framing::Line, std::string("\x00\xff", 2), {std::string("\x00\xff\n", 3)});
}

TEST(ws_message_to_frames_raw) {
  expect_frames(Framing::Raw, "a\nb", {"a\nb"}, {"a\nb"});
  expect_frames(Framing::Raw, "", {});  // No frame.
  expect_frames(Framing::Raw, std::string("\x00\x01\xfe", 3), {std::string("\x00\x01\xfe", 3)});
}

TEST(ws_message_to_frames_length) {
  expect_frames(Framing::Length, "a\nb", {std::string("\0\0\0\3a\nb", 7)}, {"a\nb"});
  expect_frames(Framing::Length, "", {std::string(4, '\0')}, {""});
  std::string bin(300, '\xab');
  expect_frames(Framing::Length, bin, {std::string("\0\0\x01\x2c", 4) + bin});
}

TEST(ws_message_to_frames_agree_with_framer) {
  // Each framing's frames, re-split by a Framer, are the same frames.
  for (const char* m : {"a\nb", "a\n", "", "\n", "one\ntwo\n\nthree"}) {
    std::string v =
        websocket_check::check_frames(reinterpret_cast<const std::uint8_t*>(m), std::strlen(m));
    CHECK_EQ(v, std::string(""));
  }
}
