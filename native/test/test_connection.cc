// test_connection.cc — one client connection's rules (core/connection.h):
// its states, the input side (framer or WebSocket session, and the close
// reason), admission through the roster with the 1013 refusal, the reason a
// failure closes it with, the close frame only at a frame boundary and only
// once, and fanout_options().
#include <string>
#include <vector>

#include "../core/connection.h"
#include "../core/frame_batch.h"
#include "unit.h"
#include "connection_test_util.h"

using namespace echocast;
using namespace connection_test;

namespace {

std::string take(Connection* c) {
  std::vector<std::uint8_t> b = c->take_control();
  return std::string(b.begin(), b.end());
}

// A WebSocket listener's settings: upgrades on /ws, the page there.
ws::HandshakeConfig page_config() {
  ws::HandshakeConfig c;
  c.path = "/ws";
  c.page = "<p>page</p>";
  return c;
}

// The engine's side of a connection: its settings, and where frames go.
struct Fixture {
  ws::HandshakeConfig config = page_config();
  FrameBatch batch;
  FrameBatchSink sink{&batch};
};

// Upgrades `c`: true when the 101 was queued.
bool upgrade(Connection* c) {
  std::size_t consumed = 0;
  return c->handshake(u8(kUpgrade), sizeof kUpgrade - 1, &consumed) ==
             ws::Handshake::Result::Upgrade &&
         consumed == sizeof kUpgrade - 1;
}

}  // namespace

TEST(connection_tcp_starts_admitted_and_feeds_its_framer) {
  Fixture f;
  Connection c(Framing::Line, 8);
  CHECK(c.state() == Connection::State::Admitted);
  CHECK(c.admitted() && c.reading() && !c.websocket() && !c.in_handshake());
  CHECK(c.feed(u8("ab\ncd"), 5, &f.sink));
  CHECK_EQ(f.batch.frames.size(), 1u);
  CHECK(!c.control_pending());
  CHECK(!c.feed(u8("123456789\n"), 10, &f.sink));
  CHECK(c.close_reason() == Reason::FrameTooLarge);
  CHECK(c.close_frame(Reason::FrameTooLarge).empty());
}

TEST(connection_failure_reason_follows_the_state) {
  Connection a(Framing::Line, 64);
  CHECK(a.failure_reason() == Reason::ClientError);
  a.end();
  CHECK(a.state() == Connection::State::Ending);
  CHECK(a.reading());
  CHECK(a.failure_reason() == Reason::ServerClosed);
  Connection b(Framing::Line, 64);
  CHECK(b.peer_finished(false));
  CHECK(b.state() == Connection::State::Finishing);
  CHECK(!b.reading() && b.admitted());
  CHECK(b.failure_reason() == Reason::ClientClosed);
  b.closed();
  CHECK(!b.admitted() && !b.reading());
}

TEST(connection_half_open_only_for_tcp) {
  Fixture f;
  Connection tcp(Framing::Line, 64);
  CHECK(!tcp.peer_finished(true));  // allowHalfOpen: keeps receiving.
  Connection ws(Framing::Line, 64);
  CHECK(ws.start_websocket(&f.config));
  CHECK(upgrade(&ws));
  Roster roster(10);
  std::uint64_t id = 0;
  CHECK(ws.admit(&roster, 0, &id));
  CHECK(ws.peer_finished(true));  // No half-close in WebSocket.
}

TEST(connection_websocket_upgrade_then_admission) {
  Fixture f;
  Connection c(Framing::Line, 64);
  CHECK(c.start_websocket(&f.config));
  CHECK(c.state() == Connection::State::AwaitingUpgrade);
  CHECK(c.in_handshake() && !c.admitted() && c.websocket());
  c.set_peer("10.0.0.1", 4242);
  std::size_t consumed = 0;
  CHECK(c.handshake(u8(kUpgrade), 10, &consumed) == ws::Handshake::Result::NeedMore);
  CHECK(c.state() == Connection::State::AwaitingUpgrade);
  CHECK(c.handshake(u8(kUpgrade) + 10, sizeof kUpgrade - 11, &consumed) ==
        ws::Handshake::Result::Upgrade);
  CHECK(c.control_pending());
  CHECK(take(&c).compare(0, 12, "HTTP/1.1 101") == 0);
  Roster roster(2);
  std::uint64_t id = 0;
  CHECK(c.admit(&roster, 1, &id));
  CHECK_EQ(id, 1u);
  CHECK(c.state() == Connection::State::Admitted);
  CHECK_EQ(c.peer_address(), std::string("10.0.0.1"));
  CHECK_EQ(c.peer_port(), 4242);
}

