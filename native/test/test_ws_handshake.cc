// test_ws_handshake.cc — core/ws/handshake: Sec-WebSocket-Accept (the RFC
// 6455 example), the exact 101, bytes after the head, a head split across
// feeds, header forms, every refusal (400, 404, 405, 426, 431) and the page
// for GET and HEAD; who may upgrade (docs/contract.md S15): a foreign Origin
// 403, the token 401, the request kept for the authorize hook. See
// docs/architecture.md.
#include <algorithm>
#include <cstring>
#include <string>

#include "../core/ws/decoder.h"
#include "../core/ws/handshake.h"
#include "unit.h"
#include "ws_test_util.h"

namespace ws = echocast::ws;
using namespace ws_test;
using ws::Handshake;
using ws::Role;

namespace {

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
  c.page_headers =
      "X-Content-Type-Options: nosniff\r\nContent-Security-Policy: default-src 'none'\r\n";
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
    "Origin: http://server.example.com\r\n"
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

}  // namespace

TEST(ws_accept_key_rfc6455_example) {
  CHECK_EQ(ws::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), std::string("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
}

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
  CHECK_EQ(d.feed(reinterpret_cast<const std::uint8_t*>(in.data()) + used, in.size() - used, &e),
           0);
  CHECK_EQ(e.str(), std::string("THi|"));
  // Later feeds: the same result, nothing taken.
  CHECK(h.feed(reinterpret_cast<const std::uint8_t*>("GET"), 3, &used) ==
        Handshake::Result::Upgrade);
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
  CHECK(h.feed(reinterpret_cast<const std::uint8_t*>(kUpgrade), 20, &used) ==
        Handshake::Result::NeedMore);
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
  CHECK_EQ(r.response, std::string(k101));  // No extension, no subprotocol.
  // Connection split over two header lines.
  r = handshake(upgrade_with("Connection:", "Connection: keep-alive\r\nConnection: Upgrade\r\n"));
  CHECK(r.result == Handshake::Result::Upgrade);
}

