// connection.cc — one client connection's rules (see connection.h).
#include "connection.h"

#include <cstring>
#include <new>
#include <utility>

namespace echocast {

namespace {

// Keeps the first complete frame's payload (the door's token frame).
class FirstFrameSink : public FrameSink {
 public:
  void on_frame(const FrameView& v) override {
    if (got) return;
    got = true;
    payload.assign(v.bytes + v.payload_offset, v.bytes + v.payload_offset + v.payload_size);
  }
  bool got = false;
  std::vector<std::uint8_t> payload;
};

// A TLS session's plaintext, appended to the caller's buffer.
class AppendSink : public tls::PlaintextSink {
 public:
  explicit AppendSink(std::vector<std::uint8_t>* out) : out_(out) {}
  void on_plaintext(const char* data, std::size_t len) override {
    const std::uint8_t* p = reinterpret_cast<const std::uint8_t*>(data);
    out_->insert(out_->end(), p, p + len);
  }

 private:
  std::vector<std::uint8_t>* out_;
};

// The wire's capacity kept once it is empty: an idle client holds no more.
constexpr std::size_t kWireKeepBytes = 64 * 1024;

}  // namespace

// refuse_http on an admitted TCP client: the first frame is looked at once;
// an HTTP request line stops it, and everything after it, from reaching
// `sink` (docs/contract.md S15).
class Connection::FirstFrameGate : public FrameSink {
 public:
  FirstFrameGate(Connection* c, FrameSink* sink) : c_(c), sink_(sink) {}
  void on_frame(const FrameView& v) override {
    if (c_->http_refused_) return;
    if (c_->http_check_) {
      c_->http_check_ = false;
      if (is_http_request_line(v.bytes + v.payload_offset, v.payload_size)) {
        c_->http_refused_ = true;
        return;
      }
    }
    sink_->on_frame(v);
  }

 private:
  Connection* c_;
  FrameSink* sink_;
};

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
  ws_config_ = config;
  set(State::AwaitingUpgrade);
  return true;
}

ws::HandshakeConfig handshake_config(const EngineOptions& o) {
  ws::HandshakeConfig c;
  c.path = o.ws_path;
  c.page = o.ws_page;
  c.page_headers = o.ws_page_headers;
  c.origins = o.ws_origins;
  c.token = o.auth_token;
  c.keep_request = o.authorize;
  c.secure = o.has_tls;
  return c;
}

ws::Handshake::Result Connection::handshake(const std::uint8_t* data, std::size_t len,
                                            std::size_t* consumed) {
  ws::Handshake::Result r = session_->handshake(data, len, consumed);
  if (r == ws::Handshake::Result::Page || r == ws::Handshake::Result::Reject) set(State::Answering);
  if (r == ws::Handshake::Result::Upgrade && ws_config_->keep_request) {
    // docs/contract.md S15: the hook decides; the 101 waits for its answer.
    upgrade_response_ = session_->take_control();
    set(State::Authorizing);
  }
  return r;
}

bool Connection::handshake_refused(Refusal* cause) const {
  if (!session_ || !session_->request().refused()) return false;
  *cause = session_->request().refusal();
  return true;
}

void Connection::start_tcp(const EngineOptions* o) {
  options_ = o;
  if (o->tcp_door()) set(State::AwaitingToken);
  else http_check_ = o->refuse_http;
}

std::size_t Connection::first_frame_extent(const std::uint8_t* data, std::size_t len) {
  switch (framing_) {
    case Framing::Line: {
      const void* nl = std::memchr(data, '\n', len);
      return nl == nullptr
                 ? len
                 : static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - data) + 1;
    }
    case Framing::Raw:
      return len;  // A read is a frame.
    case Framing::Length: {
      std::size_t i = 0;
      while (first_seen_ < 4 && i < len) prefix_[first_seen_++] = data[i++];
      if (first_seen_ < 4) return len;
      std::uint64_t total =
          4 + ((std::uint64_t{prefix_[0]} << 24) | (std::uint64_t{prefix_[1]} << 16) |
               (std::uint64_t{prefix_[2]} << 8) | std::uint64_t{prefix_[3]});
      std::uint64_t want = total - first_seen_;
      std::size_t take = want < len - i ? static_cast<std::size_t>(want) : len - i;
      first_seen_ += take;
      return i + take;
    }
  }
  return len;
}

