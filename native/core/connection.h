// connection.h — one client connection's rules, written once for both
// native engines (the I/O around them is each engine's): its state, the
// input side (bytes into the framer, or into the WebSocket session, and the
// close reason when they fail), admission through the roster with the
// WebSocket refusal (close 1013), the reason a failed send or receive
// closes it with, and our close frame, sent only at a frame boundary. Also
// the one fanout_options() both engines build their Fanout with.
// docs/architecture.md says which file owns which rule.
//
// Pure: no I/O, no lock, no clock, no OS header. An engine's client type
// derives from its fanout member type and from Connection; the engine
// reads a socket and hands the bytes here, and sends what this says.
//
// The states, in order (a TCP connection starts at Admitted, or, with a
// token or an authorize hook, at AwaitingToken; with TLS, any connection
// starts at AwaitingTls, then goes on to the state it would have started at):
//
//   [AwaitingTls] ->
//   AwaitingUpgrade (WebSocket) --+
//   AwaitingToken (TCP) ----------+--> [Authorizing] --> Admitted -> Finishing | Ending
//                                 |          |                               -> Closed
//                                 +----------+--> Answering -> Answered -> Closed
//
// Authorizing only with the hook. Answering is a WebSocket connection's
// last answer (a page, an error status, a refusal, or server-full); a TCP
// connection refused at the door is closed at once, having received nothing.
//
// Who may connect (docs/contract.md S15) is decided here, once, for both
// engines: a TCP client's first frame at the door (AwaitingToken: the HTTP
// request line, the token, then the hook), the WebSocket upgrade's origin
// and token (ws/handshake.h) and its hook, the answer, the deadline's
// cause, and refuseHttp's check of an admitted client's first frame. The
// engines only move the bytes, post the hook's event and hand back the
// answer. TLS (docs/contract.md S17) is a stage here too: the session
// between the socket and everything above (receive_tls() first; what is
// sent sealed onto the wire), the engines moving only ciphertext.
#ifndef ECHOCAST_CORE_CONNECTION_H
#define ECHOCAST_CORE_CONNECTION_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine.h"
#include "fanout.h"
#include "framer.h"
#include "reasons.h"
#include "roster.h"
#include "tls/tls.h"
#include "ws_session.h"

namespace echocast {

// The rules' knobs, from the server options (both engines' Fanout).
FanoutOptions fanout_options(const EngineOptions& o);
// The WebSocket handshake's, from the same options (both engines).
ws::HandshakeConfig handshake_config(const EngineOptions& o);

// docs/contract.md S17: the TLS context new connections get (null: no TLS),
// replaced from any thread (Engine::set_tls); a session holds its own.
class TlsContextSlot {
 public:
  std::shared_ptr<tls::TlsContext> get() const { return std::atomic_load(&context_); }
  void set(std::shared_ptr<tls::TlsContext> c) { std::atomic_store(&context_, std::move(c)); }

 private:
  std::shared_ptr<tls::TlsContext> context_;
};

// Counts a refusal and reports it (docs/contract.md S15); both engines.
inline void report_refusal(RefusalCounters* counters, EventSink* sink, Refusal cause, bool ws,
                           const std::string& address, int port,
                           const std::string& detail = std::string()) {
  counters->add(cause);
  sink->on_refusal(cause, ws, address, port, detail);
}

// docs/contract.md S15: the address lists, at accept, on both listeners. True:
// the peer may be served. False: the refusal is counted and reported, and the
// caller closes its socket at once (nothing read, nothing sent).
inline bool address_admitted(const EngineOptions& o, RefusalCounters* counters, EventSink* sink,
                             const ec_peer_address& peer, bool ws, const std::string& address,
                             int port) {
  if (!o.address_lists() || address_permitted(o.allow, o.deny, peer)) return true;
  report_refusal(counters, sink, Refusal::Address, ws, address, port);
  return false;
}

class Connection {
 public:
  enum class State : std::uint8_t {
    // docs/contract.md S17: with TLS, its TLS handshake, before any other
    // stage (the one it would have started at follows: AwaitingUpgrade,
    // AwaitingToken, or admission). Listed in a HandshakeList from accept;
    // a TCP one holds a client slot. No id, no event; input never gated.
    AwaitingTls,
    // WebSocket only: reading the request head. Listed in a HandshakeList;
    // no id, no event, not a fanout member; its input is never gated.
    AwaitingUpgrade,
    // Not admitted: its answer (the page, an error status, or the 101 then
    // close 1013) is the last thing it is sent.
    Answering,
    // Answered and our send side shut: what it sends is dropped; its end of
    // stream (or the handshake's deadline) ends it.
    Answered,
    // TCP with a token or a hook: reading its first frame (first_frame()).
    // Listed in a HandshakeList, holding a client slot; no id, no event, not
    // a fanout member; its input is never gated.
    AwaitingToken,
    // Waiting for the authorize hook's answer (answer()): nothing more is
    // read; what came after the first frame (TCP) or the head (WebSocket)
    // is held. Listed, holding a client slot. A WebSocket connection's 101
    // waits with it.
    Authorizing,
    // A client: a fanout member with an id; its input is fed here.
    Admitted,
    // docs/contract.md S11: the peer shut its side; no more input. It is
    // sent what it is owed (then closed, client-closed), or with
    // allowHalfOpen whatever comes until a send fails.
    Finishing,
    // Stop: our send side is shut; reading on until the peer's end.
    Ending,
    // Closed or dropped: no more I/O; its memory goes at the owner's pace.
    Closed,
  };

