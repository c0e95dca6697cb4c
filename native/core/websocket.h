// websocket.h — RFC 6455, as pure code: the opening handshake (an HTTP/1.1
// request head, answered with 101, the built-in page, or an error status),
// the frame decoder for either side (a server reads masked frames, a client
// unmasked ones), frame headers for what we send, SHA-1 and base64 for
// Sec-WebSocket-Accept, UTF-8 validation, and the rule by which one message
// from a WebSocket client becomes frames of the server's framing.
//
// No I/O, no locks, no clock, no OS header; memory is bounded by the limits
// given (a request head by kMaxRequestHead, a message by max_message_bytes).
// Used by both native engines (docs/contract.md §6) and by the bench's load
// generator (client role). The js engine uses the `ws` package instead; the
// conformance suite shows the two agree.
#ifndef ECHOCAST_CORE_WEBSOCKET_H
#define ECHOCAST_CORE_WEBSOCKET_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "framer.h"

namespace echocast {
namespace ws {

// ---------------------------------------------------------------------------
// Primitives
// ---------------------------------------------------------------------------

// SHA-1 (FIPS 180-4) of `len` bytes into out[20].
void sha1(const std::uint8_t* data, std::size_t len, std::uint8_t out[20]);

// Standard base64 (RFC 4648, with '=' padding).
std::string base64(const std::uint8_t* data, std::size_t len);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
// accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
std::string accept_key(const std::string& key);

// The value of the first header field called `name` (compared without case)
// in an HTTP head (its start line, then fields up to an optional blank
// line), trimmed of spaces and tabs; false when there is none. For the
// client's side (the load generator reads the 101 with it).
bool header_value(const std::string& head, const char* name, std::string* out);

// Whether `len` bytes are well-formed UTF-8 (RFC 3629: no overlongs, no
// surrogates, nothing past U+10FFFF).
bool valid_utf8(const std::uint8_t* data, std::size_t len);

// Opcodes (RFC 6455 §5.2).
enum Opcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close codes we send (RFC 6455 §7.4.1).
enum CloseCode : std::uint16_t {
  kCloseNormal = 1000,
  kCloseGoingAway = 1001,     // server-closed
  kCloseProtocolError = 1002, // unmasked client frame, bad opcode, RSV bits...
  kCloseInvalidData = 1007,   // invalid UTF-8 in a text message
  kClosePolicy = 1008,        // slow-consumer, cluster-unavailable
  kCloseTooBig = 1009,        // frame-too-large
  kCloseInternal = 1011,      // client-error on our side
};

// The most a frame header can take: 2 + 8 (length) + 4 (mask key).
constexpr std::size_t kMaxHeader = 14;
// The most an unmasked header (a server's frames) takes: 2 + 8.
constexpr std::size_t kMaxServerHeader = kMaxHeader - 4;

// Writes the header of one final (FIN set) frame with `opcode` and a payload
// of `len` bytes into out; with `mask` (4 bytes, client role) the mask bit
// and key are written too (the caller masks the payload, see mask()).
// Returns the header's size: 2, 4 or 10 bytes (+4 with a mask).
std::size_t encode_header(Opcode opcode, std::uint64_t len, std::uint8_t out[kMaxHeader],
                          const std::uint8_t* mask = nullptr);

// XORs data with the 4-byte key, starting at key index `offset % 4`.
void mask(std::uint8_t* data, std::size_t len, const std::uint8_t key[4],
          std::size_t offset = 0);

// A whole unmasked (server role) close frame: code (omitted when 0) and a
// reason of at most 123 bytes (cut to fit).
std::vector<std::uint8_t> close_frame(std::uint16_t code, const char* reason);

// A whole unmasked pong frame echoing a ping's payload (at most 125 bytes).
std::vector<std::uint8_t> pong_frame(const std::uint8_t* data, std::size_t len);

// The close code sent when a client is disconnected for `reason` (a name
// from reasons.h): frame-too-large 1009, protocol-error 1002 (1007 is
// chosen by the Decoder itself), server-closed 1001, slow-consumer and
// cluster-unavailable 1008, server-full 1013, client-error 1011,
// client-closed 1000.
std::uint16_t close_code_for(const char* reason);

// ---------------------------------------------------------------------------
// The opening handshake (server role)
// ---------------------------------------------------------------------------

// The largest request head accepted (request line and headers, up to and
// including the blank line); a longer one is answered 431.
constexpr std::size_t kMaxRequestHead = 8192;

struct HandshakeConfig {
  std::string path = "/";   // The path WebSocket clients upgrade on (and the page's).
  std::string page;         // The built-in page's HTML (served on GET path).
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
  // The status code answered (101, 200, 400, 404, 405, 426, 431).
  int status() const { return status_; }

