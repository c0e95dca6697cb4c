// test_tls_session.cc — core/tls: a client session and a server session
// pumped through memory: the handshake, data both ways, many small frames in
// few records, client certificates accepted and refused, plain text and
// garbage refused with their reasons, a handshake cut short left pending.
#include <string>
#include <vector>

#include "tls_test_util.h"
#include "unit.h"

using namespace tls_test;

namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

struct Pair {
  TlsSession client, server;
  Sink client_in, server_in;
  Pair(const TlsMaterial& client_m, const TlsMaterial& server_m)
      : client(context(TlsContext::Role::kClient, client_m)),
        server(context(TlsContext::Role::kServer, server_m)) {
    client.start();
  }
  void run() { pump(client, client_in, server, server_in); }
};

std::string encrypt(TlsSession& s, const std::vector<std::string>& frames) {
  std::vector<ec_iovec> v;
  for (const auto& f : frames) v.push_back({f.data(), f.size()});
  std::string out;
  if (!s.encrypt(v.data(), v.size(), &out)) return "(failed)";
  return out;
}

}  // namespace

TEST(tls_session_handshake_and_data_both_ways) {
  if (!usable()) return;
  Pair p(client_material(), server_material());
  CHECK(p.client.state() == TlsSession::State::kHandshaking);
  p.run();
  CHECK(p.client.open());
  CHECK(p.server.open());
  std::string wire = encrypt(p.client, {"hello\n", "world\n"});
  p.server.feed(wire.data(), wire.size(), p.server_in);
  CHECK_EQ(p.server_in.data, std::string("hello\nworld\n"));
  wire = encrypt(p.server, {"back\n"});
  CHECK(wire.find("back") == std::string::npos);  // encrypted
  p.client.feed(wire.data(), wire.size(), p.client_in);
  CHECK_EQ(p.client_in.data, std::string("back\n"));
  // Fed a byte at a time, the same records still come out whole and in order.
  wire = encrypt(p.client, {"one byte at a time\n"});
  for (char c : wire) p.server.feed(&c, 1, p.server_in);
  CHECK_EQ(p.server_in.data, std::string("hello\nworld\none byte at a time\n"));
  CHECK_EQ(p.server.buffered_input(), std::size_t{0});
}

TEST(tls_session_many_small_frames_make_few_records) {
  if (!usable()) return;
  Pair p(client_material(), server_material());
  p.run();
  CHECK(p.server.open());
  std::vector<std::string> frames;
  std::string expect;
  for (int i = 0; i < 1000; ++i) {
    std::string f(63, static_cast<char>('a' + i % 26));
    f += '\n';
    frames.push_back(f);
    expect += f;
  }
  std::string wire = encrypt(p.server, frames);
  // 64,000 bytes: ceil(64000 / 16384) = 4 records, not 1,000.
  CHECK_EQ(count_records(wire, 23), 4);
  p.client.feed(wire.data(), wire.size(), p.client_in);
  CHECK_EQ(p.client_in.data, expect);
  // A large slice after small ones: still whole records, the same bytes.
  std::string big(100000, 'x');
  wire = encrypt(p.server, {"head\n", big, "tail\n"});
  CHECK_EQ(count_records(wire, 23), 7);  // 100,010 bytes: ceil(/16384) = 7
  p.client_in.data.clear();
  p.client.feed(wire.data(), wire.size(), p.client_in);
  CHECK_EQ(p.client_in.data, "head\n" + big + "tail\n");
  // Nothing to encrypt: no record.
  CHECK_EQ(encrypt(p.server, {}), std::string());
}

TEST(tls_session_client_certificates) {
  if (!usable()) return;
  TlsMaterial server = server_material();
  server.ca = pki().ca;
  server.request_cert = true;
  // Signed by the server's CA: accepted.
  TlsMaterial good = client_material();
  good.cert = pki().client_cert;
  good.key = pki().client_key;
  {
    Pair p(good, server);
    p.run();
    CHECK(p.server.open());
    CHECK(p.client.open());
    std::string wire = encrypt(p.client, {"signed\n"});
    p.server.feed(wire.data(), wire.size(), p.server_in);
    CHECK_EQ(p.server_in.data, std::string("signed\n"));
  }
  // From another CA: refused during the handshake, with the reason.
  TlsMaterial stranger = client_material();
  stranger.cert = pki().other_client_cert;
  stranger.key = pki().other_client_key;
  {
    Pair p(stranger, server);
    p.run();
    CHECK(p.server.state() == TlsSession::State::kFailed);
    CHECK(contains(p.server.failure(), "certificate refused: "));
    CHECK(p.server_in.data.empty());
  }
  // None at all: refused.
  {
    Pair p(client_material(), server);
    p.run();
    CHECK(p.server.state() == TlsSession::State::kFailed);
    CHECK(contains(p.server.failure(), "no client certificate"));
  }
  // requestCert without rejectUnauthorized: asked for, never refused.
  server.reject_unauthorized = false;
  {
    Pair p(stranger, server);
    p.run();
    CHECK(p.server.open());
  }
}

