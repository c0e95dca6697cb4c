// test_ws_session.cc — one WebSocket connection's protocol state
// (core/ws_session.h): the handshake and its leftover bytes, messages into
// frames of the server's framing, pongs as control bytes, the close
// decision and its close frame.
#include <string>
#include <vector>

#include "../core/frame_batch.h"
#include "../core/ws_session.h"
#include "unit.h"
#include "connection_test_util.h"

using namespace echocast;
using namespace connection_test;

namespace {

// One masked client frame.
std::string client_frame(ws::Opcode op, const std::string& payload, bool fin = true) {
  std::uint8_t key[4] = {1, 2, 3, 4};
  std::uint8_t h[ws::kMaxHeader];
  std::size_t n = ws::encode_header(op, payload.size(), h, key);
  if (!fin) h[0] &= 0x7f;
  std::string body = payload;
  ws::mask(reinterpret_cast<std::uint8_t*>(&body[0]), body.size(), key);
  return std::string(reinterpret_cast<char*>(h), n) + body;
}

std::string control(const WsSession& s) {
  return std::string(reinterpret_cast<const char*>(s.control_data()), s.control_size());
}

struct Fixture {
  ws::HandshakeConfig config;
  FrameBatch batch;
  FrameBatchSink sink{&batch};
  Fixture() {
    config.path = "/ws";
    config.page = "<p>page</p>";
  }
  std::string frame(std::size_t i) const {
    const FrameBatch::Extent& e = batch.frames[i];
    return std::string(reinterpret_cast<const char*>(batch.data(e)), e.size);
  }
};

}  // namespace

TEST(ws_session_upgrade_then_messages_as_line_frames) {
  Fixture f;
  WsSession s(&f.config, Framing::Line, 1024);
  std::string head(kUpgrade);
  std::string first = client_frame(ws::kText, "a\nb");
  std::string bytes = head + first;
  std::size_t consumed = 0;
  CHECK(s.handshake(u8(bytes), 10, &consumed) == ws::Handshake::Result::NeedMore);
  CHECK_EQ(consumed, 10u);
  CHECK(s.handshake(u8(bytes) + 10, bytes.size() - 10, &consumed) ==
        ws::Handshake::Result::Upgrade);
  CHECK_EQ(consumed, head.size() - 10);
  CHECK(s.state() == WsSession::State::Open);
  CHECK_EQ(s.status(), 101);
  // The 101 is the first control output.
  CHECK(control(s).find("HTTP/1.1 101") == 0);
  CHECK(control(s).find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != std::string::npos);
  s.control_sent(s.control_size());
  CHECK(!s.control_pending());
  // The leftover: one text message, two lines.
  CHECK(s.feed(u8(first), first.size(), &f.sink));
  CHECK_EQ(f.batch.frames.size(), 2u);
  CHECK_EQ(f.frame(0), std::string("a\n"));
  CHECK_EQ(f.frame(1), std::string("b\n"));
  CHECK_EQ(f.batch.frames[0].payload_size, 1u);
}

TEST(ws_session_ping_pong_and_client_close) {
  Fixture f;
  WsSession s(&f.config, Framing::Length, 1024);
  std::size_t consumed = 0;
  s.handshake(reinterpret_cast<const std::uint8_t*>(kUpgrade), sizeof kUpgrade - 1, &consumed);
  s.control_sent(s.control_size());
  std::string ping = client_frame(ws::kPing, "pp");
  // Fed a byte at a time: nothing until the frame is complete.
  for (char ch : ping) CHECK(s.feed(reinterpret_cast<const std::uint8_t*>(&ch), 1, &f.sink));
  CHECK_EQ(control(s), std::string("\x8a\x02pp"));
  std::vector<std::uint8_t> taken = s.take_control();
  CHECK_EQ(taken.size(), 4u);
  CHECK(!s.control_pending());
  std::string msg = client_frame(ws::kBinary, "xyz");
  CHECK(s.feed(u8(msg), msg.size(), &f.sink));
  CHECK_EQ(f.frame(0), std::string("\0\0\0\x03xyz", 7));  // Length framing's prefix.
  // The peer's close (code 4000): client-closed, answered with its code.
  std::string close = client_frame(ws::kClose, std::string("\x0f\xa0", 2) + "bye");
  CHECK(!s.feed(u8(close), close.size(), &f.sink));
  CHECK(s.reason() == Reason::ClientClosed);
  std::vector<std::uint8_t> answer = s.close_frame(s.reason());
  CHECK_EQ(std::string(answer.begin(), answer.end()), std::string("\x88\x02\x0f\xa0", 4));
  // Sticky.
  CHECK(!s.feed(u8(msg), msg.size(), &f.sink));
  // A close with no code is answered 1000.
  WsSession t(&f.config, Framing::Line, 1024);
  t.handshake(reinterpret_cast<const std::uint8_t*>(kUpgrade), sizeof kUpgrade - 1, &consumed);
  std::string bare = client_frame(ws::kClose, "");
  CHECK(!t.feed(u8(bare), bare.size(), &f.sink));
  answer = t.close_frame(t.reason());
  CHECK_EQ(std::string(answer.begin(), answer.end()), std::string("\x88\x02\x03\xe8", 4));
}