 private:
  const HandshakeConfig* config_;
  std::string head_;
  Result result_ = Result::NeedMore;
  std::string response_;
  int status_ = 0;
  void decide();
};

// ---------------------------------------------------------------------------
// Frames and messages
// ---------------------------------------------------------------------------

// Receives what a Decoder parses. The pointers are valid only during the call.
class MessageSink {
 public:
  virtual ~MessageSink() = default;
  // A complete data message (fragments reassembled); `text` for opcode 1.
  virtual void on_message(const std::uint8_t* data, std::size_t len, bool text) = 0;
  // A ping (answer with pong_frame(data, len)).
  virtual void on_ping(const std::uint8_t* data, std::size_t len) = 0;
  // The peer's close frame: its code (1005 when it carried none) and reason.
  // Nothing is parsed after it.
  virtual void on_close(std::uint16_t code, const std::uint8_t* reason, std::size_t len) = 0;
};

enum class Role { Server, Client };

// Parses one connection's stream of frames. Server role: every frame must be
// masked. Client role: none may be. Errors stick (later feeds return the
// same code and deliver nothing):
//   1002: a frame masked wrongly for the role, RSV bits set, an unknown
//         opcode, a control frame over 125 bytes or fragmented, a
//         continuation with no message begun, a new data frame while one is
//         being reassembled, a 64-bit length with the top bit set, a close
//         payload of 1 byte or with an invalid code;
//   1009: a message (all its fragments) over max_message_bytes: known as
//         soon as a header announces it, before its payload arrives;
//   1007: a text message, or a close reason, that is not valid UTF-8.
// Pongs are accepted and ignored. The buffer held is bounded by
// max_message_bytes + kMaxHeader, plus a control frame's payload (125 bytes)
// while one arrives in pieces in the middle of a fragmented message.
class Decoder {
 public:
  Decoder(Role role, std::size_t max_message_bytes);

  // Returns 0, or the close code of the error.
  std::uint16_t feed(const std::uint8_t* data, std::size_t len, MessageSink* sink);

  // Whether the peer's close frame was parsed.
  bool closed() const { return closed_; }

 private:
  Role role_;
  std::size_t max_;
  std::uint16_t error_ = 0;
  bool closed_ = false;
  std::vector<std::uint8_t> partial_;   // An incomplete control frame's payload.
  std::vector<std::uint8_t> message_;   // Fragments of the message in progress.
  bool in_message_ = false;
  bool message_text_ = false;
  // The frame being read: its header as it arrives, then its payload.
  std::uint8_t header_[kMaxHeader] = {};
  std::size_t header_len_ = 0;
  bool in_payload_ = false;             // Header complete, payload under way.
  std::uint8_t opcode_ = 0;
  bool fin_ = false;
  bool masked_ = false;
  std::uint8_t key_[4] = {};
  std::uint64_t payload_len_ = 0;
  std::uint64_t payload_done_ = 0;

  std::size_t read_header(const std::uint8_t* data, std::size_t len);
  std::size_t read_payload(const std::uint8_t* data, std::size_t len, MessageSink* sink);
  void control(const std::uint8_t* payload, std::size_t len, MessageSink* sink);
  void deliver(const std::uint8_t* data, std::size_t len, bool text, MessageSink* sink);
  void fail(std::uint16_t code);
};

// Outgoing, the other way (docs/contract.md §6): each hub frame reaches a
// WebSocket client as one final frame whose payload is the hub frame's
// payload (line: without its '\n'; length: without its prefix; raw: the
// chunk), text (opcode 1) when that payload is valid UTF-8, else binary.
// Its header is computed once per frame, not per client.

// The contract's rule (docs/contract.md §6) for a message from a WebSocket
// client: it enters the hub as frames of the server's framing, each passed
// to sink as a FrameView (bytes in wire form, payload inside them):
//   line:   each line of the message (split at '\n') is one frame ending in
//           '\n'; a message ending in '\n' adds no empty frame after it; an
//           empty message is one empty line.
//   raw:    the message is one frame (an empty message is none).
//   length: the message is one frame, with its 4-byte big-endian prefix.
// `scratch` holds the encoded bytes (reused). Returns the number of frames.
std::size_t message_to_frames(Framing framing, const std::uint8_t* data, std::size_t len,
                              std::vector<std::uint8_t>* scratch, FrameSink* sink);

}  // namespace ws
}  // namespace echocast

#endif  // ECHOCAST_CORE_WEBSOCKET_H