TEST(connection_websocket_refused_with_1013) {
  Fixture f;
  Connection c(Framing::Line, 64);
  CHECK(c.start_websocket(&f.config));
  CHECK(upgrade(&c));
  Roster roster(1);
  std::uint64_t id = 0;
  CHECK(!c.admit(&roster, 1, &id));  // Full.
  CHECK_EQ(id, 1u);
  CHECK(c.state() == Connection::State::Answering);
  CHECK(!c.admitted() && c.in_handshake());
  // The 101, then close 1013 with the reason's name.
  std::string answer = take(&c);
  CHECK(answer.compare(0, 12, "HTTP/1.1 101") == 0);
  std::size_t end = answer.find("\r\n\r\n");
  CHECK(end != std::string::npos);
  std::string close = answer.substr(end + 4);
  CHECK_EQ(static_cast<unsigned char>(close[0]), 0x88u);
  CHECK_EQ(static_cast<unsigned char>(close[2]) * 256 + static_cast<unsigned char>(close[3]), 1013);
  CHECK_EQ(close.substr(4), std::string("server-full"));
  CHECK_EQ(roster.tallies()["server-full"], 1u);
  c.answered();
  CHECK(c.state() == Connection::State::Answered);
  CHECK(!c.reading());
}

TEST(connection_page_is_answered_not_admitted) {
  Fixture f;
  Connection c(Framing::Line, 64);
  CHECK(c.start_websocket(&f.config));
  const char get[] = "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n";
  std::size_t consumed = 0;
  CHECK(c.handshake(u8(get), sizeof get - 1, &consumed) == ws::Handshake::Result::Page);
  CHECK(c.state() == Connection::State::Answering);
  CHECK(take(&c).find("<p>page</p>") != std::string::npos);
}

TEST(connection_websocket_input_and_close_reason) {
  Fixture f;
  Connection c(Framing::Line, 64);
  CHECK(c.start_websocket(&f.config));
  CHECK(upgrade(&c));
  c.take_control();
  Roster roster(2);
  std::uint64_t id = 0;
  CHECK(c.admit(&roster, 0, &id));
  // A masked ping: answered by a pong in the control bytes.
  const std::uint8_t ping[] = {0x89, 0x80, 1, 2, 3, 4};
  CHECK(c.feed(ping, sizeof ping, &f.sink));
  CHECK(c.control_pending());
  CHECK_EQ(c.control_data()[0], 0x8a);
  c.control_sent(c.control_size());
  CHECK(!c.control_pending());
  // An unmasked frame is a protocol error: closed with 1002.
  const std::uint8_t bad[] = {0x81, 0x01, 'x'};
  CHECK(!c.feed(bad, sizeof bad, &f.sink));
  CHECK(c.close_reason() == Reason::ProtocolError);
  std::vector<std::uint8_t> frame = c.close_frame(c.close_reason());
  CHECK_EQ(frame[2] * 256 + frame[3], 1002);
}

TEST(connection_close_frame_only_at_a_boundary_and_once) {
  Fixture f;
  FanoutMember m;
  Connection tcp(Framing::Line, 64);
  CHECK(!tcp.close_frame_due(m));  // TCP has none.
  Connection a(Framing::Line, 64);
  CHECK(a.start_websocket(&f.config));
  CHECK(a.close_frame_due(m));
  CHECK(!a.close_frame_due(m));  // Once.
  Connection b(Framing::Line, 64);
  CHECK(b.start_websocket(&f.config));
  m.cursor.offset = 3;  // In the middle of a frame.
  CHECK(!b.close_frame_due(m));
  m.cursor.offset = 0;
  CHECK(!b.close_frame_due(m));  // Asked already: the socket closed without it.
  Connection c(Framing::Line, 64);
  CHECK(c.start_websocket(&f.config));
  m.sending = true;  // A batch in flight.
  CHECK(!c.close_frame_due(m));
  std::vector<std::uint8_t> full = Connection::close_frame_for(Reason::ServerClosed);
  CHECK_EQ(full[2] * 256 + full[3], 1001);
}