namespace {

// The close code of a session upgraded with `max_frame` whose feed of
// `bytes` failed with `why` (0 when it did not).
int error_close_code(Fixture* f, std::size_t max_frame, const std::string& bytes, Reason why) {
  std::size_t consumed = 0;
  WsSession s(&f->config, Framing::Line, max_frame);
  s.handshake(reinterpret_cast<const std::uint8_t*>(kUpgrade), sizeof kUpgrade - 1, &consumed);
  if (s.feed(u8(bytes), bytes.size(), &f->sink) || s.reason() != why) return 0;
  std::vector<std::uint8_t> c = s.close_frame(s.reason());
  return c[2] * 256 + c[3];
}

}  // namespace

TEST(ws_session_errors_and_their_close_frames) {
  Fixture f;
  CHECK_EQ(error_close_code(&f, 4, client_frame(ws::kText, "12345"), Reason::FrameTooLarge), 1009);
  CHECK_EQ(error_close_code(&f, 1024, client_frame(ws::kText, "\xff"), Reason::ProtocolError),
           1007);
  CHECK_EQ(error_close_code(&f, 1024, std::string("\x81\x01x", 3), Reason::ProtocolError), 1002);
  {
    // Another reason standing (e.g. the server stops first) has its own code.
    std::size_t consumed = 0;
    WsSession s(&f.config, Framing::Line, 1024);
    s.handshake(reinterpret_cast<const std::uint8_t*>(kUpgrade), sizeof kUpgrade - 1, &consumed);
    std::string bad = client_frame(ws::kText, "\xff");
    CHECK(!s.feed(u8(bad), bad.size(), &f.sink));
    std::vector<std::uint8_t> c = s.close_frame(Reason::ServerClosed);
    CHECK_EQ(c[2] * 256 + c[3], 1001);
    CHECK_EQ(std::string(c.begin() + 4, c.end()), std::string("server-closed"));
  }
  {
    WsSession s(&f.config, Framing::Line, 1024);
    std::vector<std::uint8_t> c = s.close_frame(Reason::ServerFull);
    CHECK_EQ(c[2] * 256 + c[3], 1013);
    CHECK_EQ(std::string(c.begin() + 4, c.end()), std::string("server-full"));
  }
}

TEST(ws_session_page_and_reject_end_the_connection) {
  Fixture f;
  std::size_t consumed = 0;
  WsSession page(&f.config, Framing::Line, 1024);
  std::string get = "GET /ws?x=1 HTTP/1.1\r\nHost: x\r\n\r\n";
  CHECK(page.handshake(u8(get), get.size(), &consumed) == ws::Handshake::Result::Page);
  CHECK(page.state() == WsSession::State::Ending);
  CHECK(control(page).find("HTTP/1.1 200") == 0);
  CHECK(control(page).find("<p>page</p>") != std::string::npos);
  // Bytes after the answer are not WebSocket frames.
  CHECK(page.feed(u8(get), get.size(), &f.sink));
  CHECK(f.batch.frames.empty());
  WsSession other(&f.config, Framing::Line, 1024);
  std::string nope = "GET /other HTTP/1.1\r\nHost: x\r\n\r\n";
  CHECK(other.handshake(u8(nope), nope.size(), &consumed) == ws::Handshake::Result::Reject);
  CHECK_EQ(other.status(), 404);
}