  Connection(Framing framing, std::size_t max_frame_bytes)
      : framing_(framing), max_frame_bytes_(max_frame_bytes), framer_(framing, max_frame_bytes) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Makes it a WebSocket connection awaiting its upgrade (`config` outlives
  // it: the engine's). False when out of memory.
  bool start_websocket(const ws::HandshakeConfig* config);

  State state() const { return state_.load(std::memory_order_relaxed); }
  bool websocket() const { return session_ != nullptr; }
  // A client: admitted, and not yet closed.
  bool admitted() const {
    State s = state();
    return s == State::Admitted || s == State::Finishing || s == State::Ending;
  }
  // A connection before (or refused) admission: a WebSocket handshake, or
  // a TCP client at the door.
  bool in_handshake() const {
    State s = state();
    return s == State::AwaitingTls || s == State::AwaitingUpgrade || s == State::Answering ||
           s == State::Answered || s == State::AwaitingToken || s == State::Authorizing;
  }
  // Whether its input is still read (and, admitted, fed).
  bool reading() const {
    State s = state();
    return s == State::Admitted || s == State::Ending || s == State::AwaitingUpgrade;
  }

  // The peer, for the connection event once admitted.
  void set_peer(const std::string& address, int port) {
    address_ = address;
    port_ = port;
  }
  const std::string& peer_address() const { return address_; }
  int peer_port() const { return port_; }

  // ---- Before admission: who may connect (docs/contract.md S15) -----------

  // What a connection at the door is to do next.
  enum class Door {
    NeedMore,   // Read on.
    Admit,      // Admit it (admit()), then feed it take_held().
    Authorize,  // Ask the hook (authorize_request()); read nothing more.
    Refuse,     // Refused (*cause): a WebSocket connection is Answering
                // (its 401/403 queued); a TCP one is closed having
                // received nothing.
  };

  // TCP: with options.tcp_door(), the connection waits at the door for its
  // first frame (AwaitingToken); otherwise it is admitted as it is, and with
  // refuse_http its first frame is checked by feed(). `o` outlives it.
  void start_tcp(const EngineOptions* o);
  // AwaitingToken: feeds bytes until the first frame is complete; it is
  // never broadcast. Its first line an HTTP request line (refuse_http):
  // Refuse Http; not the token: Refuse Token; then, with the hook:
  // Authorize; else Admit. Bytes after it are held (take_held()).
  Door first_frame(const std::uint8_t* data, std::size_t len, Refusal* cause);
  // Authorizing: the hook's answer. Admit (a WebSocket connection's 101 is
  // queued again) or Refuse (cause Hook; WebSocket: 403 queued, Answering).
  Door answer(bool ok);
  // The deadline passed (HandshakeList::expire). True when it is a
  // refusal (*cause: HandshakeLimit for an upgrade's head, Token or Hook at
  // the door; a WebSocket connection waiting for the hook has its 403
  // queued and is Answering); false for one already answered, dropped
  // without a word.
  bool expire(Refusal* cause);
  // The hook's question about this connection (WebSocket: path, query,
  // headers; TCP: its first frame), moved out.
  AuthorizeRequest authorize_request();
  // Bytes that came after the first frame or the head, held until the
  // connection is admitted.
  void hold(const std::uint8_t* data, std::size_t len) {
    held_.insert(held_.end(), data, data + len);
  }
  std::vector<std::uint8_t> take_held() {
    std::vector<std::uint8_t> out;
    out.swap(held_);
    return out;
  }
  // The ticket its hook's answer comes back with (0: none), the engine's.
  std::uint64_t ticket = 0;
  // Whether a WebSocket handshake was refused by who-may-connect (401 or
  // 403), and why.
  bool handshake_refused(Refusal* cause) const;
  // Whether feed() failed because the first frame was an HTTP request line
  // (refuse_http, an admitted TCP client): close reason protocol-error.
  bool refused_http() const { return http_refused_; }
  // HandshakeList's: whether its deadline passed (under the caller's lock).
  bool deadline_passed() const { return deadline_passed_; }
  // HandshakeList's: whether it holds a client slot while it waits.
  bool holds_slot() const { return holds_slot_; }
  std::uint64_t deadline() const { return handshake_deadline_; }

  // ---- Before admission (WebSocket) ---------------------------------------

  // Feeds request bytes (AwaitingUpgrade). NeedMore until the head is
  // complete; Upgrade: the 101 is queued as control bytes and admit()
  // decides, or, with the authorize hook (config.keep_request), the 101
  // waits and the connection is Authorizing; Page or Reject: the answer is
  // queued, Answering.
  // *consumed: the bytes of the head (after an upgrade the rest are
  // WebSocket bytes, for feed() once admitted).
  ws::Handshake::Result handshake(const std::uint8_t* data, std::size_t len, std::size_t* consumed);

  // Admission through the roster (the caller serialises it, with `clients`
  // those connected now). True: Admitted, *id is its id. False: server-full
  // (tallied by the roster); a WebSocket connection is then Answering, with
  // close 1013 queued after its control bytes (docs/contract.md §6: the
  // upgrade completes, then the refusal); the caller reports the
  // disconnect for *id as for TCP, and sends the answer.
  bool admit(Roster* roster, std::size_t clients, std::uint64_t* id);

  // Its answer went out and our send side is shut.
  void answered() { set(State::Answered); }

  // ---- Admitted ------------------------------------------------------------

  // Feeds received bytes to the framer, or to the WebSocket session (pings
  // queue pongs: control_pending()). Complete frames enter `sink`. False:
  // the connection is to close with close_reason() (sticky).
  bool feed(const std::uint8_t* data, std::size_t len, FrameSink* sink);
  // Why feed() failed: frame-too-large, or the session's reason
  // (client-closed for the peer's close frame, protocol-error, ...).
  Reason close_reason() const;

  // docs/contract.md S11: the peer shut its side (Finishing). Returns
  // whether it is to be finished (sent what it is owed, then closed with
  // client-closed): always without allowHalfOpen, and for a WebSocket
  // connection, which has no half-close.
  bool peer_finished(bool allow_half_open);
  // Stop: our send side is shut, the peer's end is awaited (Ending).
  void end() { set(State::Ending); }
  // No more I/O (Closed).
  void closed() { set(State::Closed); }

  // A send or a receive failed: the reason it closes with (server-closed
  // while stopping, client-closed after the peer's end, else client-error).
  Reason failure_reason() const;

  // ---- Control bytes and the close frame (WebSocket) -----------------------

  // Bytes owed to the peer before any further data (the handshake's
  // answer, pongs, a refusal): see WsSession.
  bool control_pending() const { return session_ && session_->control_pending(); }
  const std::uint8_t* control_data() const { return session_->control_data(); }
  std::size_t control_size() const { return session_->control_size(); }
  void control_sent(std::size_t n) { session_->control_sent(n); }
  std::vector<std::uint8_t> take_control() { return session_->take_control(); }

  // docs/contract.md §6: whether our close frame may go now, as `m` (this
  // connection as a fanout member) closes: a WebSocket connection, the
  // first time asked, at a frame boundary (no batch in flight, its cursor
  // at the start of a frame). In the middle of a data message the socket
  // closes without it (best effort). The caller sends it if the socket
  // takes it at once.
  bool close_frame_due(const FanoutMember& m);
  // Our close frame for `r` (empty for TCP): the answer to the peer's close,
  // the decoder's own code after a protocol error, else the reason's code
  // (WsSession::close_frame). Only on the thread that feeds the session.
  std::vector<std::uint8_t> close_frame(Reason r) const;
  // The same for `r` whatever the session saw, for any thread.
  static std::vector<std::uint8_t> close_frame_for(Reason r) {
    return WsSession::close_frame_for(r);
  }

  // ---- TLS (docs/contract.md S17) --------------------------------------------
  //
  // With TLS, the socket carries ciphertext both ways and everything above
  // (the door, the WebSocket session, the framer) sees plaintext: input goes
  // through receive_tls() first; output (control bytes, frames, the close
  // frame) is sealed into one ciphertext buffer, the wire, sent from there.

  // At accept, with the engine's context, after start_tcp() or
  // start_websocket(): the TLS handshake comes first (AwaitingTls). False
  // when out of memory.
  bool start_tls(std::shared_ptr<tls::TlsContext> context);
  bool tls() const { return tls_ != nullptr; }

  enum class TlsStep {
    Handshaking,  // Read on; the handshake's answer may wait on the wire.
    Opened,       // The handshake completed in this call: the state is the
                  // next stage's (AwaitingUpgrade, AwaitingToken, or
                  // Admitted for a TCP client to admit now).
    Open,         // Open before this call.
    Failed,       // tls_failure() says why; an alert may wait on the wire.
  };
  // The socket's bytes through the session: the plaintext that came out is
  // put in *plain (cleared first), the handshake's bytes on the wire.
  TlsStep receive_tls(const std::uint8_t* data, std::size_t len, std::vector<std::uint8_t>* plain);
  // A refusal's detail: OpenSSL's reason, node:tls's code first where one
  // matches (ERR_SSL_WRONG_VERSION_NUMBER, ERR_TLS_HANDSHAKE_TIMEOUT, ...).
  std::string tls_failure() const;
  // The TLS handshake had not completed: expire()'s and a lost peer's
  // refusal is Tls.
  bool tls_pending() const { return tls_ != nullptr && !tls_->open(); }

  // The bytes owed to the socket now. Without TLS: the control bytes. With
  // TLS: the control bytes are sealed first, then the wire's ciphertext.
  bool wire_pending();
  const std::uint8_t* wire_data() const;
  std::size_t wire_size() const;
  void wire_sent(std::size_t n);
  // TLS: frames gathered from the log (whole frames: `bytes` of them, up to
  // `end`) sealed onto the wire, after any control bytes, in one pass. The
  // fanout's advance waits until the wire has gone (sealed_done()), so the
  // backlog counts them until then (docs/contract.md S7, S16: before
  // encryption). False: the session failed.
  bool seal(const ec_iovec* pieces, std::size_t count, std::size_t bytes, std::uint64_t end);
  // The wire is empty and a seal()'s advance is due: its bytes and end.
  bool sealed_done(std::size_t* bytes, std::uint64_t* end);
  // Our close frame for `r` sealed onto the wire (TLS, open), after the
  // control bytes; at a frame boundary, since seal() takes whole frames.
  bool seal_close_frame(Reason r);
  // TLS, open: our close_notify onto the wire (once), the end of what this
  // connection is sent. The control bytes are not looked at: a caller whose
  // answer is in them seals them first (wire_pending()).
  void seal_close_notify();
  // For a writer that sends outside its connection's reader (the threads
  // engine, under its own lock for the session): what waits on the wire,
  // then `pieces` sealed, appended to *out; the wire is then empty. The
  // control bytes are not looked at (they are the reader's: such a writer
  // gets them among its pieces). False: the session failed.
  bool seal_into(const ec_iovec* pieces, std::size_t count, std::string* out);
  // The wire moved out into *out (appended); the wire is then empty.
  void take_wire(std::string* out);

 private:
  friend class HandshakeList;
  static constexpr std::size_t kNotListed = ~std::size_t{0};

  void set(State s) { state_.store(s, std::memory_order_relaxed); }
  // The bytes of this read that belong to the first frame (AwaitingToken).
  std::size_t first_frame_extent(const std::uint8_t* data, std::size_t len);
  class FirstFrameGate;

  // Written by the thread that reads the connection; atomic because the
  // threads engine's writer reads it for failure_reason() (ordered by the
  // hub's lock).
  std::atomic<State> state_{State::Admitted};
  Framing framing_;
  std::size_t max_frame_bytes_;
  Framer framer_;
  std::unique_ptr<WsSession> session_;
  bool close_frame_asked_ = false;
  std::string address_;
  int port_ = 0;
  // HandshakeList's (AwaitingUpgrade until admitted or dropped).
  std::size_t handshake_index_ = kNotListed;
  std::uint64_t handshake_deadline_ = 0;
  bool deadline_passed_ = false;
  bool holds_slot_ = false;
  // Who may connect: the options (TCP), the first frame's progress, what
  // is held, the 101 a hook's answer waits for, refuse_http's check.
  const EngineOptions* options_ = nullptr;
  const ws::HandshakeConfig* ws_config_ = nullptr;
  std::size_t first_seen_ = 0;
  std::uint8_t prefix_[4] = {0};
  std::vector<std::uint8_t> first_payload_;
  std::vector<std::uint8_t> held_;
  std::vector<std::uint8_t> upgrade_response_;
  bool http_check_ = false;
  bool http_refused_ = false;
  // TLS: the session, the stage after its handshake, the wire (ciphertext
  // not yet sent, from wire_at_) and the advance a seal() waits to make.
  std::unique_ptr<tls::TlsSession> tls_;
  State after_tls_ = State::Admitted;
  std::string wire_;
  std::size_t wire_at_ = 0;
  bool tls_expired_ = false;
  bool sealed_ = false;
  std::size_t sealed_bytes_ = 0;
  std::uint64_t sealed_end_ = 0;
};

}  // namespace echocast

#endif  // ECHOCAST_CORE_CONNECTION_H