TEST(connection_fanout_options_from_the_engine_options) {
  EngineOptions o;
  o.replay = 7;
  o.echo_to_sender = false;
  o.max_backlog_bytes = 1234;
  o.slow_consumer_ms = 55;
  FanoutOptions f = fanout_options(o);
  CHECK_EQ(f.replay, 7u);
  CHECK(!f.echo_to_sender);
  CHECK_EQ(f.max_backlog_bytes, 1234u);
  CHECK_EQ(f.slow_consumer_ms, 55u);
  CHECK(!f.ws);
  o.ws_port = 0;
  CHECK(fanout_options(o).ws);
}

// ---- Who may connect (docs/contract.md S15) ---------------------------------

namespace {

Connection::Door first(Connection* c, const std::string& bytes, Refusal* cause) {
  return c->first_frame(u8(bytes.c_str()), bytes.size(), cause);
}

std::string held(Connection* c) {
  std::vector<std::uint8_t> b = c->take_held();
  return std::string(b.begin(), b.end());
}

}  // namespace

TEST(connection_tcp_door_token_then_admission) {
  EngineOptions o;
  o.auth_token = "s3cret";
  Roster roster(10);
  Connection c(Framing::Line, 64);
  c.start_tcp(&o);
  CHECK(c.state() == Connection::State::AwaitingToken);
  CHECK(!c.admitted() && c.in_handshake());
  Refusal cause = Refusal::Address;
  // The first line may come in pieces; what follows it is held.
  CHECK(first(&c, "s3c", &cause) == Connection::Door::NeedMore);
  CHECK(first(&c, "ret\nhello\nwor", &cause) == Connection::Door::Admit);
  CHECK_EQ(held(&c), std::string("hello\nwor"));
  std::uint64_t id = 0;
  CHECK(c.admit(&roster, 0, &id));
  CHECK(c.admitted() && id == 1);
  // Admitted, its framer goes on after the token line (never broadcast).
  Fixture f;
  CHECK(c.feed(u8("hello\nwor"), 9, &f.sink));
  CHECK_EQ(f.batch.frames.size(), 1u);
}

TEST(connection_tcp_door_refusals) {
  EngineOptions o;
  o.auth_token = "s3cret";
  struct Case {
    std::size_t max_frame;
    bool refuse_http;
    const char* first;
    Refusal cause;
  };
  const Case cases[] = {
      {64, true, "nope\n", Refusal::Token},
      // An HTTP request line is counted as http, before the token.
      {64, true, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::Http},
      // Too long a first frame is no token.
      {4, true, "s3cret\n", Refusal::Token},
      // With refuseHttp off, an HTTP line is merely a wrong token.
      {64, false, "GET / HTTP/1.1\n", Refusal::Token},
  };
  for (const Case& k : cases) {
    o.refuse_http = k.refuse_http;
    Connection c(Framing::Line, k.max_frame);
    c.start_tcp(&o);
    Refusal cause = Refusal::Address;
    CHECK(first(&c, k.first, &cause) == Connection::Door::Refuse);
    CHECK(cause == k.cause);
  }
  // The deadline: no token in time.
  o.refuse_http = true;
  Refusal cause = Refusal::Address;
  Connection slow(Framing::Line, 64);
  slow.start_tcp(&o);
  CHECK(first(&slow, "s3c", &cause) == Connection::Door::NeedMore);
  CHECK(slow.expire(&cause) && cause == Refusal::Token);
}

TEST(connection_tcp_door_hook_and_length_framing) {
  EngineOptions o;
  o.authorize = true;
  Refusal cause = Refusal::Address;
  Connection c(Framing::Length, 64);
  c.start_tcp(&o);
  // Length framing: a 3-byte first frame split inside its prefix, then
  // the next frame's first bytes, held.
  std::string frame1 = std::string("\0\0\0\3abc", 7);
  std::string rest = std::string("\0\0\0\2x", 5);
  CHECK(c.first_frame(u8(frame1.data()), 2, &cause) == Connection::Door::NeedMore);
  std::string tail = frame1.substr(2) + rest;
  CHECK(c.first_frame(u8(tail.data()), tail.size(), &cause) == Connection::Door::Authorize);
  CHECK(c.state() == Connection::State::Authorizing);
  c.set_peer("10.0.0.1", 4000);
  c.ticket = 7;
  AuthorizeRequest r = c.authorize_request();
  CHECK(!r.ws && r.ticket == 7u && r.address == "10.0.0.1" && r.port == 4000);
  CHECK_EQ(std::string(r.first_frame.begin(), r.first_frame.end()), std::string("abc"));
  CHECK_EQ(held(&c), rest);
  CHECK(c.answer(true) == Connection::Door::Admit);
  // Refused by the hook, or by its silence.
  Connection no(Framing::Raw, 64);
  no.start_tcp(&o);
  CHECK(first(&no, "me", &cause) == Connection::Door::Authorize);
  CHECK(no.answer(false) == Connection::Door::Refuse);
  Connection mute(Framing::Raw, 64);
  mute.start_tcp(&o);
  CHECK(first(&mute, "me", &cause) == Connection::Door::Authorize);
  CHECK(mute.expire(&cause) && cause == Refusal::Hook);
}

