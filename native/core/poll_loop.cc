// poll_loop.cc — the poll engine's I/O thread: the loop and everything it
// owns (see poll_engine.h).
#include <algorithm>
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
      ec_error err = ec_poller_wait_us(poller_, events.data(), events.size(), timeout_us(),
                                       &n, &woken);
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
    if (room_signal_.exchange(false, std::memory_order_acq_rel)) resume_paused();
    if (accept_resume_at_ != 0 && ec_now_ms() >= accept_resume_at_) resume_accept();
    commit_counters();  // Before the sends: stats never lag what clients got.
    if (flush_now()) flush();
    reap();
    if (stop_.stopping() && stop_progress()) break;
  }
  for (PollClient* c : clients_) close_client(c, Reason::ServerClosed);
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
  if (fanout_.paused() &&
      (fanout_.can_resume() || slow_clock() >= fanout_.pause_deadline()))
    return true;
  if (!log_grew_) return need_flush_;
  return coalescer_.due(fanout_.log().head_bytes(), need_flush_ || stop_.stopping());
}

void PollEngine::handle(const ec_poll_event& ev) {
  if (ev.data == &listener_) {
    accept_some();
    return;
  }
  PollClient* c = static_cast<PollClient*>(ev.data);
  if (c->closing) return;  // Closed earlier in this batch.
  if (ev.events & EC_POLL_OUT) {
    c->blocked = false;
    need_flush_ = true;
  }
  if (c->reading && !c->paused && (ev.events & (EC_POLL_IN | EC_POLL_HUP | EC_POLL_ERR))) {
    // docs/contract.md S7: what this turn appended may take a backlog past
    // the limit: the rest waits for the sends and the review (input stays
    // readable, level-triggered). A hang-up or error is read all the same:
    // that consumes it (it would be reported on every turn).
    if (!(ev.events & (EC_POLL_HUP | EC_POLL_ERR)) && !fanout_.input_open() &&
        !stop_.stopping()) {
      need_flush_ = true;
      return;
    }
    read_client(c);
    return;
  }
  if (ev.events & EC_POLL_ERR) {
    // Not reading (half-closed, or paused): a send would fail now.
    close_client(c, c->ending        ? Reason::ServerClosed
                   : c->half_closed ? Reason::ClientClosed
                                    : Reason::ClientError);
    return;
  }
  if ((ev.events & EC_POLL_HUP) && !c->reading) {
    if (c->ending) {
      close_client(c, Reason::ServerClosed);
    } else if (!c->blocked) {
      // Half-closed and hung up (finished both ways, see EC_POLL_HUP).
      // Level-triggered, it would be reported on every turn, so the
      // socket leaves the poller; the next send tells.
      set_interest(c, 0, true);
    }
  }
}

void PollEngine::accept_some() {
  for (int i = 0; i < kAcceptsPerTurn && listening_; ++i) {
    Accepted a;
    ec_error err = ec_socket_try_accept(listener_, &a.sock, &a.address, &a.port);
    if (err.code == EC_EAGAIN) return;
    if (!err.ok()) {
      AcceptStep step = accept_errors_.on_error(err, sink_);
      if (step == AcceptStep::Retry) continue;
      if (step == AcceptStep::Stop) {
        stop_listening();
        return;
      }
      // A shortage: stop watching the listener for a moment instead of
      // spinning on a connection that stays pending.
      ec_poller_modify(poller_, listener_, 0, &listener_);
      accept_resume_at_ = ec_now_ms() + kAcceptBackoffMs;
      return;
    }
    accept_errors_.accepted();
    admit(a);
  }
}

void PollEngine::resume_accept() {
  accept_resume_at_ = 0;
  if (listening_) ec_poller_modify(poller_, listener_, EC_POLL_IN, &listener_);
}

void PollEngine::stop_listening() {
  if (!listening_) return;
  ec_poller_remove(poller_, listener_);
  listening_ = false;
  accept_resume_at_ = 0;
  // The socket itself is closed by stop(), after this thread is joined.
}

