// ws_session.cc — see ws_session.h.
#include "ws_session.h"

namespace echocast {

WsSession::WsSession(const ws::HandshakeConfig* config, Framing framing,
                     std::size_t max_frame_bytes)
    : framing_(framing), handshake_(config), decoder_(ws::Role::Server, max_frame_bytes) {}

ws::Handshake::Result WsSession::handshake(const std::uint8_t* data, std::size_t len,
                                           std::size_t* consumed) {
  *consumed = 0;
  if (state_ != State::Handshake) return ws::Handshake::Result::NeedMore;
  ws::Handshake::Result r = handshake_.feed(data, len, consumed);
  if (r == ws::Handshake::Result::NeedMore) return r;
  const std::string& response = handshake_.response();
  control_.insert(control_.end(), response.begin(), response.end());
  state_ = r == ws::Handshake::Result::Upgrade ? State::Open : State::Ending;
  return r;
}

bool WsSession::feed(const std::uint8_t* data, std::size_t len, FrameSink* sink) {
  if (failed_) return false;
  if (state_ != State::Open) return true;
  sink_ = sink;
  std::uint16_t code = decoder_.feed(data, len, this);
  sink_ = nullptr;
  if (code != 0) {
    failed_ = true;
    error_code_ = code;
    reason_ = code == ws::kCloseTooBig ? Reason::FrameTooLarge : Reason::ProtocolError;
  } else if (peer_closed_) {
    failed_ = true;
    reason_ = Reason::ClientClosed;
  }
  return !failed_;
}

std::vector<std::uint8_t> WsSession::close_frame(Reason r) const {
  if (peer_closed_) {
    // RFC 6455 §5.5.1: echo the code; 1005 means it carried none.
    std::uint16_t code = peer_code_;
    if (code == 1005 || code == 0) code = ws::kCloseNormal;
    return ws::close_frame(code, "");
  }
  if (error_code_ != 0 && failed_ && r == reason_)
    return ws::close_frame(error_code_, reason_name(r));
  return close_frame_for(r);
}

std::vector<std::uint8_t> WsSession::close_frame_for(Reason r) {
  return ws::close_frame(ws::close_code_for(reason_name(r)), reason_name(r));
}

void WsSession::control_sent(std::size_t n) {
  control_sent_ += n;
  if (control_sent_ >= control_.size()) {
    control_.clear();
    control_sent_ = 0;
  }
}

void WsSession::queue_control(const std::vector<std::uint8_t>& bytes) {
  control_.insert(control_.end(), bytes.begin(), bytes.end());
}

std::vector<std::uint8_t> WsSession::take_control() {
  std::vector<std::uint8_t> out(control_.begin() + static_cast<std::ptrdiff_t>(control_sent_),
                                control_.end());
  control_.clear();
  control_sent_ = 0;
  return out;
}

void WsSession::on_message(const std::uint8_t* data, std::size_t len, bool) {
  ws::message_to_frames(framing_, data, len, &scratch_, sink_);
}

void WsSession::on_ping(const std::uint8_t* data, std::size_t len) {
  if (control_size() + len + 2 > kMaxControlBytes) return;
  queue_control(ws::pong_frame(data, len));
}

void WsSession::on_close(std::uint16_t code, const std::uint8_t*, std::size_t) {
  peer_closed_ = true;
  peer_code_ = code;
}

}  // namespace echocast
