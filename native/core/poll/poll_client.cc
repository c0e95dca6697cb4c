// poll_client.cc — the poll engine's work on one client, on the loop
// thread: reading into its Connection, sending (its wire: control bytes at
// a frame boundary, then its frames from the log), its poller interest, its
// close, and the WebSocket handshake before admission (see poll_engine.h);
// who may connect is poll_door.cc, the TLS stage poll_tls.cc.
// docs/architecture.md says which file owns which rule.
#include <new>
#include <vector>

#include "poll_engine.h"

namespace echocast {
namespace poll {

void PollEngine::read_client(PollClient* c) {
  bool closed = stop_.stopping() || input_closed_.load(std::memory_order_relaxed);
  bool forward = forward_ && !closed;
  bool messages = !closed && sink_->wants_messages();
  if ((forward || messages) && !sink_->events_room()) {
    // JS has too many event bytes queued: this client is held (its socket
    // fills, its sender slows down) until events_drained().
    c->held = true;
    held_.push_back(c);
    any_held_.store(true, std::memory_order_release);
    update_interest(c);
    return;
  }
  std::size_t n = 0;
  std::size_t want =
      options_.framing == Framing::Raw ? kRawRecvBytes : fanout_.read_bytes(kRecvBytes);
  ec_error err = ec_socket_try_recv(c->sock, buf_.get(), want, &n);
  if (err.code == EC_EAGAIN) return;
  if (!err.ok()) {
    close_client(c, c->failure_reason());
    return;
  }
  if (n == 0) {
    // End of stream: a partial frame is dropped (never fed again).
    if (c->state() == Connection::State::Ending) {
      close_client(c, Reason::ServerClosed);
      return;
    }
    // docs/contract.md S11: sent what is queued for it now, then closed
    // (send_to), at once if nothing is; with allowHalfOpen it keeps
    // receiving until a send fails (not a WebSocket: it has no half-close).
    if (c->peer_finished(options_.allow_half_open) && fanout_.finish(c)) {
      close_client(c, Reason::ClientClosed);
      return;
    }
    update_interest(c);
    return;
  }
  if (closed) return;  // Input is closed: what arrives now is dropped.
  read_sink_.forward = forward;
  read_sink_.messages = messages;
  if (!c->tls()) {
    consume(c, buf_.get(), n);
    return;
  }
  // docs/contract.md S17: the records' plaintext goes on as a read would.
  if (!decrypt(c, buf_.get(), n) || plain_.empty()) return;
  consume(c, plain_.data(), plain_.size());
}

bool PollEngine::consume(PollClient* c, const std::uint8_t* data, std::size_t n) {
  read_sink_.client = c;
  forwarded_.clear();
  bool ok = c->feed(data, n, &read_sink_);
  // docs/contract.md S15: an HTTP request line as its first frame.
  if (!ok && c->refused_http())
    report_refusal(&refusals_, sink_, Refusal::Http, false, c->peer_address(), c->peer_port());
  if (c->control_pending()) need_flush_ = true;  // A pong.
  if (!forwarded_.frames.empty()) {
    sink_->on_frames(c->id, forwarded_.bytes.data(), forwarded_.bytes.size(),
                     forwarded_.frames.size(), false);
    if (forwarded_.bytes.capacity() > 2 * kRecvBytes) forwarded_ = FrameBatch();
  }
  if (!ok) close_client(c, c->close_reason());
  return ok;
}

void PollEngine::release_held() {
  std::vector<PollClient*> still;
  bool room = stop_.stopping() || sink_->events_room();
  for (PollClient* c : held_) {
    if (c->closing || !c->held) continue;
    if (!room) {
      still.push_back(c);
      continue;
    }
    c->held = false;
    update_interest(c);
  }
  held_.swap(still);
  any_held_.store(!held_.empty(), std::memory_order_release);
}

void PollEngine::send_to(PollClient* c) {
  if (c->tls()) {
    send_tls(c);
    return;
  }
  ec_iovec pieces[EC_MAX_IOV];
  for (int k = 0; k < kSendsPerTurn; ++k) {
    // A WebSocket client's control bytes go first, at a frame boundary; in
    // the middle of a frame, the rest of that frame goes first.
    bool control = c->control_pending();
    if (control && c->cursor.offset == 0) {
      if (!send_wire(c)) return;
      continue;
    }
    if (!fanout_.pending(c)) break;
    FrameLog::Gathered g = fanout_.gather(c, pieces, EC_MAX_IOV, control ? 1 : kGatherBytes);
    if (g.pieces == 0) continue;  // Only the client's own frames: passed over.
    std::size_t sent = 0;
    ec_error err = ec_socket_try_send(c->sock, pieces, g.pieces, &sent);
    if (err.code == EC_EAGAIN) {
      block(c);
      return;
    }
    if (!err.ok()) {
      close_client(c, c->failure_reason());
      return;
    }
    fanout_.advance(c, sent, g.end);
    if (sent < g.bytes) {
      block(c);
      return;
    }
  }
  sends_done(c, c->finishing && fanout_.finished(c), c->control_pending());
}

void PollEngine::sends_done(PollClient* c, bool finished, bool owed) {
  if (finished) {
    close_client(c, Reason::ClientClosed);  // docs/contract.md S11: all it was owed.
    return;
  }
  if (!fanout_.pending(c) && !owed) {
    if (c->interest & EC_POLL_OUT) update_interest(c);
  } else {
    need_flush_ = true;  // Out of sends for this turn, not blocked: next turn.
  }
}

PollEngine::WireSend PollEngine::write_wire(PollClient* c) {
  while (c->wire_pending()) {
    ec_iovec piece = {c->wire_data(), c->wire_size()};
    std::size_t sent = 0;
    ec_error err = ec_socket_try_send(c->sock, &piece, 1, &sent);
    if (err.code == EC_EAGAIN) return WireSend::Waits;
    if (!err.ok()) return WireSend::Failed;
    c->wire_sent(sent);
    if (sent < piece.len) return WireSend::Waits;
  }
  return WireSend::Sent;
}

bool PollEngine::send_wire(PollClient* c) {
  switch (write_wire(c)) {
    case WireSend::Sent:
      return true;
    case WireSend::Waits:
      block(c);
      return false;
    case WireSend::Failed:
      close_client(c, c->failure_reason());
      return false;
  }
  return false;
}

void PollEngine::block(PollClient* c) {
  c->blocked = true;
  update_interest(c);
}

void PollEngine::update_interest(PollClient* c) {
  unsigned want = 0;
  if (c->reading() && !c->held) want |= EC_POLL_IN | EC_POLL_GATED;
  if (c->blocked) want |= EC_POLL_OUT;
  set_interest(c, want, false);
}

void PollEngine::set_interest(PollClient* c, unsigned want, bool park) {
  if (park) {
    if (c->registered) ec_poller_remove(poller_, c->sock);
    c->registered = false;
    c->interest = 0;
    return;
  }
  if (c->registered && c->interest == want) return;
  ec_error err = c->registered ? ec_poller_modify(poller_, c->sock, want, c)
                               : ec_poller_add(poller_, c->sock, want, c);
  if (!err.ok()) {
    close_client(c, Reason::ClientError);
    return;
  }
  c->registered = true;
  c->interest = want;
}

void PollEngine::close_client(PollClient* c, Reason reason) {
  if (!fanout_.close(c, reason)) return;
  fanout_.leave(c);
  send_close_frame(c, reason);
  c->closed();
  if (c->registered) ec_poller_remove(poller_, c->sock);
  c->registered = false;
  ec_socket_close(c->sock);
  c->sock = EC_INVALID_SOCKET;
  if (by_id_.erase(c->id) != 0) roster_.left(c->websocket());
  clients_count_.store(by_id_.size(), std::memory_order_relaxed);
  dead_ += 1;
  roster_.tally(reason);
  sink_->on_disconnect(c->id, reason_name(reason));
}

// ---- WebSocket --------------------------------------------------------------

void PollEngine::accept_ws(const Accepted& a) {
  PollClient* c = nullptr;
  // Handshakes in progress are bounded like clients (they hold a socket and
  // up to a request head each), and are not counted as clients.
  if (handshakes_.full()) {
    ec_socket_close(a.sock);
    report_refusal(&refusals_, sink_, Refusal::HandshakeLimit, true, a.address, a.port);
    return;
  }
  c = new (std::nothrow)
      PollClient(options_.framing, static_cast<std::size_t>(options_.max_frame_bytes));
  if (c != nullptr &&
      (!c->start_websocket(&ws_config_) || (options_.has_tls && !c->start_tls(tls_.get())))) {
    delete c;
    c = nullptr;
  }
  if (!watch_waiting(c, a)) return;
  handshakes_.add(c, ec_now_ms());
}

bool PollEngine::watch_waiting(PollClient* c, const Accepted& a) {
  if (c == nullptr) {
    ec_socket_close(a.sock);
    return false;
  }
  // Not gated: a handshake or the door goes on while reading from clients
  // is paused.
  ec_error err = ec_poller_add(poller_, a.sock, EC_POLL_IN, c);
  if (!err.ok()) {
    delete c;
    ec_socket_close(a.sock);
    sink_->on_error(err, "poll");
    return false;
  }
  c->sock = a.sock;
  c->registered = true;
  c->interest = EC_POLL_IN;
  c->set_peer(a.address, a.port);
  return true;
}

void PollEngine::handle_handshake(PollClient* c, const ec_poll_event& ev) {
  if (c->state() == Connection::State::AwaitingTls) {
    handle_tls(c, ev);
    return;
  }
  // The TLS handshake's last bytes, still on their way.
  if ((ev.events & EC_POLL_OUT) && c->tls() && c->state() != Connection::State::Answering &&
      !send_waiting(c))
    return;
  if (c->state() == Connection::State::AwaitingToken ||
      c->state() == Connection::State::Authorizing) {
    handle_door(c, ev);
    return;
  }
  if ((ev.events & EC_POLL_OUT) && c->state() == Connection::State::Answering) {
    if (!answer(c)) return;
  }
  if (!(ev.events & (EC_POLL_IN | EC_POLL_HUP | EC_POLL_ERR))) return;
  std::size_t n = 0;
  // At most one request head (and what follows it) per read.
  ec_error err = ec_socket_try_recv(c->sock, buf_.get(), kRecvBytes, &n);
  if (err.code == EC_EAGAIN) return;
  if (!err.ok() || n == 0) {
    drop_handshake(c);  // Gone before its upgrade, or answered and done.
    return;
  }
  // Whatever it sends after our answer is dropped.
  if (c->state() != Connection::State::AwaitingUpgrade) return;
  if (!c->tls()) {
    handshake_bytes(c, buf_.get(), n);
    return;
  }
  if (!decrypt(c, buf_.get(), n) || plain_.empty()) return;
  std::vector<std::uint8_t> plain;
  plain.swap(plain_);  // handshake_bytes() may read again into plain_.
  handshake_bytes(c, plain.data(), plain.size());
  plain.swap(plain_);
}

void PollEngine::handshake_bytes(PollClient* c, const std::uint8_t* data, std::size_t n) {
  std::size_t consumed = 0;
  ws::Handshake::Result r = c->handshake(data, n, &consumed);
  if (r == ws::Handshake::Result::NeedMore) return;
  if (r == ws::Handshake::Result::Upgrade) {
    if (c->state() == Connection::State::Authorizing) {
      // docs/contract.md S15: the hook decides; what came after the head
      // waits with the 101. Beyond max_clients: today's server-full.
      c->hold(data + consumed, n - consumed);
      if (roster_.has_room(clients_.size() + handshakes_.holding())) {
        ask(c);
      } else {
        c->answer(true);
        std::vector<std::uint8_t> held = c->take_held();
        upgrade(c, held.data(), held.size());
      }
      return;
    }
    upgrade(c, data + consumed, n - consumed);
    return;
  }
  Refusal cause;
  if (c->handshake_refused(&cause))  // docs/contract.md S15: 403 or 401.
    report_refusal(&refusals_, sink_, cause, true, c->peer_address(), c->peer_port());
  answer(c);  // The page or an error status, then the end.
}

bool PollEngine::answer(PollClient* c) {
  // docs/contract.md S17: the answer is the last thing it is sent, then our
  // close_notify (sealed once).
  if (c->wire_pending()) c->seal_close_notify();
  // Watching for OUT while the rest waits, for IN alone once all is sent.
  if (!send_waiting(c)) return false;
  if (c->wire_pending()) return true;
  // All sent: end of stream for the peer; its own end of stream (or the
  // deadline) drops the connection.
  ec_socket_shutdown_send(c->sock);
  c->answered();
  return true;
}

void PollEngine::upgrade(PollClient* c, const std::uint8_t* data, std::size_t len) {
  std::uint64_t id = 0;
  std::size_t waiting = handshakes_.holding() - (c->holds_slot() ? 1 : 0);
  if (!c->admit(&roster_, clients_.size() + waiting, &id)) {
    // docs/contract.md §6: the upgrade completes, then close 1013
    // server-full (queued by admit); reported as for TCP.
    sink_->on_disconnect(id, reason_name(Reason::ServerFull));
    answer(c);
    return;
  }
  // Out of the handshake list, into the clients.
  handshakes_.remove(c);
  c->ws = true;
  enroll(c, id, c->peer_address(), c->peer_port());
  update_interest(c);
  // Bytes that came with the head: the first WebSocket frames.
  consume_first(c, data, len);
}

void PollEngine::consume_first(PollClient* c, const std::uint8_t* data, std::size_t len) {
  if (c->closing || len == 0) return;
  bool closed = stop_.stopping() || input_closed_.load(std::memory_order_relaxed);
  if (closed) return;
  read_sink_.forward = forward_;
  read_sink_.messages = sink_->wants_messages();
  consume(c, data, len);
}

void PollEngine::drop_handshake(PollClient* c) {
  if (c->closing) return;
  c->closing = true;
  c->closed();
  if (c->registered) ec_poller_remove(poller_, c->sock);
  c->registered = false;
  ec_socket_close(c->sock);
  c->sock = EC_INVALID_SOCKET;
  handshakes_.remove(c);
  forget_ticket(c);
  dead_handshakes_.push_back(c);
}

void PollEngine::forget_ticket(PollClient* c) {
  if (c->ticket != 0) tickets_.erase(c->ticket);
  c->ticket = 0;
}

void PollEngine::expire_handshakes() {
  expired_.clear();
  std::uint64_t now = ec_now_ms();
  handshakes_.expire(now, &expired_);
  for (Connection* e : expired_) {
    PollClient* c = static_cast<PollClient*>(e);
    if (c->closing) continue;
    Refusal cause;
    if (c->expire(&cause)) {
      // docs/contract.md S15: a head that did not come in time, no token,
      // no answer from the hook; S17: a TLS handshake not done in time.
      report_refusal(&refusals_, sink_, cause, c->websocket(), c->peer_address(), c->peer_port(),
                     cause == Refusal::Tls ? c->tls_failure() : std::string());
      forget_ticket(c);
      if (c->state() == Connection::State::Answering) {
        // A WebSocket connection's 403: sent, then a moment for its end.
        handshakes_.extend(c, now + kAnswerLingerMs);
        answer(c);
        continue;
      }
    }
    drop_handshake(c);
  }
  expired_.clear();
}

void PollEngine::send_close_frame(PollClient* c, Reason reason) {
  if (c->sock == EC_INVALID_SOCKET) return;
  if (c->tls()) {
    // After what the wire holds (whole frames): the close frame, sealed,
    // then our close_notify (docs/contract.md S17), if the socket takes
    // them now.
    bool framed = c->close_frame_due(*c) && c->seal_close_frame(reason);
    c->seal_close_notify();
    if (!c->wire_pending()) return;
    write_wire(c);
    if (!framed) return;
  } else {
    if (!c->close_frame_due(*c)) return;
    std::vector<std::uint8_t> frame = c->close_frame(reason);
    bool control = c->control_pending();
    ec_iovec pieces[2] = {{control ? c->control_data() : nullptr, control ? c->control_size() : 0},
                          {frame.data(), frame.size()}};
    std::size_t first = control ? 0 : 1;
    std::size_t sent = 0;
    ec_socket_try_send(c->sock, pieces + first, 2 - first, &sent);
  }
  if (reason == Reason::ServerClosed) return;  // Stop: the peer's answer is awaited.
  // Closing at once: read what the peer sent meanwhile, so that the close
  // does not reset the connection (which could lose our close frame).
  for (int i = 0; i < 4; ++i) {
    std::size_t n = 0;
    if (!ec_socket_try_recv(c->sock, buf_.get(), kRecvBytes, &n).ok() || n == 0) break;
  }
}

}  // namespace poll
}  // namespace echocast
