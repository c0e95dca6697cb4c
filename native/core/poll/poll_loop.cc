// poll_loop.cc — the poll engine's I/O thread: the loop, accepting and
// admission, the commands from JS, the flush and review, and the stop (see
// poll_engine.h; one client's reads, sends and handshake are in
// poll_client.cc, who may connect in poll_door.cc, TLS in poll_tls.cc).
#include <algorithm>
#include <new>
#include <string>
#include <vector>

#include "poll_engine.h"

namespace echocast {
namespace poll {

namespace {
// The flow-control clock; +1 keeps it from ever reading 0 ("not paused").
std::uint64_t slow_clock() { return ec_now_ms() + 1; }
}  // namespace

void PollEngine::loop() {
  std::vector<ec_poll_event> events(kMaxEvents);
  bool broken = false;
  // Frames injected before start (a cluster node's replay history) enter
  // the log before any client can join.
  take_commands();
  for (;;) {
    std::size_t n = 0;
    bool woken = false;
    if (!broken) {
      ec_error err =
          ec_poller_wait_us(poller_, events.data(), events.size(), timeout_us(), &n, &woken);
      if (!err.ok()) {
        // Cannot happen with a valid poller; report it and serve commands
        // only (stop ends the loop) rather than spin.
        sink_->on_error(err, "poll");
        broken = true;
      }
    }
    if (broken) {
      inbox_.wait(kBrokenWaitMs);
      n = 0;
    }
    // Commands first: they were queued before this wait returned.
    if (inbox_.pending()) take_commands();
    for (std::size_t i = 0; i < n; ++i) handle(events[i]);
    // Batching without coalescing: when this turn read client frames, look
    // once more (without sleeping) for input that arrived meanwhile, so
    // that one send per client carries it too.
    if (!coalescer_.enabled() && log_grew_ && !broken && n < kMaxEvents) {
      std::size_t more = 0;
      bool woken2 = false;
      if (ec_poller_wait(poller_, events.data(), events.size(), 0, &more, &woken2).ok())
        for (std::size_t i = 0; i < more; ++i) handle(events[i]);
      if (woken2 && inbox_.pending()) take_commands();
    }
    if (room_signal_.exchange(false, std::memory_order_acq_rel)) release_held();
    if (accept_resume_at_ != 0 && ec_now_ms() >= accept_resume_at_) resume_accept();
    if (handshakes_.next_deadline() != 0 && ec_now_ms() >= handshakes_.next_deadline())
      expire_handshakes();
    commit_counters();  // Before the sends: stats never lag what clients got.
    if (flush_now()) flush();
    reap();
    if (stop_.stopping() && stop_progress()) break;
  }
  for (PollClient* c : clients_) close_client(c, Reason::ServerClosed);
  while (!handshakes_.empty())
    drop_handshake(static_cast<PollClient*>(handshakes_.connections().back()));
  reap();
  stop_listening();
}

int PollEngine::timeout_ms() const {
  // Commands queued before the loop started (inject before start) or
  // whose wake-up was coalesced: do not sleep on them.
  if (inbox_.pending()) return 0;
  if (need_flush_) return 0;  // A client left with sends for the next turn.
  std::uint64_t until = stop_.next_ms();
  if (accept_resume_at_ != 0 && (until == 0 || accept_resume_at_ < until))
    until = accept_resume_at_;
  std::uint64_t handshake_due = handshakes_.next_deadline();
  if (handshake_due != 0 && (until == 0 || handshake_due < until)) until = handshake_due;
  // Reading is paused: wake at its deadline (slow_clock time, 1 ms late at most).
  if (fanout_.paused() && (until == 0 || fanout_.pause_deadline() < until))
    until = fanout_.pause_deadline();
  if (until == 0) return -1;
  std::uint64_t now = ec_now_ms();
  if (now >= until) return 0;
  std::uint64_t wait = until - now;
  return wait > 60000 ? 60000 : static_cast<int>(wait);
}

std::int64_t PollEngine::timeout_us() const {
  int ms = timeout_ms();
  std::int64_t held = ms == 0 ? -1 : coalescer_.wait_us();
  if (held < 0) return ms < 0 ? -1 : std::int64_t{ms} * 1000;
  return ms < 0 ? held : std::min(held, std::int64_t{ms} * 1000);
}

bool PollEngine::flush_now() {
  // Paused: the review that ends the pause is due (clients caught up, or
  // the deadline came), even if nothing is to be sent.
  if (fanout_.paused() && (fanout_.can_resume() || slow_clock() >= fanout_.pause_deadline()))
    return true;
  if (!log_grew_) return need_flush_;
  return coalescer_.due(fanout_.log().head_bytes(), need_flush_ || stop_.stopping());
}

void PollEngine::handle(const ec_poll_event& ev) {
  if (ev.data == &listener_) {
    accept_some(listener_, false);
    return;
  }
  if (ev.data == &ws_listener_) {
    accept_some(ws_listener_, true);
    return;
  }
  PollClient* c = static_cast<PollClient*>(ev.data);
  if (c->closing) return;  // Closed earlier in this batch.
  if (c->in_handshake()) {
    handle_handshake(c, ev);
    return;
  }
  if (ev.events & EC_POLL_OUT) {
    c->blocked = false;
    need_flush_ = true;
  }
  if (c->reading() && !c->held && (ev.events & (EC_POLL_IN | EC_POLL_HUP | EC_POLL_ERR))) {
    // docs/contract.md S7: what this turn appended may take a backlog past
    // the limit: the rest waits for the sends and the review (input stays
    // readable, level-triggered). A hang-up or error is read all the same:
    // that consumes it (it would be reported on every turn).
    if (!(ev.events & (EC_POLL_HUP | EC_POLL_ERR)) && !fanout_.input_open() && !stop_.stopping()) {
      need_flush_ = true;
      return;
    }
    read_client(c);
    return;
  }
  if (ev.events & EC_POLL_ERR) {
    // Not reading (half-closed, or held): a send would fail now.
    close_client(c, c->failure_reason());
    return;
  }
  if ((ev.events & EC_POLL_HUP) && !c->reading()) {
    if (c->state() == Connection::State::Ending) {
      close_client(c, Reason::ServerClosed);
    } else if (!c->blocked) {
      // Half-closed and hung up (finished both ways, see EC_POLL_HUP).
      // Level-triggered, it would be reported on every turn, so the
      // socket leaves the poller; the next send tells.
      set_interest(c, 0, true);
    }
  }
}

void PollEngine::accept_some(ec_socket_t listener, bool ws) {
  for (int i = 0; i < kAcceptsPerTurn && listening_; ++i) {
    Accepted a;
    ec_error err = ec_socket_try_accept(listener, &a.sock, &a.address, &a.port, &a.peer);
    if (err.code == EC_EAGAIN) return;
    if (!err.ok()) {
      AcceptStep step = accept_errors_.on_error(err, sink_);
      if (step == AcceptStep::Retry) continue;
      if (step == AcceptStep::Stop) {
        stop_listening();
        return;
      }
      // A shortage: stop watching the listener for a moment instead of
      // spinning on a connection that stays in the kernel's queue.
      ec_poller_modify(poller_, listener_, 0, &listener_);
      if (ws_listener_ != EC_INVALID_SOCKET)
        ec_poller_modify(poller_, ws_listener_, 0, &ws_listener_);
      accept_resume_at_ = ec_now_ms() + kAcceptBackoffMs;
      return;
    }
    accept_errors_.accepted();
    if (!address_allowed(a, ws)) continue;
    if (ws) accept_ws(a);
    else if (options_.has_tls || options_.tcp_door()) accept_waiting(a);
    else admit(a);
  }
}

void PollEngine::resume_accept() {
  accept_resume_at_ = 0;
  if (!listening_) return;
  ec_poller_modify(poller_, listener_, EC_POLL_IN, &listener_);
  if (ws_listener_ != EC_INVALID_SOCKET)
    ec_poller_modify(poller_, ws_listener_, EC_POLL_IN, &ws_listener_);
}

void PollEngine::stop_listening() {
  if (!listening_) return;
  ec_poller_remove(poller_, listener_);
  if (ws_listener_ != EC_INVALID_SOCKET) ec_poller_remove(poller_, ws_listener_);
  listening_ = false;
  accept_resume_at_ = 0;
  // The socket itself is closed by stop(), after this thread is joined.
}

void PollEngine::admit(const Accepted& a) {
  std::uint64_t id = 0;
  Reason refused = Reason::ServerFull;
  PollClient* c = nullptr;
  // Connections waiting to be authorized hold slots too (docs/contract.md S15).
  if (roster_.admit(clients_.size() + handshakes_.holding(), &id)) {
    refused = Reason::ClientError;
    c = new (std::nothrow)
        PollClient(options_.framing, static_cast<std::size_t>(options_.max_frame_bytes));
    if (c != nullptr) {
      c->start_tcp(&options_);
      c->set_peer(a.address, a.port);  // For a refusal's event (refuseHttp).
    }
  }
  if (c != nullptr) {
    ec_error err = ec_poller_add(poller_, a.sock, EC_POLL_IN | EC_POLL_GATED, c);
    if (!err.ok()) {
      delete c;
      c = nullptr;
      sink_->on_error(err, "poll");
    }
  }
  if (c == nullptr) {
    ec_socket_close(a.sock);
    if (refused != Reason::ServerFull) roster_.tally(refused);
    sink_->on_disconnect(id, reason_name(refused));
    return;
  }
  c->sock = a.sock;
  c->registered = true;
  c->interest = EC_POLL_IN | EC_POLL_GATED;
  enroll(c, id, a.address, a.port);
}

void PollEngine::enroll(PollClient* c, std::uint64_t id, const std::string& address, int port) {
  c->id = id;
  // framesIn counts every frame that entered before this client joined by
  // the time its connection event is pushed (contract S8): publish the
  // turn's count first.
  commit_counters();
  // In the fanout before it is counted (stats().clients): a frame appended
  // from now on reaches it.
  fanout_.join(c);
  clients_.push_back(c);
  by_id_[id] = c;
  roster_.joined(c->websocket());
  clients_count_.store(by_id_.size(), std::memory_order_relaxed);
  need_flush_ = true;  // Replay (for a WebSocket client, after its 101).
  sink_->on_connection(id, address, port);
}

void PollEngine::take_commands() {
  inbox_.take(&commands_);
  for (Command& cmd : commands_) {
    switch (cmd.type) {
      case Command::Frames:
        if (stop_.stopping()) break;
        for (const FrameBatch::Extent& e : cmd.frames.frames)
          fanout_.append(cmd.frames.data(e), e.size, e.payload_offset, e.payload_size, cmd.id);
        log_grew_ = true;
        break;
      case Command::Disconnect: {
        auto it = by_id_.find(cmd.id);
        if (it != by_id_.end()) close_client(it->second, cmd.reason);
        break;
      }
      case Command::Forward:
        forward_ = cmd.on;
        break;
      case Command::Stop:
        begin_stop(cmd.deadline_ms);
        break;
      case Command::Answer:
        take_answer(cmd);
        break;
    }
  }
  commands_.clear();
}

void PollEngine::flush() {
  bool grew = log_grew_;
  if (log_grew_ || need_flush_) {
    log_grew_ = false;
    need_flush_ = false;
    coalescer_.flushed(fanout_.log().head_bytes());
    for (PollClient* c : clients_)
      if (!c->closing && !c->blocked && (fanout_.pending(c) || c->wire_pending())) send_to(c);
  } else if (!fanout_.paused()) {
    return;
  }
  // While paused the O(N) review waits until it can change something: new
  // frames (the 2x cut), everyone back to half the limit, or the deadline.
  if (fanout_.paused() && !grew && !fanout_.can_resume() && slow_clock() < fanout_.pause_deadline())
    return;
  review();
}

void PollEngine::review() {
  cut_.clear();
  fanout_.review(&slow_clock, &cut_);
  for (FanoutMember* m : cut_) close_client(static_cast<PollClient*>(m), Reason::SlowConsumer);
  cut_.clear();
  // Stopping, input is dropped anyway and end of stream must be seen.
  bool open = !fanout_.paused() || stop_.stopping();
  if (open != gate_open_) {
    ec_poller_gate_input(poller_, open);
    gate_open_ = open;
  }
}

void PollEngine::reap() {
  for (PollClient* c : dead_handshakes_) delete c;
  dead_handshakes_.clear();
  if (dead_ == 0) return;
  dead_ = 0;
  auto keep =
      std::partition(clients_.begin(), clients_.end(), [](PollClient* c) { return !c->closing; });
  for (auto it = keep; it != clients_.end(); ++it) delete *it;
  clients_.erase(keep, clients_.end());
  if (!held_.empty()) {
    // Held entries may point at freed clients: keep the live ones.
    std::vector<PollClient*> live;
    for (PollClient* c : held_)
      if (by_id_.count(c->id) != 0 && by_id_[c->id] == c) live.push_back(c);
    held_.swap(live);
    any_held_.store(!held_.empty(), std::memory_order_release);
  }
}

void PollEngine::commit_counters() {
  if (turn_frames_in_ == 0) return;
  fanout_.count_in(turn_frames_in_, turn_bytes_in_);
  turn_frames_in_ = turn_bytes_in_ = 0;
}

void PollEngine::begin_stop(std::uint64_t deadline_ms) {
  if (!stop_.begin(ec_now_ms(), deadline_ms)) return;
  stop_listening();
  while (!handshakes_.empty())  // Never admitted: no event.
    drop_handshake(static_cast<PollClient*>(handshakes_.connections().back()));
  release_held();     // Nothing is forwarded or reported now: read freely.
  if (!gate_open_) {  // Nor paced: what arrives is dropped, end of stream must be seen.
    ec_poller_gate_input(poller_, true);
    gate_open_ = true;
  }
}

bool PollEngine::stop_progress() {
  std::uint64_t now = ec_now_ms();
  if (stop_.close_now(now, fanout_.drained())) {
    // The graceful close. The send side is shut (the peer reads what was
    // sent, then end of stream); the peer's answer closes the socket.
    for (PollClient* c : clients_) {
      if (c->closing) continue;
      bool half_closed = c->state() == Connection::State::Finishing;
      c->end();
      // docs/contract.md §6: a WebSocket client is told with close 1001.
      send_close_frame(c, Reason::ServerClosed);
      ec_socket_shutdown_send(c->sock);
      if (half_closed) {
        close_client(c, Reason::ServerClosed);
      } else if (!c->registered || c->held) {
        c->held = false;
        update_interest(c);
      }
    }
    reap();
  }
  return stop_.done(now, clients_.empty());
}

}  // namespace poll
}  // namespace echocast