TEST(ws_handshake_rejections_400) {
  CHECK_EQ(handshake(upgrade_with("Sec-WebSocket-Key:", "")).status, 400);
  CHECK_EQ(handshake(upgrade_with("Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n"))
               .status,
           400);
  CHECK_EQ(handshake(
               upgrade_with("Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n"))
               .status,
           400);
  CHECK_EQ(handshake(upgrade_with("Sec-WebSocket-Key:",
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n"))
               .status,
           400);
  CHECK_EQ(handshake(upgrade_with("Sec-WebSocket-Key:",
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"))
               .status,
           400);
  CHECK_EQ(handshake(upgrade_with("Connection:", "")).status, 400);
  CHECK_EQ(handshake(upgrade_with("Connection:", "Connection: keep-alive\r\n")).status, 400);
  CHECK_EQ(handshake(upgrade_with("Connection:", "Connection: upgrader\r\n")).status, 400);
  CHECK_EQ(handshake(upgrade_with("Upgrade:", "")).status, 400);  // Key and version, no Upgrade.
  std::string s = kUpgrade;
  CHECK_EQ(handshake("POST" + s.substr(3)).status, 405);  // Not GET or HEAD: 405 always.
  CHECK_EQ(handshake("HEAD" + s.substr(3)).status, 400);
  CHECK_EQ(handshake(upgrade_with("GET /ws", "GET /ws HTTP/1.0\r\n")).status, 400);
  // Not HTTP, or not strictly.
  CHECK_EQ(handshake("GET /ws HTTP/1.1\nHost: a\n\n").status, 400);           // Bare LF
  CHECK_EQ(handshake("GET /ws HTTP/1.1\r\nHost: a\rb\r\n\r\n").status, 400);  // Bare CR
  CHECK_EQ(handshake("GET  /ws HTTP/1.1\r\n\r\n").status, 400);
  CHECK_EQ(handshake("GET /ws\r\n\r\n").status, 400);
  CHECK_EQ(handshake("GET /ws HTTP/2.0\r\n\r\n").status, 400);
  CHECK_EQ(handshake("GET /ws HTTP/1.1 x\r\n\r\n").status, 400);
  CHECK_EQ(handshake("\r\n").status, 400);
  CHECK_EQ(handshake("GET /ws HTTP/1.1\r\nHost : a\r\n\r\n").status, 400);  // Space before ':'
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
  CHECK(r.response.size() >= 12 &&
        r.response.compare(r.response.size() - 12, 12, "Bad Request\n") == 0);
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
  CHECK_EQ(handshake(std::string(20000, 'G')).status, 431);  // No line end at all.
  // A head of exactly kMaxRequestHead bytes is accepted; one more is not.
  std::string head = "GET /ws HTTP/1.1\r\nX-Filler: ";
  std::string tail = "\r\n\r\n";
  std::string exact =
      head + std::string(ws::kMaxRequestHead - head.size() - tail.size(), 'f') + tail;
  CHECK_EQ(exact.size(), ws::kMaxRequestHead);
  r = handshake(exact, 1);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.consumed, ws::kMaxRequestHead);
  std::string over =
      head + std::string(ws::kMaxRequestHead - head.size() - tail.size() + 1, 'f') + tail;
  CHECK_EQ(handshake(over).status, 431);
}

TEST(ws_handshake_page_get_and_head) {
  const std::string page = "<!doctype html><p>echocast</p>";
  std::string want_head =
      "HTTP/1.1 200 OK\r\n"
      "X-Content-Type-Options: nosniff\r\n"
      "Content-Security-Policy: default-src 'none'\r\n"
      "Content-Type: text/html; charset=utf-8\r\n"
      "Content-Length: " +
      std::to_string(page.size()) +
      "\r\n"
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
  CHECK_EQ(r.response, want_head);  // Content-Length of the page, no body.
  // An Upgrade to something else is not a WebSocket request: the page.
  r = handshake("GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
  CHECK(r.result == Handshake::Result::Page);
  // Bytes after the head are not taken.
  req = "GET /ws HTTP/1.1\r\n\r\nGET /ws HTTP/1.1\r\n\r\n";
  r = handshake(req);
  CHECK_EQ(r.consumed, req.size() / 2);
}

namespace {

// Decides `req` with `config`; the handshake is returned for its accessors.
Handshake::Result decide(const ws::HandshakeConfig& config, const std::string& req, Handshake* h) {
  std::size_t used = 0;
  (void)config;
  return h->feed(reinterpret_cast<const std::uint8_t*>(req.data()), req.size(), &used);
}

}  // namespace

TEST(ws_handshake_foreign_origin_403) {
  // docs/contract.md S15: a page from another origin may not upgrade.
  ws::HandshakeConfig config = test_config();
  Handshake h(&config);
  CHECK(decide(config, upgrade_with("Origin:", "Origin: http://example.com\r\n"), &h) ==
        Handshake::Result::Reject);
  CHECK_EQ(h.status(), 403);
  CHECK(h.refused() && h.refusal() == echocast::Refusal::Origin);
  CHECK(h.response().compare(0, 24, "HTTP/1.1 403 Forbidden\r\n") == 0);
  // No Origin (a program), and the same origin in another case: 101.
  Handshake none(&config);
  CHECK(decide(config, upgrade_with("Origin:", ""), &none) == Handshake::Result::Upgrade);
  CHECK(!none.refused());
  Handshake same(&config);
  CHECK(decide(config, upgrade_with("Origin:", "Origin: HTTP://Server.Example.com:80\r\n"),
               &same) == Handshake::Result::Upgrade);
  // Allowed by the list, or by "*".
  config.origins = {"http://example.com"};
  Handshake listed(&config);
  CHECK(decide(config, upgrade_with("Origin:", "Origin: http://example.com\r\n"), &listed) ==
        Handshake::Result::Upgrade);
  Handshake other(&config);
  CHECK(decide(config, upgrade_with("Origin:", "Origin: https://example.com\r\n"), &other) ==
        Handshake::Result::Reject);
  config.origins = {"*"};
  Handshake star(&config);
  CHECK(decide(config, upgrade_with("Origin:", "Origin: http://evil.example\r\n"), &star) ==
        Handshake::Result::Upgrade);
  // A malformed request is still 400 first, whatever its origin.
  Handshake bad(&config);
  config.origins.clear();
  CHECK(decide(config, upgrade_with("Sec-WebSocket-Key:", "Sec-WebSocket-Key: short\r\n") + "",
               &bad) == Handshake::Result::Reject);
  CHECK_EQ(bad.status(), 400);
}

TEST(ws_handshake_token_401) {
  ws::HandshakeConfig config = test_config();
  config.token = "t0k%en";
  // 101, or 401 refused for the token (-1 for anything else).
  auto status = [&config](const std::string& req) {
    Handshake h(&config);
    Handshake::Result r = decide(config, req, &h);
    if (r == Handshake::Result::Upgrade) return 101;
    bool token = h.status() == 401 && h.refused() && h.refusal() == echocast::Refusal::Token;
    return token ? 401 : -1;
  };
  std::string req = kUpgrade;
  CHECK_EQ(status(req), 401);
  auto with_target = [&req](const std::string& target) {
    std::string r = req;
    return r.replace(4, 3, target);
  };
  CHECK_EQ(status(with_target("/ws?token=t0k%25en")), 101);  // Percent-decoded.
  CHECK_EQ(status(with_target("/ws?a=1&token=t0k%25en&b")), 101);
  CHECK_EQ(status(with_target("/ws?token=t0k%en")), 401);                 // Not percent-encoding.
  CHECK_EQ(status(with_target("/ws?token=t0k%en&token=t0k%25en")), 101);  // Any of them.
  CHECK_EQ(status(with_target("/ws?token=t0k%25e")), 401);
  CHECK_EQ(status(with_target("/ws?xtoken=t0k%25en")), 401);
  CHECK_EQ(status(upgrade_with("Origin:", "Authorization: Bearer t0k%en\r\n")), 101);
  CHECK_EQ(status(upgrade_with("Origin:", "Authorization: bearer  t0k%en \r\n")), 101);
  CHECK_EQ(status(upgrade_with("Origin:", "Authorization: Bearer t0k%en x\r\n")), 401);
  CHECK_EQ(status(upgrade_with("Origin:", "Authorization: Basic t0k%en\r\n")), 401);
  // The origin is checked first: a foreign page with the token is 403.
  Handshake h(&config);
  CHECK(decide(config, upgrade_with("Origin:", "Origin: http://evil.example\r\n"), &h) ==
        Handshake::Result::Reject);
  CHECK_EQ(h.status(), 403);
}

TEST(ws_handshake_keeps_the_request_for_the_hook) {
  ws::HandshakeConfig config = test_config();
  config.keep_request = true;
  Handshake h(&config);
  std::string req = kUpgrade;
  req.replace(4, 3, "/ws?room=1&x");
  CHECK(decide(config, req, &h) == Handshake::Result::Upgrade);
  CHECK_EQ(h.path(), std::string("/ws"));
  CHECK_EQ(h.query(), std::string("room=1&x"));
  const std::vector<std::string>& f = h.headers();
  CHECK_EQ(f.size(), 12u);  // Six fields, as received.
  CHECK_EQ(f[0], std::string("Host"));
  CHECK_EQ(f[1], std::string("server.example.com"));
  CHECK_EQ(f[8], std::string("Origin"));
  // Without the hook nothing is kept.
  ws::HandshakeConfig plain = test_config();
  Handshake p(&plain);
  CHECK(decide(plain, req, &p) == Handshake::Result::Upgrade);
  CHECK(p.headers().empty() && p.path().empty());
}
