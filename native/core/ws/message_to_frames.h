// ws/message_to_frames.h — the contract's rule between WebSocket messages
// and the server's framing (docs/contract.md §6), in both directions: how a
// client's message enters the hub as frames (message_to_frames), and, for
// reference, how a hub frame leaves as a message. Pure code: no I/O, no OS
// header. Part of the WebSocket protocol in core/ws/ (docs/architecture.md).
#ifndef ECHOCAST_CORE_WS_MESSAGE_TO_FRAMES_H
#define ECHOCAST_CORE_WS_MESSAGE_TO_FRAMES_H

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../framer.h"

namespace echocast {
namespace ws {

// Outgoing, the other way (docs/contract.md §6): each hub frame reaches a
// WebSocket client as one final frame whose payload is the hub frame's
// payload (line: without its '\n'; length: without its prefix; raw: the
// chunk), text (opcode 1) when that payload is valid UTF-8, else binary.
// Its header is computed once per frame, not per client (frame_log.h, with
// encode_header from frame.h).

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

#endif  // ECHOCAST_CORE_WS_MESSAGE_TO_FRAMES_H
