// ws/decoder.h — the frame decoder for either side (RFC 6455 §5), as the
// `ws` package's receiver: a server reads masked frames, a client unmasked
// ones; fragments are reassembled into messages, control frames answered
// through the sink, every protocol error mapped to its close code. No I/O,
// no clock, no OS header; memory is bounded by max_message_bytes. Part of
// the WebSocket protocol in core/ws/ (docs/architecture.md).
#ifndef ECHOCAST_CORE_WS_DECODER_H
#define ECHOCAST_CORE_WS_DECODER_H

#include <cstddef>
#include <cstdint>
#include <vector>

#include "frame.h"

namespace echocast {
namespace ws {

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
  std::vector<std::uint8_t> partial_;  // An incomplete control frame's payload.
  std::vector<std::uint8_t> message_;  // Fragments of the message in progress.
  bool in_message_ = false;
  bool message_text_ = false;
  // The frame being read: its header as it arrives, then its payload.
  std::uint8_t header_[kMaxHeader] = {};
  std::size_t header_len_ = 0;
  bool in_payload_ = false;  // Header complete, payload under way.
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

}  // namespace ws
}  // namespace echocast

#endif  // ECHOCAST_CORE_WS_DECODER_H