TEST(connection_refuse_http_cuts_an_admitted_tcp_client) {
  EngineOptions o;  // refuse_http is on by default, no token, no hook.
  Fixture f;
  Connection c(Framing::Line, 256);
  c.start_tcp(&o);
  CHECK(c.admitted());
  CHECK(!c.feed(u8("POST /x HTTP/1.1\r\nHost: a\r\n"), 28, &f.sink));
  CHECK(c.refused_http());
  CHECK(c.close_reason() == Reason::ProtocolError);
  CHECK_EQ(f.batch.frames.size(), 0u);  // Not the request line, nor what followed.
  // Only the first frame is looked at.
  Fixture g;
  Connection d(Framing::Line, 256);
  d.start_tcp(&o);
  CHECK(d.feed(u8("hi\nGET / HTTP/1.1\n"), 18, &g.sink));
  CHECK_EQ(g.batch.frames.size(), 2u);
  CHECK(!d.refused_http());
  // Turned off, it is relayed.
  o.refuse_http = false;
  Fixture h;
  Connection e(Framing::Line, 256);
  e.start_tcp(&o);
  CHECK(e.feed(u8("GET / HTTP/1.1\n"), 15, &h.sink));
  CHECK_EQ(h.batch.frames.size(), 1u);
}

TEST(connection_websocket_hook_holds_the_101) {
  Fixture f;
  f.config.keep_request = true;
  Connection c(Framing::Line, 64);
  CHECK(c.start_websocket(&f.config));
  CHECK(upgrade(&c));
  CHECK(c.state() == Connection::State::Authorizing);
  CHECK(!c.control_pending());  // The 101 waits for the answer.
  AuthorizeRequest r = c.authorize_request();
  CHECK(r.ws && r.path == "/ws" && r.query.empty() && r.headers.size() == 10u);
  CHECK(c.answer(true) == Connection::Door::Admit);
  CHECK_EQ(take(&c).compare(0, 12, "HTTP/1.1 101"), 0);
  // Refused: 403, answered, never admitted.
  Connection d(Framing::Line, 64);
  CHECK(d.start_websocket(&f.config));
  CHECK(upgrade(&d));
  CHECK(d.answer(false) == Connection::Door::Refuse);
  CHECK(d.state() == Connection::State::Answering);
  CHECK_EQ(take(&d).compare(0, 12, "HTTP/1.1 403"), 0);
  // No answer in time: the same 403, cause hook.
  Connection e(Framing::Line, 64);
  CHECK(e.start_websocket(&f.config));
  CHECK(upgrade(&e));
  Refusal cause = Refusal::Address;
  CHECK(e.expire(&cause) && cause == Refusal::Hook);
  CHECK_EQ(take(&e).compare(0, 12, "HTTP/1.1 403"), 0);
  // A head that never completes: handshake-limit; one answered: nothing.
  Connection g(Framing::Line, 64);
  CHECK(g.start_websocket(&f.config));
  CHECK(g.expire(&cause) && cause == Refusal::HandshakeLimit);
  CHECK(!d.expire(&cause));
}

TEST(connection_websocket_origin_refusal_is_told) {
  Fixture f;
  Connection c(Framing::Line, 64);
  CHECK(c.start_websocket(&f.config));
  std::string req = kUpgrade;
  req.insert(req.size() - 2, "Origin: http://evil.example\r\n");
  std::size_t consumed = 0;
  CHECK(c.handshake(u8(req.c_str()), req.size(), &consumed) == ws::Handshake::Result::Reject);
  Refusal cause = Refusal::Address;
  CHECK(c.handshake_refused(&cause) && cause == Refusal::Origin);
  CHECK(c.state() == Connection::State::Answering);
  CHECK_EQ(take(&c).compare(0, 12, "HTTP/1.1 403"), 0);
}
