// ws_session.h — one WebSocket connection's protocol state, as both native
// engines share it (docs/contract.md §6): the opening handshake until it
// upgrades (or answers with the page or an error and ends), then the frame
// decoder, whose messages become frames of the server's framing
// (ws::message_to_frames, into the same FrameSink the framer feeds for a
// TCP client), the control bytes we owe the peer (the handshake's response,
// pongs) and the close decision: why the connection ends and which close
// frame says so.
//
// Pure: no I/O, no lock, no clock. The engines do the I/O around it: they
// send control bytes before the next data gather, at a frame boundary (a
// cursor offset of 0), so a pong never lands inside a data message.
#ifndef ECHOCAST_CORE_WS_SESSION_H
#define ECHOCAST_CORE_WS_SESSION_H

#include <cstddef>
#include <cstdint>
#include <vector>

#include "framer.h"
#include "reasons.h"
#include "websocket.h"

namespace echocast {

class WsSession : private ws::MessageSink {
 public:
  // Control bytes are not queued past this (pongs beyond it are dropped: a
  // peer that pings without reading gets the pongs that fit).
  static constexpr std::size_t kMaxControlBytes = 4096;

  enum class State {
    Handshake,  // Reading the request head.
    Open,       // Upgraded: WebSocket frames both ways.
    Ending,     // The response (page, error) or our close frame is the last
                // thing to send; then the connection closes.
  };

  // `config` outlives the session (the engine's); messages over
  // max_frame_bytes are refused (close 1009, frame-too-large).
  WsSession(const ws::HandshakeConfig* config, Framing framing, std::size_t max_frame_bytes);

  State state() const { return state_; }

  // Handshake: feeds request bytes. NeedMore until the head is complete;
  // then the response is queued as control bytes and the state is Open
  // (Upgrade) or Ending (Page, Reject). *consumed: the bytes of the head;
  // after an upgrade the rest are WebSocket bytes (pass them to feed()).
  ws::Handshake::Result handshake(const std::uint8_t* data, std::size_t len, std::size_t* consumed);
  // The status answered (101, 200, 400, ...), once decided.
  int status() const { return handshake_.status(); }
  // The handshake itself: its refusal (401, 403) and, kept for the
  // authorize hook, the request's path, query and headers.
  const ws::Handshake& request() const { return handshake_; }

  // Open: feeds WebSocket bytes; each complete message enters `sink` as
  // frames of the server's framing, pings queue pongs. Returns false when
  // the connection is to close: reason() says why (ClientClosed for the
  // peer's close frame, ProtocolError, FrameTooLarge). Sticky.
  bool feed(const std::uint8_t* data, std::size_t len, FrameSink* sink);

  // Why feed() returned false.
  Reason reason() const { return reason_; }

  // The close frame to send when the connection closes for `r`: the answer
  // to the peer's close (its code, 1000 if it gave none) when it closed;
  // the decoder's own code (1002, 1007, 1009) after a protocol error;
  // otherwise ws::close_code_for(r), with the reason's name as its text.
  std::vector<std::uint8_t> close_frame(Reason r) const;
  // The close frame for `r` whatever the session saw (no state read: any
  // thread may make it): ws::close_code_for(r), the reason's name as text.
  static std::vector<std::uint8_t> close_frame_for(Reason r);

  // Control bytes owed to the peer, sent before any further data.
  bool control_pending() const { return control_sent_ < control_.size(); }
  const std::uint8_t* control_data() const { return control_.data() + control_sent_; }
  std::size_t control_size() const { return control_.size() - control_sent_; }
  void control_sent(std::size_t n);
  // Queues bytes (a close frame, a server-full refusal) after what is there.
  void queue_control(const std::vector<std::uint8_t>& bytes);
  // Takes every pending control byte (the threads engine hands them to its
  // writer through the hub).
  std::vector<std::uint8_t> take_control();

 private:
  void on_message(const std::uint8_t* data, std::size_t len, bool text) override;
  void on_ping(const std::uint8_t* data, std::size_t len) override;
  void on_close(std::uint16_t code, const std::uint8_t* reason, std::size_t len) override;

  Framing framing_;
  ws::Handshake handshake_;
  ws::Decoder decoder_;
  State state_ = State::Handshake;
  FrameSink* sink_ = nullptr;  // During feed().
  std::vector<std::uint8_t> scratch_;
  std::vector<std::uint8_t> control_;
  std::size_t control_sent_ = 0;
  bool failed_ = false;
  Reason reason_ = Reason::ClientClosed;
  std::uint16_t error_code_ = 0;  // The decoder's close code after an error.
  bool peer_closed_ = false;
  std::uint16_t peer_code_ = 0;
};

}  // namespace echocast

#endif  // ECHOCAST_CORE_WS_SESSION_H