Connection::Door Connection::first_frame(const std::uint8_t* data, std::size_t len,
                                         Refusal* cause) {
  if (state() != State::AwaitingToken) return Door::NeedMore;
  const bool token = !options_->auth_token.empty();
  std::size_t take = first_frame_extent(data, len);
  FirstFrameSink first;
  if (!framer_.feed(data, take, &first)) {
    *cause = token ? Refusal::Token : Refusal::Hook;  // Over maxFrameBytes: no token.
    return Door::Refuse;
  }
  if (!first.got) return Door::NeedMore;
  hold(data + take, len - take);
  const std::uint8_t* p = first.payload.data();
  std::size_t n = first.payload.size();
  if (options_->refuse_http && is_http_request_line(p, n)) {
    *cause = Refusal::Http;
    return Door::Refuse;
  }
  if (token && !token_matches(options_->auth_token, p, n)) {
    *cause = Refusal::Token;
    return Door::Refuse;
  }
  if (options_->authorize) {
    first_payload_.swap(first.payload);
    set(State::Authorizing);
    return Door::Authorize;
  }
  return Door::Admit;
}

Connection::Door Connection::answer(bool ok) {
  if (state() != State::Authorizing) return Door::NeedMore;
  std::vector<std::uint8_t>().swap(first_payload_);
  if (session_) {
    if (ok) {
      session_->queue_control(upgrade_response_);
    } else {
      std::string r = ws::http::error_response(403, false);
      session_->queue_control(std::vector<std::uint8_t>(r.begin(), r.end()));
      set(State::Answering);
    }
    std::vector<std::uint8_t>().swap(upgrade_response_);
  }
  return ok ? Door::Admit : Door::Refuse;
}

bool Connection::expire(Refusal* cause) {
  switch (state()) {
    case State::AwaitingTls:
      *cause = Refusal::Tls;  // docs/contract.md S17: the TLS handshake did not complete.
      tls_expired_ = true;
      return true;
    case State::AwaitingUpgrade:
      *cause = Refusal::HandshakeLimit;  // Its head did not come in time.
      return true;
    case State::AwaitingToken:
      *cause =
          options_ != nullptr && !options_->auth_token.empty() ? Refusal::Token : Refusal::Hook;
      return true;
    case State::Authorizing:
      *cause = Refusal::Hook;  // No answer in time.
      answer(false);
      return true;
    default:
      return false;
  }
}

AuthorizeRequest Connection::authorize_request() {
  AuthorizeRequest r;
  r.ws = session_ != nullptr;
  r.address = address_;
  r.port = port_;
  r.ticket = ticket;
  if (session_) {
    const ws::Handshake& h = session_->request();
    r.path = h.path();
    r.query = h.query();
    r.headers = h.headers();
  } else {
    r.first_frame = first_payload_;
  }
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
  if (session_) return session_->feed(data, len, sink);
  if (!http_check_) return framer_.feed(data, len, sink);
  // Until the first frame: refuse_http's one look (no per-frame cost after).
  FirstFrameGate gate(this, sink);
  bool ok = framer_.feed(data, len, &gate);
  return ok && !http_refused_;
}

