// test_connection_tls.cc — the TLS stage of a connection (core/connection.h,
// docs/contract.md S17): its handshake first, then the stage it would have
// started at (admission, the door, the WebSocket head), the plaintext that
// came with the handshake's end, the wire (control bytes, frames gathered
// in one pass and the close frame sealed onto it), the advance a seal waits
// for, the refusal's reasons (a failed handshake, the deadline, a peer gone)
// and the threads writer's seal_into.
#include <string>
#include <vector>

#include "../core/connection.h"
#include "../core/frame_batch.h"
#include "tls_test_util.h"
#include "unit.h"
#include "connection_test_util.h"

using namespace echocast;
using namespace tls_test;
using namespace connection_test;

namespace {

// A client session of the test CA's, and the connection it talks to.
struct Peer {
  TlsSession client{context(TlsContext::Role::kClient, client_material())};
  Sink client_in;
  std::string plain;  // What came out of the connection's session, in order.
  bool opened = false;
  bool failed = false;
  Peer() { client.start(); }

  // The connection's wire to the client (all of it, as a socket would).
  void deliver(Connection& c) {
    while (c.wire_pending()) {
      std::string b(reinterpret_cast<const char*>(c.wire_data()), c.wire_size());
      c.wire_sent(b.size());
      client.feed(b.data(), b.size(), client_in);
    }
  }
  // Moves bytes both ways until neither side has more.
  void pump(Connection& c) {
    for (int i = 0; i < 32; ++i) {
      std::string a;
      client.take_output(&a);
      if (!a.empty()) send(c, a);
      bool answered = c.wire_pending();
      deliver(c);
      if (a.empty() && !answered) return;
    }
  }
  void send(Connection& c, const std::string& bytes) {
    std::vector<std::uint8_t> out;
    Connection::TlsStep s =
        c.receive_tls(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), &out);
    if (s == Connection::TlsStep::Opened) opened = true;
    if (s == Connection::TlsStep::Failed) failed = true;
    plain.append(out.begin(), out.end());
  }
  // The client's plaintext, sealed and sent.
  void say(Connection& c, const std::string& text) {
    ec_iovec v = {text.data(), text.size()};
    std::string wire;
    client.encrypt(&v, 1, &wire);
    send(c, wire);
  }
};

ws::HandshakeConfig ws_config() {
  ws::HandshakeConfig c;
  c.path = "/ws";
  c.secure = true;
  return c;
}

// `c` as a TCP connection (options `o`) with TLS: in its handshake.
bool start_tls_tcp(Connection* c, const EngineOptions* o) {
  c->start_tcp(o);
  return c->start_tls(context(TlsContext::Role::kServer, server_material()));
}

// `c` as a WebSocket connection (`config`) with TLS: in its handshake.
bool start_tls_ws(Connection* c, const ws::HandshakeConfig* config) {
  return c->start_websocket(config) &&
         c->start_tls(context(TlsContext::Role::kServer, server_material()));
}

}  // namespace

TEST(connection_tls_tcp_handshake_then_admission_and_plaintext_to_the_framer) {
  if (!usable()) return;
  EngineOptions o;
  Connection c(Framing::Line, 64);
  CHECK(start_tls_tcp(&c, &o));
  CHECK(c.tls() && c.tls_pending());
  CHECK(c.state() == Connection::State::AwaitingTls);
  CHECK(c.in_handshake() && !c.admitted());
  Peer p;
  p.pump(c);
  CHECK(p.client.open());
  CHECK(p.opened && !p.failed);
  // No door: the stage after the handshake is admission (the engine admits).
  CHECK(c.state() == Connection::State::Admitted);
  CHECK(!c.tls_pending());
  p.say(c, "one\ntwo\n");
  CHECK_EQ(p.plain, std::string("one\ntwo\n"));
  FrameBatch batch;
  FrameBatchSink sink(&batch);
  CHECK(c.feed(u8(p.plain.data()), p.plain.size(), &sink));
  CHECK_EQ(batch.frames.size(), 2u);
}

