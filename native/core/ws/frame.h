// ws/frame.h — the frames a WebSocket endpoint sends (RFC 6455 §5), as the
// `ws` package's sender: opcodes and the close codes we send, a frame's
// header, masking, whole close and pong frames, and which close code a
// disconnect reason gets. Pure functions: no I/O, no OS header. Part of the
// WebSocket protocol in core/ws/ (docs/architecture.md).
#ifndef ECHOCAST_CORE_WS_FRAME_H
#define ECHOCAST_CORE_WS_FRAME_H

#include <cstddef>
#include <cstdint>
#include <vector>

namespace echocast {
namespace ws {

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
  kCloseGoingAway = 1001,      // server-closed
  kCloseProtocolError = 1002,  // unmasked client frame, bad opcode, RSV bits...
  kCloseInvalidData = 1007,    // invalid UTF-8 in a text message
  kClosePolicy = 1008,         // slow-consumer, cluster-unavailable
  kCloseTooBig = 1009,         // frame-too-large
  kCloseInternal = 1011,       // client-error on our side
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
void mask(std::uint8_t* data, std::size_t len, const std::uint8_t key[4], std::size_t offset = 0);

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

}  // namespace ws
}  // namespace echocast

#endif  // ECHOCAST_CORE_WS_FRAME_H
