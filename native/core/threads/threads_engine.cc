// engine_threads.cc — the threads engine, the seed's model: one accept
// thread, and per client a reader thread (blocking recv -> framer -> hub)
// and a writer thread (sleeps on its condition variable, gathers its bytes
// from the log under the lock and sends them outside it). A reaper thread
// joins the threads of finished clients, closes their sockets and reports
// the disconnect, so finished clients cost nothing.
//
// The rules are the core's (fanout.h through hub.h, roster.h,
// stop_sequence.h); this file is only the I/O model: threads, blocking
// sockets and condition variables.
//
// Closing a client: whoever decides first (reader: a recv error or an
// oversized frame; writer: a send error, or the last byte owed to a client
// that closed its side; another reader's append: slow-consumer; stop:
// server-closed) calls Hub::close_member (or the hub does), which records
// the reason and interrupts the socket under the hub's lock. That wakes both
// threads; each exits, the last one hands the client to the reaper, and
// only the reaper closes the socket, after joining both threads.
//
// End of stream (docs/contract.md S11): without allowHalfOpen the reader
// hands the client to Hub::finish_member, which closes it (client-closed)
// once it has been sent what was queued for it, at once if nothing was; the
// reaper then frees its slot. With allowHalfOpen it keeps receiving until a
// send fails.
//
// Flow control (S7) needs nothing per client here: readers block in recv,
// and while reading is paused their next append waits in the hub.
//
// WebSocket clients (docs/contract.md §6), with a WebSocket listener: a
// second accept thread takes its connections; each gets its reader thread
// at once, which reads the request head while the connection awaits its
// upgrade in the handshake list (handshake_list.h): no id, no event, no
// writer; the reaper interrupts one still there after kWsHandshakeMs. On an
// upgrade the reader sends the 101 itself and admits the client through the
// roster (Connection::admit; a refusal: close 1013 server-full, reported as
// for TCP); the page or an error status is sent the same way, then the
// connection ends. Admitted, it
// is a hub member with `ws` set: its writer gathers [header][payload] per
// frame from the log, pongs reach the writer through the hub (sent between
// batches, so at a frame boundary), and its close frame is sent when it is
// closed, if the socket takes it at once and no batch is in flight.
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <vector>

#include "../connection.h"
#include "../engine.h"
#include "../handshake_list.h"
#include "../listening.h"
#include "../roster.h"
#include "../stop_sequence.h"
#include "hub.h"

namespace echocast {

namespace {

// Bytes read per recv(). Also bounds raw framing's chunk size.
constexpr std::size_t kRecvBytes = 64 * 1024;
// Bytes gathered into one send by a writer (at least one frame).
constexpr std::size_t kBatchBytes = 64 * 1024;

class ThreadsEngine;

// One connection: its hub membership, its rules and state (Connection),
// its socket and two threads.
struct Client : public HubMember, public Connection {
  Client(Framing framing, std::size_t max_frame) : Connection(framing, max_frame) {}
  ThreadsEngine* engine = nullptr;
  ec_socket_t sock = EC_INVALID_SOCKET;
  ec_thread_t reader;
  ec_thread_t writer;
  bool reader_started = false;
  bool writer_started = false;
  // Threads still running, plus one held by admit() until it has written
  // the fields above; guarded by the engine's mutex.
  int alive = 0;

 protected:
  // A stopping server, and a finished client (everything owed was sent:
  // FanoutMember::finishing), end connections gracefully (the peer still
  // reads what was flushed); every other reason cuts the client at once.
  // A WebSocket client is first sent its close frame when
  // Connection::close_frame_due says so and the socket takes it now; after
  // it, the end is graceful so that the frame arrives.
  void on_close(Reason reason) override {
    bool framed = false;
    if (close_frame_due(*this)) {
      // The reader's own (its peer's close, a protocol error), or the one
      // for this reason (the session itself is the reader's alone).
      std::vector<std::uint8_t> frame = farewell_.empty() ? close_frame_for(reason) : farewell_;
      std::size_t sent = 0;
      framed = ec_socket_send_now(sock, frame.data(), frame.size(), &sent).ok() &&
               sent == frame.size();
    }
    if (framed || reason == Reason::ServerClosed ||
        (reason == Reason::ClientClosed && finishing)) {
      ec_socket_end(sock);
    } else {
      ec_socket_interrupt(sock);
    }
  }
};

class ThreadsEngine : public Engine {
 public:
  ThreadsEngine(const EngineOptions& options, EventSink* sink)
      : options_(options), sink_(sink), hub_(fanout_options(options)),
        roster_(options.max_clients), handshakes_(max_handshakes(options)) {
    ws_config_.path = options.ws_path;
    ws_config_.page = options.ws_page;
    ec_mutex_init(&mutex_);
    ec_cond_init(&reaper_cond_);
    ec_cond_init(&idle_cond_);
  }