TEST(connection_tls_with_a_token_goes_to_the_door_after_its_handshake) {
  if (!usable()) return;
  EngineOptions o;
  o.auth_token = "secret";
  Connection c(Framing::Line, 64);
  CHECK(start_tls_tcp(&c, &o));
  Peer p;
  p.pump(c);
  CHECK(c.state() == Connection::State::AwaitingToken);
  p.say(c, "secret\nafter\n");
  Refusal cause = Refusal::Address;
  CHECK(c.first_frame(u8(p.plain.data()), p.plain.size(), &cause) == Connection::Door::Admit);
  std::vector<std::uint8_t> held = c.take_held();
  CHECK_EQ(std::string(held.begin(), held.end()), std::string("after\n"));
}

TEST(connection_tls_frames_are_sealed_in_one_pass_and_advance_once_sent) {
  if (!usable()) return;
  EngineOptions o;
  Connection c(Framing::Line, 64);
  CHECK(start_tls_tcp(&c, &o));
  Peer p;
  p.pump(c);
  p.client_in.data.clear();
  // 1,000 frames of 64 bytes: a few records, not 1,000.
  std::vector<std::string> frames;
  for (int i = 0; i < 1000; ++i)
    frames.push_back(std::string(63, static_cast<char>('a' + i % 26)) + "\n");
  std::vector<ec_iovec> v;
  std::string expected;
  for (const auto& f : frames) {
    v.push_back({f.data(), f.size()});
    expected += f;
  }
  std::size_t bytes = 0;
  std::uint64_t end = 0;
  CHECK(!c.sealed_done(&bytes, &end));
  CHECK(c.seal(v.data(), v.size(), expected.size(), 1000));
  CHECK(c.wire_pending());
  std::string wire(reinterpret_cast<const char*>(c.wire_data()), c.wire_size());
  CHECK_EQ(count_records(wire, 23), 4);
  // A partial send: the advance still waits.
  c.wire_sent(wire.size() / 2);
  CHECK(!c.sealed_done(&bytes, &end));
  c.wire_sent(wire.size() - wire.size() / 2);
  CHECK(!c.wire_pending());
  CHECK(c.sealed_done(&bytes, &end));
  CHECK_EQ(bytes, expected.size());
  CHECK_EQ(end, 1000u);
  CHECK(!c.sealed_done(&bytes, &end));  // Once.
  p.client.feed(wire.data(), wire.size(), p.client_in);
  CHECK(p.client_in.data == expected);
}

TEST(connection_tls_websocket_head_101_and_close_frame_over_tls) {
  if (!usable()) return;
  ws::HandshakeConfig config = ws_config();
  Connection c(Framing::Line, 1024);
  CHECK(start_tls_ws(&c, &config));
  CHECK(c.state() == Connection::State::AwaitingTls);
  Peer p;
  p.pump(c);
  CHECK(c.state() == Connection::State::AwaitingUpgrade);
  p.client_in.data.clear();
  p.say(c, kUpgrade);
  CHECK_EQ(p.plain, std::string(kUpgrade));
  std::size_t consumed = 0;
  CHECK(c.handshake(u8(p.plain.data()), p.plain.size(), &consumed) ==
        ws::Handshake::Result::Upgrade);
  // The 101 is sealed from the control bytes onto the wire.
  CHECK(c.wire_pending());
  CHECK(!c.control_pending());
  p.deliver(c);
  CHECK(p.client_in.data.compare(0, 12, "HTTP/1.1 101") == 0);
  Roster roster(10);
  std::uint64_t id = 0;
  CHECK(c.admit(&roster, 0, &id));
  p.client_in.data.clear();
  FanoutMember m;
  CHECK(c.close_frame_due(m));
  CHECK(c.seal_close_frame(Reason::ServerClosed));
  p.deliver(c);
  // Close 1001 (going away) with its reason, unmasked, from the server.
  CHECK(p.client_in.data.size() >= 4u);
  CHECK_EQ(static_cast<unsigned char>(p.client_in.data[0]), 0x88u);
  CHECK_EQ(static_cast<unsigned char>(p.client_in.data[2]), 0x03u);
  CHECK_EQ(static_cast<unsigned char>(p.client_in.data[3]), 0xe9u);
}

