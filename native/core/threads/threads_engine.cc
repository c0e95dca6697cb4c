// threads_engine.cc — the threads engine's face (start, stop, the calls
// from JS), its accept threads and its reaper (see threads_engine.h).
#include "threads_engine.h"

#include <new>
#include <vector>

#include "../stop_sequence.h"

namespace echocast {
namespace threads {

void Client::on_close(Reason reason) {
  bool framed = false;
  if (tls()) {
    // docs/contract.md S17: the close frame (when due) and our close_notify,
    // sealed, if the writer is not sending (its batch is sealed and sent
    // whole: between two, the stream is at a record's and a frame's end).
    if (!sending) {
      bool due = close_frame_due(*this);
      std::vector<std::uint8_t> frame;
      if (due) frame = farewell_.empty() ? close_frame_for(reason) : farewell_;
      std::string sealed;
      {
        ec_lock_guard lock(&tls_lock);
        ec_iovec piece = {frame.data(), frame.size()};
        if (!seal_into(&piece, due ? 1 : 0, &sealed)) sealed.clear();
        seal_close_notify();
        seal_into(nullptr, 0, &sealed);  // Not take_wire(): the control bytes are the reader's.
      }
      std::size_t sent = 0;
      bool whole = !sealed.empty() &&
                   ec_socket_send_now(sock, reinterpret_cast<const std::uint8_t*>(sealed.data()),
                                      sealed.size(), &sent)
                       .ok() &&
                   sent == sealed.size();
      framed = due && whole;
    }
  } else if (close_frame_due(*this)) {
    // The reader's own (its peer's close, a protocol error), or the one
    // for this reason (the session itself is the reader's alone).
    std::vector<std::uint8_t> frame = farewell_.empty() ? close_frame_for(reason) : farewell_;
    std::size_t sent = 0;
    framed =
        ec_socket_send_now(sock, frame.data(), frame.size(), &sent).ok() && sent == frame.size();
  }
  if (framed || reason == Reason::ServerClosed || (reason == Reason::ClientClosed && finishing)) {
    ec_socket_end(sock);
  } else {
    ec_socket_interrupt(sock);
  }
}

ThreadsEngine::ThreadsEngine(const EngineOptions& options, EventSink* sink)
    : options_(options),
      sink_(sink),
      hub_(fanout_options(options)),
      roster_(options.max_clients),
      handshakes_(max_handshakes(options), options.handshake_timeout_ms) {
  ws_config_ = handshake_config(options);
  ec_mutex_init(&mutex_);
  ec_cond_init(&reaper_cond_);
  ec_cond_init(&idle_cond_);
}

ThreadsEngine::~ThreadsEngine() {
  stop(0);
  ec_cond_destroy(&idle_cond_);
  ec_cond_destroy(&reaper_cond_);
  ec_mutex_destroy(&mutex_);
}

ListenResult ThreadsEngine::start() {
  ListenResult result;
  if (!open_listeners(options_, &listener_, &ws_listener_, &result)) return result;
  result.err =
      ec_thread_create(&reaper_thread_, &ThreadsEngine::reaper_main, this, EC_THREAD_STACK_BYTES);
  if (result.err.ok()) {
    result.err =
        ec_thread_create(&accept_thread_, &ThreadsEngine::accept_main, this, EC_THREAD_STACK_BYTES);
    if (result.err.ok() && ws_listener_ != nullptr) {
      result.err = ec_thread_create(&ws_accept_thread_, &ThreadsEngine::ws_accept_main, this,
                                    EC_THREAD_STACK_BYTES);
      if (!result.err.ok()) {
        ec_listener_wake(listener_);
        ec_thread_join(&accept_thread_);
      }
    }
    if (!result.err.ok()) end_reaper();
  }
  if (!result.err.ok()) {
    result.syscall = "thread_create";
    close_listener(&listener_);
    if (ws_listener_ != nullptr) close_listener(&ws_listener_);
    return result;
  }
  running_ = true;
  return result;
}

void ThreadsEngine::inject(const std::uint8_t* data, std::size_t len, std::uint64_t origin) {
  FrameBatch batch;
  split_into(options_.framing, data, len, &batch);
  std::vector<HubMember*> wake;
  hub_.append(batch, origin, false, &wake);  // Never waits.
}

void ThreadsEngine::disconnect(std::uint64_t id, const char* reason) {
  Reason r;
  if (!reason_from_name(reason, &r)) return;
  // Under the engine's lock the client cannot be finished and freed (the
  // reaper erases it under this lock before closing its socket). Lock
  // order: engine mutex, then hub lock, as everywhere else.
  ec_lock_guard lock(&mutex_);
  auto it = clients_.find(id);
  if (it != clients_.end()) hub_.close_member(it->second, r);
}

void ThreadsEngine::stop(std::uint64_t deadline_ms) {
  if (!running_) return;
  running_ = false;
  StopSequence seq;
  seq.begin(ec_now_ms(), deadline_ms);
  // Stop accepting: wake the accept thread and join it. After this no
  // client can be added.
  {
    ec_lock_guard lock(&mutex_);
    stopping_ = true;
    ec_cond_broadcast(&idle_cond_);  // Ends an accept back-off wait.
  }
  ec_listener_wake(listener_);
  ec_thread_join(&accept_thread_);
  ec_listener_close(listener_);
  listener_ = nullptr;
  if (ws_listener_ != nullptr) {
    ec_listener_wake(ws_listener_);
    ec_thread_join(&ws_accept_thread_);
    ec_listener_close(ws_listener_);
    ws_listener_ = nullptr;
    // Handshakes in progress are dropped (never admitted: no event).
    ec_lock_guard lock(&mutex_);
    interrupt_handshakes();
  }
  // Fix the set of frames to flush and give writers until the deadline.
  hub_.close_input();
  hub_.wait_drained(seq.flush_until());
  // Close every client gracefully: writers stop, and readers see end of
  // stream (POSIX at once; Windows when the peer answers the FIN). The
  // reaper joins the threads of each.
  seq.close_now(ec_now_ms(), true);
  hub_.close_all(Reason::ServerClosed);
  // Clients still there after the linger (a peer that does not close, a
  // writer stuck in send) are interrupted, abortively if the OS needs it.
  // Their sockets are still open: a socket is closed only after its
  // client has left clients_, and this runs under the lock.
  {
    ec_lock_guard lock(&mutex_);
    for (;;) {
      std::uint64_t now = ec_now_ms();
      if (seq.done(now, clients_.empty())) break;
      ec_cond_timed_wait(&idle_cond_, &mutex_, seq.next_ms() - now);
    }
    for (const auto& kv : clients_) ec_socket_interrupt(kv.second->sock);
    interrupt_handshakes();
    while (!clients_.empty() || !handshakes_.empty()) ec_cond_wait(&idle_cond_, &mutex_);
  }
  end_reaper();
  close_listener(&listener_);               // The listener is gone: releases the network.
  if (options_.has_ws()) ec_net_release();  // The WebSocket listener's share.
}

EngineStats ThreadsEngine::stats() {
  EngineStats s;
  {
    ec_lock_guard lock(&mutex_);
    s.clients = clients_.size();
    s.ws_clients = roster_.ws_clients();
  }
  s.disconnects = roster_.tallies();
  s.refusals = refusals_.tallies();
  s.counters = hub_.counters();
  s.read_pauses = hub_.read_pauses();
  s.read_paused_ms = hub_.read_paused_ms();
  return s;
}

void ThreadsEngine::end_reaper() {
  {
    ec_lock_guard lock(&mutex_);
    reaper_exit_ = true;
    ec_cond_signal(&reaper_cond_);
  }
  ec_thread_join(&reaper_thread_);
}

void ThreadsEngine::accept_loop(ec_listener* listener, bool ws) {
  AcceptErrors errors;
  for (;;) {
    Accepted a;
    ec_error err = ec_listener_accept(listener, &a.sock, &a.address, &a.port, &a.peer);
    if (err.code == EC_ECANCELED) return;
    if (err.ok()) {
      errors.accepted();
      if (!address_allowed(a, ws)) continue;
      if (ws) accept_ws(a);
      else if (options_.has_tls || options_.tcp_door()) accept_waiting(a);
      else admit(a);
      continue;
    }
    AcceptStep step = errors.on_error(err, sink_);
    if (step == AcceptStep::Stop) return;
    if (step == AcceptStep::Pause) {
      // Wait a little (woken at once by stop) instead of spinning on a
      // connection that stays in the kernel's queue.
      ec_lock_guard lock(&mutex_);
      if (!stopping_) ec_cond_timed_wait(&idle_cond_, &mutex_, kAcceptBackoffMs);
      if (stopping_) return;
    }
  }
}

void ThreadsEngine::admit(const Accepted& a) {
  Client* c = nullptr;
  std::uint64_t id;
  Reason refused = Reason::ServerFull;
  {
    ec_lock_guard lock(&mutex_);
    // Connections waiting to be authorized hold slots too (docs/contract.md S15).
    if (roster_.admit(clients_.size() + handshakes_.holding(), &id)) {
      c = new (std::nothrow)
          Client(options_.framing, static_cast<std::size_t>(options_.max_frame_bytes));
      if (c != nullptr) {
        c->start_tcp(&options_);
        c->set_peer(a.address, a.port);  // For a refusal's event (refuseHttp).
      }
      refused = Reason::ClientError;
      if (c == nullptr) roster_.tally(refused);
    }
    if (c != nullptr) {
      c->engine = this;
      c->id = id;
      c->sock = a.sock;
      // Reader, writer, and admit() itself: the reader can finish before
      // ec_thread_create returns, and the reaper must not see the client
      // (and delete it) before c->reader and c->reader_started are
      // written (ThreadSanitizer found the race).
      c->alive = 3;
      clients_[id] = c;
      roster_.joined(c->websocket());
      // In the hub before anyone can count it (stats().clients reads
      // clients_): a frame appended once the client is counted reaches it.
      hub_.join(c);
    }
  }
  if (c == nullptr) {
    ec_socket_close(a.sock);
    sink_->on_disconnect(id, reason_name(refused));
    return;
  }
  sink_->on_connection(id, a.address, a.port);
  ec_error err =
      ec_thread_create(&c->writer, &ThreadsEngine::writer_main, c, EC_THREAD_STACK_BYTES);
  c->writer_started = err.ok();
  if (err.ok()) {
    err = ec_thread_create(&c->reader, &ThreadsEngine::reader_main, c, EC_THREAD_STACK_BYTES);
    c->reader_started = err.ok();
    if (!err.ok()) {
      hub_.close_member(c, Reason::ClientError);  // The writer exits.
      thread_done(c);                             // For the reader never run.
    }
  } else {
    hub_.close_member(c, Reason::ClientError);
    thread_done(c);
    thread_done(c);
  }
  if (!err.ok()) sink_->on_error(err, "thread_create");
  thread_done(c);  // admit()'s own share: the reaper may take c from here.
}

void ThreadsEngine::thread_done(Client* c) {
  ec_lock_guard lock(&mutex_);
  if (--c->alive == 0) {
    dead_.push_back(c);
    ec_cond_signal(&reaper_cond_);
  }
}

void ThreadsEngine::reaper_loop() {
  std::vector<Client*> batch;
  for (;;) {
    {
      ec_lock_guard lock(&mutex_);
      for (;;) {
        // It also ends WebSocket handshakes that take too long.
        std::uint64_t now = ec_now_ms();
        std::uint64_t next = handshakes_.empty() ? 0 : expire_handshakes_locked(now);
        if (!dead_.empty() || reaper_exit_) break;
        if (next == 0) ec_cond_wait(&reaper_cond_, &mutex_);
        else ec_cond_timed_wait(&reaper_cond_, &mutex_, next - now);
      }
      if (dead_.empty()) return;  // reaper_exit_ and nothing left.
      batch.swap(dead_);
    }
    for (Client* c : batch) finish(c);
    batch.clear();
  }
}

void ThreadsEngine::finish(Client* c) {
  if (c->reader_started) ec_thread_join(&c->reader);
  if (c->writer_started) ec_thread_join(&c->writer);
  if (!c->admitted()) {
    // A WebSocket connection never admitted: no event, no tally.
    {
      ec_lock_guard lock(&mutex_);
      handshakes_.remove(c);
      if (clients_.empty() && handshakes_.empty()) ec_cond_broadcast(&idle_cond_);
    }
    ec_socket_close(c->sock);
    delete c;
    return;
  }
  Reason reason = Reason::ClientClosed;
  hub_.reason(c, &reason);
  hub_.leave(c);
  std::uint64_t id = c->id;
  {
    ec_lock_guard lock(&mutex_);
    // Before the close: stop() may interrupt clients_.
    if (clients_.erase(c->id) != 0) roster_.left(c->websocket());
    roster_.tally(reason);
    if (clients_.empty() && handshakes_.empty()) ec_cond_broadcast(&idle_cond_);
  }
  ec_socket_close(c->sock);
  delete c;
  sink_->on_disconnect(id, reason_name(reason));
}

}  // namespace threads

std::unique_ptr<Engine> make_threads_engine(const EngineOptions& options, EventSink* sink) {
  return std::unique_ptr<Engine>(new threads::ThreadsEngine(options, sink));
}

}  // namespace echocast
