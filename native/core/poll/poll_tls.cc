// poll_tls.cc — the poll engine's TLS stage (docs/contract.md S17), on the
// loop thread: a connection's TLS handshake and the stage it opens onto, what
// a waiting connection owes on its wire, reads through the session, and an
// admitted client's frames sealed onto its wire (see poll_engine.h); the
// stage's rules are Connection's (core/connection.h) and core/tls/.
// docs/architecture.md says which file owns which rule.
#include <string>
#include <vector>

#include "poll_engine.h"

namespace echocast {
namespace poll {

void PollEngine::handle_tls(PollClient* c, const ec_poll_event& ev) {
  if ((ev.events & EC_POLL_OUT) && !send_waiting(c)) return;
  if (!(ev.events & (EC_POLL_IN | EC_POLL_HUP | EC_POLL_ERR))) return;
  std::size_t n = 0;
  ec_error err = ec_socket_try_recv(c->sock, buf_.get(), kRecvBytes, &n);
  if (err.code == EC_EAGAIN) return;
  if (!err.ok() || n == 0) {
    refuse_tls(c);  // Gone mid-handshake.
    return;
  }
  Connection::TlsStep step = c->receive_tls(buf_.get(), n, &plain_);
  if (step == Connection::TlsStep::Failed) {
    write_wire(c);  // Its alert, if the socket takes it now; then the refusal.
    refuse_tls(c);
    return;
  }
  if (!send_waiting(c)) return;
  if (step == Connection::TlsStep::Opened) tls_opened(c);
}

void PollEngine::tls_opened(PollClient* c) {
  switch (c->state()) {
    case Connection::State::AwaitingUpgrade:
      // The WebSocket request head, within the same deadline.
      if (!plain_.empty()) {
        std::vector<std::uint8_t> plain;
        plain.swap(plain_);
        handshake_bytes(c, plain.data(), plain.size());
        plain.swap(plain_);
      }
      return;
    case Connection::State::AwaitingToken: {
      // The door (docs/contract.md S15), with its own deadline.
      handshakes_.hold(c, ec_now_ms() + options_.auth_timeout_ms);
      if (plain_.empty()) return;
      Refusal cause = Refusal::Token;
      Connection::Door d = c->first_frame(plain_.data(), plain_.size(), &cause);
      door_step(c, d, cause, std::string());
      return;
    }
    default:
      // Admitted as a TCP client is at accept; what came with the handshake's
      // end is its first input.
      c->hold(plain_.data(), plain_.size());
      admit_door(c);
      return;
  }
}

bool PollEngine::send_waiting(PollClient* c) {
  if (write_wire(c) == WireSend::Failed) {
    if (c->tls_pending()) refuse_tls(c);
    else drop_handshake(c);
    return false;
  }
  // Authorizing reads nothing (interest 0): the rest goes once admitted.
  if (c->state() == Connection::State::Authorizing) return true;
  unsigned want = c->wire_pending() ? EC_POLL_IN | EC_POLL_OUT : EC_POLL_IN;
  if (c->interest != want) {
    if (!ec_poller_modify(poller_, c->sock, want, c).ok()) {
      drop_handshake(c);
      return false;
    }
    c->interest = want;
  }
  return true;
}

void PollEngine::refuse_tls(PollClient* c) {
  report_refusal(&refusals_, sink_, Refusal::Tls, c->websocket(), c->peer_address(), c->peer_port(),
                 c->tls_failure());
  drop_handshake(c);
}

bool PollEngine::decrypt(PollClient* c, const std::uint8_t* data, std::size_t n) {
  Connection::TlsStep step = c->receive_tls(data, n, &plain_);
  if (step != Connection::TlsStep::Failed) {
    if (c->wire_pending()) need_flush_ = true;  // An answer of the session's own.
    return true;
  }
  // A bad record after the handshake: the peer broke the protocol.
  if (c->admitted()) close_client(c, Reason::ProtocolError);
  else refuse_tls(c);
  return false;
}

void PollEngine::send_tls(PollClient* c) {
  ec_iovec pieces[EC_MAX_IOV];
  for (int k = 0; k < kSendsPerTurn; ++k) {
    if (!send_wire(c)) return;  // What the wire holds goes first.
    std::size_t bytes = 0;
    std::uint64_t end = 0;
    if (c->sealed_done(&bytes, &end)) fanout_.advance(c, bytes, end);
    if (!fanout_.pending(c)) break;
    // Whole frames, after any control bytes, into records in one pass.
    FrameLog::Gathered g = fanout_.gather(c, pieces, EC_MAX_IOV, kGatherBytes);
    if (g.pieces == 0) continue;  // Only the client's own frames: passed over.
    if (!c->seal(pieces, g.pieces, g.bytes, g.end)) {
      close_client(c, Reason::ClientError);
      return;
    }
  }
  bool owed = c->wire_pending();
  sends_done(c, c->finishing && !owed && fanout_.finished(c), owed);
}

}  // namespace poll
}  // namespace echocast