void PollEngine::admit(const Accepted& a) {
  std::uint64_t id = 0;
  Reason refused = Reason::ServerFull;
  PollClient* c = nullptr;
  if (roster_.admit(clients_.size(), &id)) {
    refused = Reason::ClientError;
    c = new (std::nothrow)
        PollClient(options_.framing, static_cast<std::size_t>(options_.max_frame_bytes));
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
  c->id = id;
  c->sock = a.sock;
  c->registered = true;
  c->interest = EC_POLL_IN | EC_POLL_GATED;
  fanout_.join(c);
  clients_.push_back(c);
  by_id_[id] = c;
  clients_count_.store(by_id_.size(), std::memory_order_relaxed);
  need_flush_ = true;  // Replay.
  sink_->on_connection(id, a.address, a.port);
}

void PollEngine::read_client(PollClient* c) {
  bool closed = stop_.stopping() || input_closed_.load(std::memory_order_relaxed);
  bool forward = forward_ && !closed;
  bool messages = !closed && sink_->wants_messages();
  if ((forward || messages) && !sink_->events_room()) {
    // JS has too many event bytes pending: this client waits (its socket
    // fills, its sender slows down) until events_drained().
    c->paused = true;
    paused_.push_back(c);
    any_paused_.store(true, std::memory_order_release);
    update_interest(c);
    return;
  }
  std::size_t n = 0;
  std::size_t want = options_.framing == Framing::Raw ? kRawRecvBytes : kRecvBytes;
  ec_error err = ec_socket_try_recv(c->sock, buf_.get(), want, &n);
  if (err.code == EC_EAGAIN) return;
  if (!err.ok()) {
    close_client(c, c->ending ? Reason::ServerClosed : Reason::ClientError);
    return;
  }
  if (n == 0) {
    // End of stream: a partial frame is dropped (never fed again).
    if (c->ending) {
      close_client(c, Reason::ServerClosed);
      return;
    }
    c->half_closed = true;
    c->reading = false;
    // docs/contract.md S11: sent what is queued for it now, then closed
    // (send_to), at once if nothing is; with allowHalfOpen it keeps
    // receiving until a send fails.
    if (!options_.allow_half_open && fanout_.finish(c)) {
      close_client(c, Reason::ClientClosed);
      return;
    }
    update_interest(c);
    return;
  }
  if (closed) return;  // Input is closed: what arrives now is dropped.
  read_sink_.client = c;
  read_sink_.forward = forward;
  read_sink_.messages = messages;
  forwarded_.clear();
  bool ok = c->framer.feed(buf_.get(), n, &read_sink_);
  if (!forwarded_.frames.empty()) {
    sink_->on_frames(c->id, forwarded_.bytes.data(), forwarded_.bytes.size(),
                     forwarded_.frames.size(), false);
    if (forwarded_.bytes.capacity() > 2 * kRecvBytes) forwarded_ = FrameBatch();
  }
  if (!ok) close_client(c, Reason::FrameTooLarge);
}

void PollEngine::resume_paused() {
  std::vector<PollClient*> still;
  bool room = stop_.stopping() || sink_->events_room();
  for (PollClient* c : paused_) {
    if (c->closing || !c->paused) continue;
    if (!room) {
      still.push_back(c);
      continue;
    }
    c->paused = false;
    update_interest(c);
  }
  paused_.swap(still);
  any_paused_.store(!paused_.empty(), std::memory_order_release);
}

void PollEngine::take_commands() {
  inbox_.take(&commands_);
  for (Command& cmd : commands_) {
    switch (cmd.type) {
      case Command::Frames:
        if (stop_.stopping()) break;
        for (const FrameBatch::Extent& e : cmd.frames.frames)
          fanout_.append(cmd.frames.data(e), e.size, cmd.id);
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
      if (!c->closing && !c->blocked && fanout_.pending(c)) send_to(c);
  } else if (!fanout_.paused()) {
    return;
  }
  // While paused the O(N) review waits until it can change something: new
  // frames (the 2x cut), everyone back to half the limit, or the deadline.
  if (fanout_.paused() && !grew && !fanout_.can_resume() &&
      slow_clock() < fanout_.pause_deadline())
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

void PollEngine::send_to(PollClient* c) {
  ec_iovec pieces[EC_MAX_IOV];
  for (int k = 0; k < kSendsPerTurn && fanout_.pending(c); ++k) {
    FrameLog::Gathered g = fanout_.gather(c, pieces, EC_MAX_IOV, kGatherBytes);
    if (g.pieces == 0) continue;  // Only the client's own frames: passed over.
    std::size_t sent = 0;
    ec_error err = ec_socket_try_send(c->sock, pieces, g.pieces, &sent);
    if (err.code == EC_EAGAIN) {
      block(c);
      return;
    }
    if (!err.ok()) {
      close_client(c, c->ending        ? Reason::ServerClosed
                   : c->half_closed ? Reason::ClientClosed
                                    : Reason::ClientError);
      return;
    }
    fanout_.advance(c, sent, g.end);
    if (sent < g.bytes) {
      block(c);
      return;
    }
  }
  if (c->finishing && fanout_.finished(c)) {
    close_client(c, Reason::ClientClosed);  // docs/contract.md S11: all it was owed.
    return;
  }
  if (!fanout_.pending(c)) {
    if (c->interest & EC_POLL_OUT) update_interest(c);
  } else {
    need_flush_ = true;  // Out of sends for this turn, not blocked: next turn.
  }
}

void PollEngine::block(PollClient* c) {
  c->blocked = true;
  update_interest(c);
}

void PollEngine::update_interest(PollClient* c) {
  unsigned want = 0;
  if (c->reading && !c->paused) want |= EC_POLL_IN | EC_POLL_GATED;
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
  if (c->registered) ec_poller_remove(poller_, c->sock);
  c->registered = false;
  ec_socket_close(c->sock);
  c->sock = EC_INVALID_SOCKET;
  by_id_.erase(c->id);
  clients_count_.store(by_id_.size(), std::memory_order_relaxed);
  dead_ += 1;
  roster_.tally(reason);
  sink_->on_disconnect(c->id, reason_name(reason));
}

void PollEngine::reap() {
  if (dead_ == 0) return;
  dead_ = 0;
  auto keep = std::partition(clients_.begin(), clients_.end(),
                             [](PollClient* c) { return !c->closing; });
  for (auto it = keep; it != clients_.end(); ++it) delete *it;
  clients_.erase(keep, clients_.end());
  if (!paused_.empty()) {
    // Paused entries may point at freed clients: keep the live ones.
    std::vector<PollClient*> live;
    for (PollClient* c : paused_)
      if (by_id_.count(c->id) != 0 && by_id_[c->id] == c) live.push_back(c);
    paused_.swap(live);
    any_paused_.store(!paused_.empty(), std::memory_order_release);
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
  resume_paused();  // Nothing is forwarded or reported now: read freely.
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
      c->ending = true;
      ec_socket_shutdown_send(c->sock);
      if (c->half_closed) {
        close_client(c, Reason::ServerClosed);
      } else if (!c->registered || c->paused) {
        c->paused = false;
        update_interest(c);
      }
    }
    reap();
  }
  return stop_.done(now, clients_.empty());
}

}  // namespace poll
}  // namespace echocast
