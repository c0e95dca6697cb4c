// loadgen_ws.cc — the load generator's WebSocket clients (LoadGenOptions::
// websocket, see loadgen.h): the opening handshake of each client (a fixed
// Sec-WebSocket-Key, version 13, the 101's Sec-WebSocket-Accept checked),
// frames sent as masked text messages, and what arrives decoded by a
// client-role ws::Decoder, each message one delivery audited like a TCP
// frame; with a token, the upgrade request carries `Authorization: Bearer`
// (docs/contract.md S15). The TCP clients never come here.
#include <algorithm>
#include <cstring>
#include <string>

#include "../core/ws/frame.h"
#include "../core/ws/handshake.h"
#include "../core/ws/http.h"
#include "../platform/bench.h"
#include "loadgen.h"
#include "loadgen_internal.h"

namespace echocast {
namespace bench {

namespace {

// Any 16 bytes in base64 will do: the server only checks the form.
constexpr const char* kKey = "dGhlIHNhbXBsZSBub25jZQ==";
// The most a response head may take (the server's own limit for requests).
constexpr std::size_t kMaxResponseHead = ws::kMaxRequestHead;

// "ws://host:port/path", for messages.
std::string ws_url(const LoadGenOptions& o) {
  bool v6 = o.host.find(':') != std::string::npos;
  return "ws://" + (v6 ? "[" + o.host + "]" : o.host) + ":" + std::to_string(o.port) + o.ws_path;
}

}  // namespace

std::uint64_t ws_message_bytes(std::uint32_t size) {
  std::uint8_t header[ws::kMaxHeader];
  const std::uint8_t key[4] = {0, 0, 0, 0};
  return ws::encode_header(ws::kText, size - 1, header, key) + (size - 1);
}

void LoadGen::WsConn::Sink::on_message(const std::uint8_t* data, std::size_t len, bool) {
  // One delivery: counted as the `size` bytes the TCP frame would take, so
  // that every byte count of the generator keeps its meaning.
  client->bytes += gen->options_.size;
  gen->bytes_ += gen->options_.size;
  if (client->auditor != nullptr)
    gen->audit_line(*client->auditor, reinterpret_cast<const char*>(data), len, now_rel);
}

// Servers under test do not ping; a pong would have to go through the
// publisher's queue, whose bytes count frames. Ignored.
void LoadGen::WsConn::Sink::on_ping(const std::uint8_t*, std::size_t) {}

// The decoder's closed() ends the client (see ws_received).
void LoadGen::WsConn::Sink::on_close(std::uint16_t, const std::uint8_t*, std::size_t) {}

bool LoadGen::ws_start(Client& c, LoadGenFailure* failure) {
  c.state = Client::Upgrading;
  c.ws.reset(new WsConn(this, &c, options_.size));
  WsConn& w = *c.ws;
  // A key of its own per client (RFC 6455 wants one per frame; fixed keys
  // cost nothing and change nothing the server does).
  std::uint32_t k = 0x9e3779b9u * (static_cast<std::uint32_t>(&c - clients_.data()) + 1u);
  for (int i = 0; i < 4; ++i) w.key[i] = static_cast<std::uint8_t>(k >> (8 * i));
  bool v6 = options_.host.find(':') != std::string::npos;
  w.request = "GET " + options_.ws_path +
              " HTTP/1.1\r\nHost: " + (v6 ? "[" + options_.host + "]" : options_.host) + ":" +
              std::to_string(options_.port) +
              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + kKey +
              "\r\nSec-WebSocket-Version: 13\r\n" +
              (options_.token.empty() ? "" : "Authorization: Bearer " + options_.token + "\r\n") +
              "\r\n";
  return ws_upgrading(c, EC_POLL_OUT, 0, failure);
}

bool LoadGen::ws_upgrading(Client& c, unsigned events, std::uint64_t now, LoadGenFailure* failure) {
  WsConn& w = *c.ws;
  auto reset = [&](const std::string& why) {
    close_client(c);
    failure->code = "ECONNRESET";
    failure->message = why + " during the WebSocket upgrade (" + ws_url(options_) + ")";
    return false;
  };
  if ((events & EC_POLL_OUT) && w.request_sent < w.request.size()) {
    ec_iovec piece{&w.request[w.request_sent], w.request.size() - w.request_sent};
    std::size_t sent = 0;
    ec_error err = ec_socket_try_send(c.sock, &piece, 1, &sent);
    if (!err.ok() && err.code != EC_EAGAIN) return reset("the server closed a connection");
    w.request_sent += sent;
    set_interest(c, EC_POLL_IN | (w.request_sent < w.request.size() ? EC_POLL_OUT : 0u));
  }
  if (!(events & (EC_POLL_IN | EC_POLL_ERR | EC_POLL_HUP))) return true;
  std::size_t got = 0;
  ec_error err = ec_socket_try_recv(c.sock, recv_buf_.data(), recv_buf_.size(), &got);
  if (err.code == EC_EAGAIN) return true;
  if (!err.ok() || got == 0) return reset("the server closed a connection");
  w.head.append(recv_buf_.data(), got);
  std::size_t end = w.head.find("\r\n\r\n");
  if (end == std::string::npos) {
    if (w.head.size() <= kMaxResponseHead) return true;
    end = kMaxResponseHead;
  }
  std::string leftover = end + 4 < w.head.size() ? w.head.substr(end + 4) : std::string();
  w.head.resize(end);
  std::string accept;
  bool upgraded = w.head.compare(0, 13, "HTTP/1.1 101 ") == 0 &&
                  ws::header_value(w.head, "sec-websocket-accept", &accept) &&
                  accept == ws::accept_key(kKey);
  if (!upgraded) {
    std::string status = w.head.substr(0, std::min<std::size_t>(w.head.find("\r\n"), 200));
    close_client(c);
    failure->code = "EPROTO";
    failure->message = "the WebSocket upgrade at " + ws_url(options_) + " failed: " +
                       (status.compare(0, 13, "HTTP/1.1 101 ") == 0
                            ? "a 101 without the right Sec-WebSocket-Accept"
                            : "the server answered \"" + status + "\"");
    return false;
  }
  std::string().swap(w.head);
  std::string().swap(w.request);
  c.state = Client::Open;
  in_flight_ -= 1;
  open_ += 1;
  set_interest(c, EC_POLL_IN);
  if (!leftover.empty() && !ws_received(c, reinterpret_cast<const std::uint8_t*>(leftover.data()),
                                        leftover.size(), now)) {
    failure->code = "ECONNRESET";
    failure->message =
        "the server closed a WebSocket connection just upgraded (" + ws_url(options_) + ")";
    return false;
  }
  return true;
}

bool LoadGen::ws_received(Client& c, const std::uint8_t* data, std::size_t len, std::uint64_t now) {
  WsConn& w = *c.ws;
  w.sink.now_rel = now - epoch_;
  std::uint16_t error = w.decoder.feed(data, len, &w.sink);
  if (error != 0 || w.decoder.closed()) {
    // A protocol error, or the server's close frame: the client is gone
    // (what it was owed counts as lost).
    close_client(c);
    return false;
  }
  return true;
}

void LoadGen::ws_encode(Client& c, std::size_t at, std::uint64_t count) {
  const std::size_t size = options_.size;
  const std::size_t payload = size - 1;  // The frame without its '\n'.
  const std::size_t wire = static_cast<std::size_t>(wire_frame_);
  const std::uint8_t* key = c.ws->key;
  std::uint8_t header[ws::kMaxHeader];
  const std::size_t h = ws::encode_header(ws::kText, payload, header, key);
  c.out.resize(at + static_cast<std::size_t>(count) * wire);
  std::uint8_t* base = reinterpret_cast<std::uint8_t*>(c.out.data()) + at;
  // Last frame first: each moves up (wire > size), never over one not yet moved.
  for (std::uint64_t k = count; k-- > 0;) {
    std::uint8_t* src = base + k * size;
    std::uint8_t* dst = base + k * wire;
    std::memmove(dst + h, src, payload);
    std::memcpy(dst, header, h);
    ws::mask(dst + h, payload, key);
  }
}

}  // namespace bench
}  // namespace echocast
