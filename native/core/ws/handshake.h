// ws/handshake.h — the opening handshake, server role (RFC 6455 §4): a
// request head read as it arrives and answered with 101, the built-in page,
// or an error status; and Sec-WebSocket-Accept, which the client role (the
// load generator) checks too. The HTTP text itself is http.h's. No I/O, no
// clock, no OS header; a head is bounded by kMaxRequestHead. Part of the
// WebSocket protocol in core/ws/ (docs/architecture.md).
#ifndef ECHOCAST_CORE_WS_HANDSHAKE_H
#define ECHOCAST_CORE_WS_HANDSHAKE_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../access.h"

namespace echocast {
namespace ws {

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
// accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
std::string accept_key(const std::string& key);

// The largest request head accepted (request line and headers, up to and
// including the blank line); a longer one is answered 431.
constexpr std::size_t kMaxRequestHead = 8192;

struct HandshakeConfig {
  std::string path = "/";    // The path WebSocket clients upgrade on (and the page's).
  std::string page;          // The built-in page's HTML (served on GET path).
  std::string page_headers;  // Header lines (CRLF-ended) sent with the page.
  // docs/contract.md S15: foreign origins allowed (normalised, or "*"); the
  // token an upgrade must present ('' for none); whether the request's
  // path, query and headers are kept for the authorize hook.
  std::vector<std::string> origins;
  std::string token;
  bool keep_request = false;
  // docs/contract.md S17: the listener speaks TLS (its own origin is https://).
  bool secure = false;
};

// Reads a request head byte by byte as it arrives, then says what to answer.
//   GET <path> with a valid upgrade (Upgrade: websocket, Connection: upgrade,
//     Sec-WebSocket-Key of 16 bytes in base64, Sec-WebSocket-Version: 13)
//     -> Upgrade: response() is the 101 with Sec-WebSocket-Accept and no
//     extension or subprotocol; bytes after the head (leftover) are the
//     first WebSocket bytes.
//   Sec-WebSocket-Version other than 13 -> Reject 426 with
//     "Sec-WebSocket-Version: 13".
//   an upgrade request otherwise malformed (no key, bad key, HEAD,
//     not HTTP/1.1) -> Reject 400.
//   GET <path> (or HEAD) without Upgrade -> Page: 200, text/html, the page
//     (no body for HEAD); the connection is then closed.
//   any other path -> Reject 404; a method other than GET and HEAD -> Reject
//     405, upgrade headers or not.
//   a head over kMaxRequestHead, or bytes that are not HTTP -> Reject 431
//     or 400.
//   a valid upgrade from a foreign Origin (neither "http://" + Host nor in
//     config.origins) -> Reject 403, refusal() Origin; then, with a token,
//     one presented neither as ?token= (percent-decoded) nor as
//     Authorization: Bearer -> Reject 401, refusal() Token
//     (docs/contract.md S15).
// Every response but 101 carries Connection: close and Content-Length.
class Handshake {
 public:
  enum class Result { NeedMore, Upgrade, Page, Reject };

  explicit Handshake(const HandshakeConfig* config);

  // Feeds bytes. Returns NeedMore until the head is complete or wrong;
  // then the same result on every later call. *consumed says how many of
  // these bytes belong to the head (the rest, leftover, is WebSocket data
  // after an Upgrade).
  Result feed(const std::uint8_t* data, std::size_t len, std::size_t* consumed);

  // The HTTP response to send (complete, with the page's body for Page).
  const std::string& response() const { return response_; }
  // The status code answered (101, 200, 400, 401, 403, 404, 405, 426, 431).
  int status() const { return status_; }
  // Why a 401 or 403 refused the upgrade (refused() false otherwise).
  bool refused() const { return refused_; }
  Refusal refusal() const { return refusal_; }
  // With config.keep_request, once decided: the request's path (without its
  // query), its raw query ('' when none) and its header fields as received
  // ([name, value, ...]), for the authorize hook.
  const std::string& path() const { return path_; }
  const std::string& query() const { return query_; }
  const std::vector<std::string>& headers() const { return headers_; }

 private:
  const HandshakeConfig* config_;
  std::string head_;
  Result result_ = Result::NeedMore;
  std::string response_;
  int status_ = 0;
  bool refused_ = false;
  Refusal refusal_ = Refusal::Origin;
  std::string path_, query_;
  std::vector<std::string> headers_;
  void decide();
};

}  // namespace ws
}  // namespace echocast

#endif  // ECHOCAST_CORE_WS_HANDSHAKE_H
