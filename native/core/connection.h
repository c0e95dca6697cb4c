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
// The states, in order (a TCP connection starts at Admitted):
//
//   AwaitingUpgrade -> Admitted -> Finishing | Ending -> Closed
//          |
//          +-> Answering -> Answered -> Closed   (a page, an error status,
//                                                  or a server-full refusal)
//
// Two later stages have their place here, and only here: a connection
// whose upgrade waits for JS to authorize it (a state between
// AwaitingUpgrade and Admitted, admitted or answered when the answer
// comes), and a TLS layer between the socket and feed()/the bytes sent (its
// memory BIOs owned by the Connection, the engines still moving only
// ciphertext).
#ifndef ECHOCAST_CORE_CONNECTION_H
#define ECHOCAST_CORE_CONNECTION_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine.h"
#include "fanout.h"
#include "framer.h"
#include "reasons.h"
#include "roster.h"
#include "ws_session.h"

namespace echocast {

// The rules' knobs, from the server options (both engines' Fanout).
FanoutOptions fanout_options(const EngineOptions& o);

class Connection {
 public:
  enum class State : std::uint8_t {
    // WebSocket only: reading the request head. Listed in a HandshakeList;
    // no id, no event, not a fanout member; its input is never gated.
    AwaitingUpgrade,
    // Not admitted: its answer (the page, an error status, or the 101 then
    // close 1013) is the last thing it is sent.
    Answering,
    // Answered and our send side shut: what it sends is dropped; its end of
    // stream (or the handshake's deadline) ends it.
    Answered,
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
  // A connection before (or refused) admission: a WebSocket handshake.
  bool in_handshake() const {
    State s = state();
    return s == State::AwaitingUpgrade || s == State::Answering || s == State::Answered;
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

  // ---- Before admission (WebSocket) ---------------------------------------

  // Feeds request bytes (AwaitingUpgrade). NeedMore until the head is
  // complete; Upgrade: the 101 is queued as control bytes and admit()
  // decides; Page or Reject: the answer is queued, Answering.
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

 private:
  friend class HandshakeList;
  static constexpr std::size_t kNotListed = ~std::size_t{0};

  void set(State s) { state_.store(s, std::memory_order_relaxed); }

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
};

}  // namespace echocast

#endif  // ECHOCAST_CORE_CONNECTION_H