TEST(tls_session_server_certificate_from_an_unknown_ca_fails_the_client) {
  if (!usable()) return;
  TlsMaterial client = client_material();
  client.ca = pki().other_ca;
  Pair p(client, server_material());
  p.run();
  CHECK(p.client.state() == TlsSession::State::kFailed);
  CHECK(contains(p.client.failure(), "certificate refused: "));
  CHECK(!p.server.open());
}

TEST(tls_session_plaintext_and_garbage_are_refused) {
  if (!usable()) return;
  auto ctx = context(TlsContext::Role::kServer, server_material());
  Sink sink;
  {
    TlsSession s(ctx);
    const std::string line = "hello\n";
    CHECK(s.feed(line.data(), line.size(), sink) == TlsSession::State::kFailed);
    CHECK_EQ(s.failure(), std::string("plain text on a TLS port"));
    CHECK(sink.data.empty());
  }
  {
    TlsSession s(ctx);
    const std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(s.feed(http.data(), http.size(), sink) == TlsSession::State::kFailed);
    CHECK_EQ(s.failure(), std::string("plain text on a TLS port"));
  }
  {
    TlsSession s(ctx);
    const char junk[] = {'\x01', '\x02', '\x03'};
    CHECK(s.feed(junk, sizeof junk, sink) == TlsSession::State::kFailed);
    CHECK_EQ(s.failure(), std::string("not a TLS record (first byte 0x01)"));
  }
  {
    // A handshake record's type, then garbage: OpenSSL's reason.
    TlsSession s(ctx);
    // (a 4-byte handshake message of type 99, which does not exist).
    std::string junk("\x16\x03\x01\x00\x04\x63\x00\x00\x00", 9);
    CHECK(s.feed(junk.data(), junk.size(), sink) == TlsSession::State::kFailed);
    CHECK(contains(s.failure(), "handshake failed: "));
    std::string alert;
    s.take_output(&alert);  // an alert for the peer, at most
    CHECK(alert.size() < 64);
  }
  {
    // Garbage records after an open handshake.
    Pair p(client_material(), server_material());
    p.run();
    CHECK(p.server.open());
    std::string junk = "\x17\x03\x03\x00\x20";
    junk += std::string(32, '\x55');
    CHECK(p.server.feed(junk.data(), junk.size(), p.server_in) == TlsSession::State::kFailed);
    CHECK(contains(p.server.failure(), "bad record: "));
    CHECK(p.server_in.data.empty());
  }
}

TEST(tls_session_a_truncated_handshake_stays_pending) {
  if (!usable()) return;
  auto server_ctx = context(TlsContext::Role::kServer, server_material());
  TlsSession client(context(TlsContext::Role::kClient, client_material()));
  client.start();
  std::string hello;
  client.take_output(&hello);
  CHECK(hello.size() > 10);
  TlsSession server(server_ctx);
  Sink sink;
  // Half the ClientHello: nothing fails, nothing is sent, the session waits
  // (the connection's deadline decides, in the later phase).
  CHECK(server.feed(hello.data(), hello.size() / 2, sink) == TlsSession::State::kHandshaking);
  std::string out;
  CHECK_EQ(server.take_output(&out), std::size_t{0});
  CHECK(server.buffered_input() <= hello.size() / 2);
  // The rest arrives: the handshake goes on.
  CHECK(server.feed(hello.data() + hello.size() / 2, hello.size() - hello.size() / 2, sink) ==
        TlsSession::State::kHandshaking);
  CHECK(server.take_output(&out) > 0);
  // Encrypting before the handshake is done is refused.
  ec_iovec v = {"x", 1};
  std::string wire;
  CHECK(!server.encrypt(&v, 1, &wire));
}
