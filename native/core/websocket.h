// websocket.h — RFC 6455, as pure code, in one include: the protocol lives in
// core/ws/, one file per concern (as the `ws` package splits it; see
// docs/architecture.md):
//   ws/primitives.h         SHA-1, base64, UTF-8 validation
//   ws/http.h               the HTTP/1.1 text of a head and the closing answers
//   ws/handshake.h          the opening handshake (server role), accept_key
//   ws/frame.h              frames we send: headers, masking, close and pong,
//                           the close code of a disconnect reason
//   ws/decoder.h            the frame decoder for either side
//   ws/message_to_frames.h  a client's message into frames of the server's
//                           framing (docs/contract.md §6)
//
// No I/O, no locks, no clock, no OS header; memory is bounded by the limits
// given (a request head by kMaxRequestHead, a message by max_message_bytes).
// Used by both native engines (docs/contract.md §6) and by the bench's load
// generator (client role), which include the parts they need. The js engine
// uses the `ws` package instead; the conformance suite shows the two agree.
#ifndef ECHOCAST_CORE_WEBSOCKET_H
#define ECHOCAST_CORE_WEBSOCKET_H

#include "ws/decoder.h"
#include "ws/frame.h"
#include "ws/handshake.h"
#include "ws/http.h"
#include "ws/message_to_frames.h"
#include "ws/primitives.h"

#endif  // ECHOCAST_CORE_WEBSOCKET_H
