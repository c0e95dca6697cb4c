// connection.cc — one client connection's rules (see connection.h).
#include "connection.h"

#include <new>

namespace echocast {

FanoutOptions fanout_options(const EngineOptions& o) {
  FanoutOptions f;
  f.replay = o.replay;
  f.echo_to_sender = o.echo_to_sender;
  f.max_backlog_bytes = o.max_backlog_bytes;
  f.slow_consumer_ms = o.slow_consumer_ms;
  f.ws = o.has_ws();
  return f;
}

bool Connection::start_websocket(const ws::HandshakeConfig* config) {
  session_.reset(new (std::nothrow) WsSession(config, framing_, max_frame_bytes_));
  if (!session_) return false;
  set(State::AwaitingUpgrade);
  return true;
}

ws::Handshake::Result Connection::handshake(const std::uint8_t* data, std::size_t len,
                                            std::size_t* consumed) {
  ws::Handshake::Result r = session_->handshake(data, len, consumed);
  if (r == ws::Handshake::Result::Page || r == ws::Handshake::Result::Reject) set(State::Answering);
  return r;
}

bool Connection::admit(Roster* roster, std::size_t clients, std::uint64_t* id) {
  if (roster->admit(clients, id)) {
    set(State::Admitted);
    return true;
  }
  if (session_) {
    session_->queue_control(session_->close_frame(Reason::ServerFull));
    set(State::Answering);
  }
  return false;
}

bool Connection::feed(const std::uint8_t* data, std::size_t len, FrameSink* sink) {
  return session_ ? session_->feed(data, len, sink) : framer_.feed(data, len, sink);
}

Reason Connection::close_reason() const {
  return session_ ? session_->reason() : Reason::FrameTooLarge;
}

bool Connection::peer_finished(bool allow_half_open) {
  set(State::Finishing);
  return !allow_half_open || session_ != nullptr;
}

Reason Connection::failure_reason() const {
  switch (state()) {
    case State::Ending:
      return Reason::ServerClosed;
    case State::Finishing:
      return Reason::ClientClosed;
    default:
      return Reason::ClientError;
  }
}

bool Connection::close_frame_due(const FanoutMember& m) {
  if (!session_ || close_frame_asked_) return false;
  close_frame_asked_ = true;
  return !m.sending && m.cursor.offset == 0;
}

std::vector<std::uint8_t> Connection::close_frame(Reason r) const {
  if (!session_) return std::vector<std::uint8_t>();
  return session_->close_frame(r);
}

}  // namespace echocast