  ~ThreadsEngine() override {
    stop(0);
    ec_cond_destroy(&idle_cond_);
    ec_cond_destroy(&reaper_cond_);
    ec_mutex_destroy(&mutex_);
  }

  ListenResult start() override {
    ListenResult result;
    if (!open_listeners(options_, &listener_, &ws_listener_, &result)) return result;
    result.err = ec_thread_create(&reaper_thread_, &ThreadsEngine::reaper_main,
                                  this, EC_THREAD_STACK_BYTES);
    if (result.err.ok()) {
      result.err = ec_thread_create(&accept_thread_, &ThreadsEngine::accept_main,
                                    this, EC_THREAD_STACK_BYTES);
      if (result.err.ok() && ws_listener_ != nullptr) {
        result.err = ec_thread_create(&ws_accept_thread_, &ThreadsEngine::ws_accept_main,
                                      this, EC_THREAD_STACK_BYTES);
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

  void broadcast(const std::uint8_t* data, std::size_t len) override {
    inject(data, len, 0);
  }

  void set_forward(bool on) override { forward_ = on; }

  void inject(const std::uint8_t* data, std::size_t len,
              std::uint64_t origin) override {
    FrameBatch batch;
    split_into(options_.framing, data, len, &batch);
    std::vector<HubMember*> wake;
    hub_.append(batch, origin, false, &wake);  // Never waits.
  }

  void disconnect(std::uint64_t id, const char* reason) override {
    Reason r;
    if (!reason_from_name(reason, &r)) return;
    // Under the engine's lock the client cannot be finished and freed (the
    // reaper erases it under this lock before closing its socket). Lock
    // order: engine mutex, then hub lock, as everywhere else.
    ec_lock_guard lock(&mutex_);
    auto it = clients_.find(id);
    if (it != clients_.end()) hub_.close_member(it->second, r);
  }

  void close_input() override { hub_.close_input(); }

  void stop(std::uint64_t deadline_ms) override {
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
    close_listener(&listener_);  // The listener is gone: releases the network.
    if (options_.has_ws()) ec_net_release();  // The WebSocket listener's share.
  }

  EngineStats stats() override {
    EngineStats s;
    {
      ec_lock_guard lock(&mutex_);
      s.clients = clients_.size();
    }
    s.disconnects = roster_.tallies();
    s.hub = hub_.counters();
    s.read_pauses = hub_.read_pauses();
    s.read_paused_ms = hub_.read_paused_ms();
    return s;
  }

 private:
  static void accept_main(void* arg) {
    ThreadsEngine* e = static_cast<ThreadsEngine*>(arg);
    e->accept_loop(e->listener_, false);
  }
  static void ws_accept_main(void* arg) {
    ThreadsEngine* e = static_cast<ThreadsEngine*>(arg);
    e->accept_loop(e->ws_listener_, true);
  }
  static void reaper_main(void* arg) { static_cast<ThreadsEngine*>(arg)->reaper_loop(); }
  static void reader_main(void* arg) {
    Client* c = static_cast<Client*>(arg);
    c->engine->reader_loop(c);
  }
  static void writer_main(void* arg) {
    Client* c = static_cast<Client*>(arg);
    c->engine->writer_loop(c);
  }

  // Lets the reaper finish what it has and joins it: the last thread.
  void end_reaper() {
    {
      ec_lock_guard lock(&mutex_);
      reaper_exit_ = true;
      ec_cond_signal(&reaper_cond_);
    }
    ec_thread_join(&reaper_thread_);
  }

  void accept_loop(ec_listener* listener, bool ws) {
    AcceptErrors errors;
    for (;;) {
      Accepted a;
      ec_error err = ec_listener_accept(listener, &a.sock, &a.address, &a.port);
      if (err.code == EC_ECANCELED) return;
      if (err.ok()) {
        errors.accepted();
        if (ws) accept_ws(a);
        else admit(a);
        continue;
      }
      AcceptStep step = errors.on_error(err, sink_);
      if (step == AcceptStep::Stop) return;
      if (step == AcceptStep::Pause) {
        // Wait a little (woken at once by stop) instead of spinning on a
        // connection that stays pending.
        ec_lock_guard lock(&mutex_);
        if (!stopping_) ec_cond_timed_wait(&idle_cond_, &mutex_, kAcceptBackoffMs);
        if (stopping_) return;
      }
    }
  }

  void admit(const Accepted& a) {
    Client* c = nullptr;
    std::uint64_t id;
    Reason refused = Reason::ServerFull;
    {
      ec_lock_guard lock(&mutex_);
      if (roster_.admit(clients_.size(), &id)) {
        c = new (std::nothrow)
            Client(options_.framing, static_cast<std::size_t>(options_.max_frame_bytes));
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
    ec_error err = ec_thread_create(&c->writer, &ThreadsEngine::writer_main, c,
                                    EC_THREAD_STACK_BYTES);
    c->writer_started = err.ok();
    if (err.ok()) {
      err = ec_thread_create(&c->reader, &ThreadsEngine::reader_main, c,
                             EC_THREAD_STACK_BYTES);
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

  void reader_loop(Client* c) {
    std::unique_ptr<std::uint8_t[]> buf(new (std::nothrow) std::uint8_t[kRecvBytes]);
    if (!buf) {
      if (c->admitted()) hub_.close_member(c, Reason::ClientError);
      thread_done(c);
      return;
    }
    std::size_t leftover = 0;
    if (c->websocket()) {
      // A WebSocket connection: its handshake first (no event).
      if (!handshake(c, buf.get(), &leftover)) {
        thread_done(c);
        return;
      }
    }
    FrameBatch batch;  // One read's frames, side by side in wire form.
    FrameBatchSink collect(&batch);
    std::vector<HubMember*> wake;  // Writers this reader's appends wake.
    for (;;) {
      std::size_t n = leftover;  // The first WebSocket bytes came with the head.
      leftover = 0;
      if (n == 0) {
        ec_error err = ec_socket_recv(c->sock, buf.get(), kRecvBytes, &n);
        if (!err.ok()) {
          hub_.close_member(c, Reason::ClientError);  // Keeps an earlier reason.
          break;
        }
        if (n == 0) {
          // The peer shut its write side: drop any partial frame (with the
          // framer). docs/contract.md S11: it is sent what is queued for it,
          // then closed; with allowHalfOpen its writer keeps sending until
          // the socket fails (not a WebSocket: it has no half-close).
          if (c->peer_finished(options_.allow_half_open)) hub_.finish_member(c);
          break;
        }
      }
      batch.clear();
      bool ok = c->feed(buf.get(), n, &collect);
      if (c->control_pending())  // A pong, sent by the writer.
        hub_.queue_control(c, c->take_control(), WsSession::kMaxControlBytes);
      if (!batch.frames.empty()) {
        bool forward = forward_;
        // Cluster mode: the frames go to JS (and the stream), not the hub.
        bool delivered = forward || hub_.append(batch, c->id, true, &wake);
        if (delivered && sink_->wants_messages())
          for (const FrameBatch::Extent& e : batch.frames)
            sink_->on_message(c->id, batch.frame_ref(e, c->id), true);
        if (forward)
          sink_->on_frames(c->id, batch.bytes.data(), batch.bytes.size(),
                           batch.frames.size(), true);
      }
      if (batch.bytes.capacity() > 2 * kRecvBytes) batch = FrameBatch();
      if (!ok) {
        Reason why = c->close_reason();
        hub_.close_member(c, why, c->close_frame(why));
        break;
      }
    }
    thread_done(c);
  }

  // ---- WebSocket (see the top of this file) ----------------------------------

  // A connection on the WebSocket listener: its reader reads the request
  // head while it is in the handshake list; dropped when the list is full.
  void accept_ws(const Accepted& a) {
    std::size_t max_frame = static_cast<std::size_t>(options_.max_frame_bytes);
    Client* c = nullptr;
    {
      ec_lock_guard lock(&mutex_);
      if (!stopping_ && !handshakes_.full())
        c = new (std::nothrow) Client(options_.framing, max_frame);
      if (c != nullptr && !c->start_websocket(&ws_config_)) {
        delete c;
        c = nullptr;
      }
      if (c != nullptr) {
        c->engine = this;
        c->sock = a.sock;
        c->ws = true;
        c->set_peer(a.address, a.port);
        c->alive = 2;  // The reader, and this function until it is done.
        handshakes_.add(c, ec_now_ms());
        ec_cond_signal(&reaper_cond_);  // The reaper now watches a deadline.
      }
    }
    if (c == nullptr) {
      ec_socket_close(a.sock);
      return;
    }
    ec_error err = ec_thread_create(&c->reader, &ThreadsEngine::reader_main, c,
                                    EC_THREAD_STACK_BYTES);
    c->reader_started = err.ok();
    if (!err.ok()) {
      sink_->on_error(err, "thread_create");
      thread_done(c);  // For the reader never run.
    }
    thread_done(c);
  }

  // Sends all of `data` on a client's socket (before its writer exists).
  static bool send_bytes(ec_socket_t s, const std::vector<std::uint8_t>& data) {
    ec_iovec piece = {data.data(), data.size()};
    return ec_socket_send_all(s, &piece, 1).ok();
  }

  // The handshake of a WebSocket connection, on its reader thread. Returns
  // true when the client was admitted (its writer runs); *leftover is then
  // how many bytes at the start of buf are its first WebSocket bytes.
  // False: the connection is over (answered, refused or dropped).
  bool handshake(Client* c, std::uint8_t* buf, std::size_t* leftover) {
    for (;;) {
      std::size_t n = 0;
      ec_error err = ec_socket_recv(c->sock, buf, kRecvBytes, &n);
      if (!err.ok() || n == 0) return false;  // Gone before its upgrade, or dropped.
      std::size_t consumed = 0;
      ws::Handshake::Result r = c->handshake(buf, n, &consumed);
      if (r == ws::Handshake::Result::NeedMore) continue;
      if (r != ws::Handshake::Result::Upgrade) {
        // The page or an error status, then the end.
        if (send_bytes(c->sock, c->take_control())) linger(c, buf);
        return false;
      }
      if (!send_bytes(c->sock, c->take_control())) return false;  // The 101.
      std::uint64_t id = 0;
      bool admitted = false;
      {
        ec_lock_guard lock(&mutex_);
        if (stopping_) return false;
        admitted = c->admit(&roster_, clients_.size(), &id);
        if (admitted) {
          handshakes_.remove(c);
          c->id = id;
          c->alive += 1;  // The writer.
          clients_[id] = c;
          hub_.join(c);  // Under the same lock, as in admit().
        }
      }
      if (!admitted) {
        // docs/contract.md §6: the upgrade completed, then close 1013
        // server-full (queued by admit); reported as for TCP.
        sink_->on_disconnect(id, reason_name(Reason::ServerFull));
        if (send_bytes(c->sock, c->take_control())) linger(c, buf);
        return false;
      }
      sink_->on_connection(id, c->peer_address(), c->peer_port());
      err = ec_thread_create(&c->writer, &ThreadsEngine::writer_main, c, EC_THREAD_STACK_BYTES);
      c->writer_started = err.ok();
      if (!err.ok()) {
        sink_->on_error(err, "thread_create");
        hub_.close_member(c, Reason::ClientError);
        thread_done(c);  // For the writer never run.
        return false;
      }
      // The bytes after the head: moved to the start of buf.
      std::memmove(buf, buf + consumed, n - consumed);
      *leftover = n - consumed;
      return true;
    }
  }

  // After the answer: the send side is shut, and the peer's end of stream
  // (or the handshake's deadline, which interrupts the socket) ends it.
  void linger(Client* c, std::uint8_t* buf) {
    ec_socket_shutdown_send(c->sock);
    c->answered();
    for (;;) {
      std::size_t n = 0;
      if (!ec_socket_recv(c->sock, buf, kRecvBytes, &n).ok() || n == 0) return;
    }
  }

  // Interrupts every connection in its handshake (under mutex_).
  void interrupt_handshakes() {
    for (Connection* c : handshakes_.connections())
      ec_socket_interrupt(static_cast<Client*>(c)->sock);
  }

  // Interrupts the handshakes whose deadline passed (under mutex_); returns
  // the next deadline (0: none).
  std::uint64_t expire_handshakes_locked(std::uint64_t now) {
    expired_.clear();
    std::uint64_t next = handshakes_.expire(now, &expired_);
    for (Connection* c : expired_) ec_socket_interrupt(static_cast<Client*>(c)->sock);
    expired_.clear();
    return next;
  }

  void writer_loop(Client* c) {
    ec_iovec pieces[EC_MAX_IOV];
    for (;;) {
      std::size_t count = 0;
      if (hub_.next_batch(c, pieces, EC_MAX_IOV, kBatchBytes, &count) == BatchResult::Closed)
        break;
      ec_error err = ec_socket_send_all(c->sock, pieces, count);
      if (!err.ok()) {
        hub_.send_failed(c, c->failure_reason());
        break;
      }
    }
    thread_done(c);
  }

  // Called by each client thread as it finishes (and on behalf of a thread
  // that could not be created). The last one hands the client to the reaper.
  void thread_done(Client* c) {
    ec_lock_guard lock(&mutex_);
    if (--c->alive == 0) {
      dead_.push_back(c);
      ec_cond_signal(&reaper_cond_);
    }
  }

  void reaper_loop() {
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

  // Joins a finished client's threads, closes its socket and reports it.
  void finish(Client* c) {
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
      clients_.erase(c->id);  // Before the close: stop() may interrupt clients_.
      roster_.tally(reason);
      if (clients_.empty() && handshakes_.empty()) ec_cond_broadcast(&idle_cond_);
    }
    ec_socket_close(c->sock);
    delete c;
    sink_->on_disconnect(id, reason_name(reason));
  }

  EngineOptions options_;
  EventSink* sink_;
  Hub hub_;
  Roster roster_;
  ec_listener* listener_ = nullptr;
  ec_thread_t accept_thread_;
  ec_listener* ws_listener_ = nullptr;  // With options_.has_ws().
  ec_thread_t ws_accept_thread_;
  ws::HandshakeConfig ws_config_;
  ec_thread_t reaper_thread_;
  bool running_ = false;  // Touched only by the thread calling start/stop.
  // Cluster mode (set_forward); read by every reader per chunk.
  std::atomic<bool> forward_{false};

  // Guards everything below, and the roster's admission. Lock order: this
  // one, then the hub's (admission joins the hub under it); never the hub's
  // first.
  ec_mutex_t mutex_;
  // The reaper sleeps here until a client is finished or it should exit.
  ec_cond_t reaper_cond_;
  // stop() sleeps here until every client is gone; the accept thread's
  // back-off wait uses it too so that stop ends it at once.
  ec_cond_t idle_cond_;
  std::map<std::uint64_t, Client*> clients_;
  std::vector<Client*> dead_;
  // WebSocket connections awaiting their upgrade (not in clients_).
  HandshakeList handshakes_;
  std::vector<Connection*> expired_;
  bool stopping_ = false;
  bool reaper_exit_ = false;
};

}  // namespace

std::unique_ptr<Engine> make_threads_engine(const EngineOptions& options,
                                            EventSink* sink) {
  return std::unique_ptr<Engine>(new ThreadsEngine(options, sink));
}

}  // namespace echocast