Reason Connection::close_reason() const {
  if (http_refused_) return Reason::ProtocolError;
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

// ---- TLS (docs/contract.md S17) ----------------------------------------------

bool Connection::start_tls(std::shared_ptr<tls::TlsContext> context) {
  tls_.reset(new (std::nothrow) tls::TlsSession(std::move(context)));
  if (!tls_) return false;
  after_tls_ = state();
  set(State::AwaitingTls);
  return true;
}

Connection::TlsStep Connection::receive_tls(const std::uint8_t* data, std::size_t len,
                                            std::vector<std::uint8_t>* plain) {
  plain->clear();
  const bool was_open = tls_->open();
  AppendSink sink(plain);
  tls::TlsSession::State s = tls_->feed(reinterpret_cast<const char*>(data), len, sink);
  tls_->take_output(&wire_);  // The handshake's answer, an alert.
  if (s == tls::TlsSession::State::kFailed) return TlsStep::Failed;
  if (was_open) return TlsStep::Open;
  if (s == tls::TlsSession::State::kHandshaking) return TlsStep::Handshaking;
  set(after_tls_);
  return TlsStep::Opened;
}

std::string Connection::tls_failure() const {
  if (tls_expired_)
    return "ERR_TLS_HANDSHAKE_TIMEOUT: the TLS handshake did not complete within "
           "handshakeTimeoutMs";
  if (!tls_ || tls_->state() != tls::TlsSession::State::kFailed)
    return "ECONNRESET: closed during the TLS handshake";
  const std::string& f = tls_->failure();
  // What node:tls would name it.
  if (f.compare(0, 10, "plain text") == 0 || f.compare(0, 16, "not a TLS record") == 0)
    return "ERR_SSL_WRONG_VERSION_NUMBER: " + f;
  return f;
}

bool Connection::wire_pending() {
  if (!tls_) return control_pending();
  if (session_ && session_->control_pending() && tls_->open()) {
    ec_iovec piece = {session_->control_data(), session_->control_size()};
    tls_->encrypt(&piece, 1, &wire_);  // On failure the session says so at its next use.
    session_->control_sent(piece.len);
  }
  return wire_at_ < wire_.size();
}

const std::uint8_t* Connection::wire_data() const {
  if (!tls_) return control_data();
  return reinterpret_cast<const std::uint8_t*>(wire_.data()) + wire_at_;
}

std::size_t Connection::wire_size() const {
  if (!tls_) return control_size();
  return wire_.size() - wire_at_;
}

void Connection::wire_sent(std::size_t n) {
  if (!tls_) {
    control_sent(n);
    return;
  }
  wire_at_ += n;
  if (wire_at_ < wire_.size()) return;
  wire_at_ = 0;
  if (wire_.capacity() > kWireKeepBytes) std::string().swap(wire_);
  else wire_.clear();
}

bool Connection::seal(const ec_iovec* pieces, std::size_t count, std::size_t bytes,
                      std::uint64_t end) {
  wire_pending();  // Control bytes first.
  if (!tls_->encrypt(pieces, count, &wire_)) return false;
  sealed_ = true;
  sealed_bytes_ = bytes;
  sealed_end_ = end;
  return true;
}

bool Connection::sealed_done(std::size_t* bytes, std::uint64_t* end) {
  if (!sealed_ || wire_at_ < wire_.size()) return false;
  sealed_ = false;
  *bytes = sealed_bytes_;
  *end = sealed_end_;
  return true;
}

void Connection::take_wire(std::string* out) {
  wire_pending();  // Control bytes sealed first.
  out->append(wire_, wire_at_, std::string::npos);
  wire_sent(wire_.size() - wire_at_);
}

bool Connection::seal_into(const ec_iovec* pieces, std::size_t count, std::string* out) {
  // Not wire_pending(): the control bytes are the reader's (they reach such
  // a writer among its pieces).
  out->append(wire_, wire_at_, std::string::npos);
  wire_sent(wire_.size() - wire_at_);
  return count == 0 || tls_->encrypt(pieces, count, out);
}

void Connection::seal_close_notify() {
  if (!tls_ || !tls_->open()) return;
  tls_->close_notify();
  tls_->take_output(&wire_);
}

bool Connection::seal_close_frame(Reason r) {
  if (!tls_ || !tls_->open() || !session_) return false;
  wire_pending();
  std::vector<std::uint8_t> frame = close_frame(r);
  ec_iovec piece = {frame.data(), frame.size()};
  return tls_->encrypt(&piece, 1, &wire_);
}

}  // namespace echocast