TEST(connection_tls_a_failed_or_late_handshake_is_refused_as_tls_with_the_reason) {
  if (!usable()) return;
  EngineOptions o;
  // Plain text on the TLS port.
  Connection a(Framing::Line, 64);
  CHECK(start_tls_tcp(&a, &o));
  std::vector<std::uint8_t> plain;
  CHECK(a.receive_tls(u8("hello\n"), 6, &plain) == Connection::TlsStep::Failed);
  CHECK(plain.empty());
  CHECK(a.tls_failure().find("ERR_SSL_WRONG_VERSION_NUMBER") == 0);
  // A peer gone mid-handshake.
  Connection b(Framing::Line, 64);
  CHECK(start_tls_tcp(&b, &o));
  CHECK(b.tls_failure().find("ECONNRESET") == 0);
  // The deadline.
  Refusal cause = Refusal::Address;
  CHECK(b.expire(&cause));
  CHECK(cause == Refusal::Tls);
  CHECK(b.tls_failure().find("ERR_TLS_HANDSHAKE_TIMEOUT") == 0);
  // A WebSocket connection's deadline before its TLS handshake is done: tls too.
  ws::HandshakeConfig config = ws_config();
  Connection w(Framing::Line, 64);
  CHECK(start_tls_ws(&w, &config));
  CHECK(w.expire(&cause));
  CHECK(cause == Refusal::Tls);
}

TEST(connection_tls_seal_into_takes_the_wire_and_leaves_the_control_bytes) {
  if (!usable()) return;
  ws::HandshakeConfig config = ws_config();
  Connection c(Framing::Line, 1024);
  CHECK(start_tls_ws(&c, &config));
  Peer p;
  p.pump(c);
  p.say(c, kUpgrade);
  std::size_t consumed = 0;
  CHECK(c.handshake(u8(p.plain.data()), p.plain.size(), &consumed) ==
        ws::Handshake::Result::Upgrade);
  // The threads engine's writer: the 101 is the reader's (it reaches the
  // writer among its pieces), so seal_into leaves it queued.
  std::string out;
  std::string text = "x";
  ec_iovec piece = {text.data(), text.size()};
  CHECK(c.seal_into(&piece, 1, &out));
  CHECK(c.control_pending());
  CHECK(!out.empty());
  std::vector<std::uint8_t> control = c.take_control();
  CHECK(std::string(control.begin(), control.end()).compare(0, 12, "HTTP/1.1 101") == 0);
  p.client_in.data.clear();
  p.client.feed(out.data(), out.size(), p.client_in);
  CHECK_EQ(p.client_in.data, std::string("x"));
}

TEST(connection_tls_origin_of_a_secure_listener_is_https) {
  CHECK(origin_permitted(true, "https://x", "x", {}, true));
  CHECK(!origin_permitted(true, "http://x", "x", {}, true));
  CHECK(origin_permitted(true, "http://x", "x", {}, false));
  CHECK(!origin_permitted(true, "https://x", "x", {}, false));
}

TEST(connection_tls_close_notify_goes_once_after_what_the_wire_holds) {
  if (!usable()) return;
  EngineOptions o;
  Connection c(Framing::Line, 64);
  c.seal_close_notify();  // No TLS: nothing.
  CHECK(!c.wire_pending());
  CHECK(start_tls_tcp(&c, &o));
  c.seal_close_notify();  // Not open yet: nothing.
  CHECK(!c.wire_pending());
  Peer p;
  p.pump(c);
  std::string text = "last\n";
  ec_iovec piece = {text.data(), text.size()};
  CHECK(c.seal(&piece, 1, text.size(), 1));
  c.seal_close_notify();
  c.seal_close_notify();  // Once.
  std::string wire(reinterpret_cast<const char*>(c.wire_data()), c.wire_size());
  // TLS 1.3 hides the type: two records, the data then the alert, no more.
  CHECK_EQ(count_records(wire, 23), 2);
  p.client_in.data.clear();
  p.client.feed(wire.data(), wire.size(), p.client_in);
  CHECK_EQ(p.client_in.data, std::string("last\n"));
}
