// engine_poll.cc — the poll engine: one I/O thread multiplexes every socket
// (ec_poller: epoll on Linux, WSAPoll on Windows, poll elsewhere).
//
// The loop, per turn: wait for readiness; take the commands JS queued
// (inbox.h: broadcast/inject, disconnect, set_forward, stop), which reach
// the loop through the poller's wake-up channel; accept; read each readable
// client once (framer -> log, or to JS in cluster mode); then, when the
// coalescer (coalescer.h) says the sends are due, gather every client's
// pending frames straight from the log into one writev/WSASend; then apply
// the slow-consumer rule and trim the log. Everything the loop touches is
// its own, so there are no locks on the data path (only the inbox and the
// counters JS reads are shared).
//
// The rules are the core's (fanout.h, roster.h, stop_sequence.h); this file
// is only the I/O model. The slow-consumer grace is 0: the rule runs right
// after a turn's sends, and a client whose backlog is still over
// maxBacklogBytes after being offered its bytes is cut at once.
//
// Sockets are level-triggered. Interest: IN while reading (off after end of
// stream, or while JS has too many event bytes pending), OUT only while a
// send would block. A closed client is unregistered and its socket closed at
// once, but its memory is freed only at the end of the turn, because events
// of the same batch may still point at it.
#include <algorithm>
#include <atomic>
#include <memory>
#include <new>
#include <unordered_map>
#include <utility>
#include <vector>

#include "coalescer.h"
#include "engine.h"
#include "inbox.h"
#include "listening.h"
#include "roster.h"
#include "stop_sequence.h"

namespace echocast {

namespace {

// Bytes read per recv(). Under saturation a larger read means more frames
// per turn and so fuller sends. Raw framing keeps 64 KiB chunks, as
// node:net reads them, since there a chunk is a frame.
constexpr std::size_t kRecvBytes = 256 * 1024;
constexpr std::size_t kRawRecvBytes = 64 * 1024;
// Readiness events taken per wait.
constexpr std::size_t kMaxEvents = 256;
// Bytes gathered per send (at least one frame), and sends per client per
// turn: a client with a large backlog does not hold the loop for long.
constexpr std::size_t kGatherBytes = 256 * 1024;
constexpr int kSendsPerTurn = 4;
// Connections accepted per turn.
constexpr int kAcceptsPerTurn = 128;
// After a poller failure the loop serves commands only; it looks this often.
constexpr std::uint64_t kBrokenWaitMs = 100;

// The slow-consumer clock; +1 keeps it from ever reading 0 ("not read").
std::uint64_t slow_clock() { return ec_now_ms() + 1; }

// One connection, owned by the loop thread.
struct PollClient : public FanoutMember {
  PollClient(Framing framing, std::size_t max_frame) : framer(framing, max_frame) {}
  ec_socket_t sock = EC_INVALID_SOCKET;
  Framer framer;
  unsigned interest = 0;        // What the poller watches now.
  bool registered = false;      // In the poller.
  bool reading = true;          // Wants input (not at end of stream).
  bool paused = false;          // Reading paused until JS takes its events.
  bool blocked = false;         // The last send would block: wait for OUT.
  bool half_closed = false;     // The peer shut its write side; it still receives.
  bool ending = false;          // Stop: our send side is shut, awaiting the peer's.
};

class PollEngine;

// Receives a client's complete frames from its framer.
class ReadSink : public FrameSink {
 public:
  explicit ReadSink(PollEngine* engine) : engine_(engine) {}
  void on_frame(const FrameView& v) override;
  PollClient* client = nullptr;
  bool forward = false;
  bool messages = false;

 private:
  PollEngine* engine_;
};

FanoutOptions fanout_options(const EngineOptions& o) {
  FanoutOptions f;
  f.replay = o.replay;
  f.echo_to_sender = o.echo_to_sender;
  f.max_backlog_bytes = o.max_backlog_bytes;
  f.slow_grace_ms = 0;
  return f;
}

class PollEngine : public Engine, private Inbox::Waker {
 public:
  PollEngine(const EngineOptions& options, EventSink* sink)
      : options_(options), sink_(sink), fanout_(fanout_options(options)),
        roster_(options.max_clients), coalescer_(&ec_now_micros), read_sink_(this) {}

  ~PollEngine() override { stop(0); }

  ListenResult start() override {
    ListenResult result;
    if (!open_listener(options_, &listener_, &result)) return result;
    result.err = ec_poller_create(&poller_);
    if (result.err.ok()) {
      result.err = ec_poller_add(poller_, ec_listener_socket(listener_), EC_POLL_IN, &listener_);
      if (!result.err.ok()) {
        ec_poller_destroy(poller_);
        poller_ = nullptr;
      }
    }
    if (!result.err.ok()) {
      result.syscall = "listen";
      close_listener(&listener_);
      return result;
    }
    inbox_.attach(this);
    coalescer_.enable(ec_poller_sub_ms(poller_));
    listening_ = true;
    buf_.reset(new (std::nothrow) std::uint8_t[kRecvBytes]);
    if (buf_) result.err = ec_thread_create(&thread_, &PollEngine::loop_main, this,
                                            EC_THREAD_STACK_BYTES);
    else result.err.code = EC_ENOMEM;
    if (!result.err.ok()) {
      result.syscall = "thread_create";
      close_poller();
      close_listener(&listener_);
      return result;
    }
    running_ = true;
    return result;
  }

  void broadcast(const std::uint8_t* data, std::size_t len) override {
    inject(data, len, 0);
  }

  void set_forward(bool on) override { inbox_.post_forward(on); }

  void inject(const std::uint8_t* data, std::size_t len, std::uint64_t origin) override {
    FrameBatch batch;
    split_into(options_.framing, data, len, &batch);
    std::size_t frames = batch.frames.size();
    std::uint64_t bytes = batch.bytes.size();
    // Counted now, so stats() right after broadcast() already shows it: the
    // frames have their place in the order from this moment.
    if (inbox_.post_frames(std::move(batch), origin)) fanout_.count_in(frames, bytes);
  }

  void disconnect(std::uint64_t id, const char* reason) override {
    Reason r;
    if (reason_from_name(reason, &r)) inbox_.post_disconnect(id, r);
  }

  void events_drained() override {
    if (!any_paused_.load(std::memory_order_acquire)) return;
    room_signal_.store(true, std::memory_order_release);
    inbox_.wake();
  }

  void stop(std::uint64_t deadline_ms) override {
    if (!running_) return;
    running_ = false;
    inbox_.post_stop(deadline_ms);
    ec_thread_join(&thread_);
    close_poller();
    close_listener(&listener_);
  }

  EngineStats stats() override {
    EngineStats s;
    s.clients = clients_count_.load(std::memory_order_relaxed);
    s.hub = fanout_.counters();
    s.disconnects = roster_.tallies();
    return s;
  }

  // A frame from the client being read (ReadSink).
  void on_client_frame(PollClient* c, const FrameView& v, bool forward, bool messages) {
    if (forward) {
      forwarded_.add(v);
    } else {
      fanout_.append(v.bytes, v.size, c->id);
      ++turn_frames_in_;
      turn_bytes_in_ += v.size;
      log_grew_ = true;
    }
    if (messages)
      sink_->on_message(c->id, make_frame_ref(c->id, v.bytes, v.size, v.payload_offset,
                                              v.payload_size), false);
  }

 private:
  static void loop_main(void* arg) { static_cast<PollEngine*>(arg)->loop(); }

  // Inbox::Waker, called under the inbox's lock while attached.
  void wake() override { ec_poller_wake(poller_); }

  void close_poller() {
    inbox_.attach(nullptr);
    if (poller_ != nullptr) ec_poller_destroy(poller_);
    poller_ = nullptr;
  }

  // ---- The loop -----------------------------------------------------------

  void loop() {
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

  int timeout_ms() const {
    // Commands queued before the loop started (inject before start) or
    // whose wake-up was coalesced: do not sleep on them.
    if (inbox_.pending()) return 0;
    if (need_flush_) return 0;  // A client left with sends for the next turn.
    std::uint64_t until = stop_.next_ms();
    if (accept_resume_at_ != 0 && (until == 0 || accept_resume_at_ < until))
      until = accept_resume_at_;
    if (until == 0) return -1;
    std::uint64_t now = ec_now_ms();
    if (now >= until) return 0;
    std::uint64_t wait = until - now;
    return wait > 60000 ? 60000 : static_cast<int>(wait);
  }

  // The wait of this turn in microseconds: timeout_ms(), shortened to when
  // the sends the coalescer holds are due.
  std::int64_t timeout_us() const {
    int ms = timeout_ms();
    std::int64_t held = ms == 0 ? -1 : coalescer_.wait_us();
    if (held < 0) return ms < 0 ? -1 : std::int64_t{ms} * 1000;
    return ms < 0 ? held : std::min(held, std::int64_t{ms} * 1000);
  }

  // Whether this turn sends: frames just appended may wait for more.
  bool flush_now() {
    if (!log_grew_) return need_flush_;
    return coalescer_.due(fanout_.log().head_bytes(), need_flush_ || stop_.stopping());
  }

  void handle(const ec_poll_event& ev) {
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
      read_client(c);
      return;
    }
    if (ev.events & EC_POLL_ERR) {
      // Not reading (half-closed, or paused): a send would fail now.
      close_client(c, c->half_closed || c->ending ? Reason::ClientClosed : Reason::ClientError);
      return;
    }
    if ((ev.events & EC_POLL_HUP) && !c->reading) {
      if (c->ending) {
        close_client(c, Reason::ServerClosed);
      } else if (!c->blocked) {
        // Half-closed and hung up. Linux reports this only when the
        // connection is gone; WSAPoll may report it for a FIN alone, and a
        // half-closed client must keep receiving. Level-triggered, it would
        // be reported on every turn, so the socket leaves the poller; the
        // next send tells (it fails if the peer is gone).
        set_interest(c, 0, true);
      }
    }
  }

  void accept_some() {
    for (int i = 0; i < kAcceptsPerTurn && listening_; ++i) {
      ec_socket_t sock = EC_INVALID_SOCKET;
      std::string address;
      int port = 0;
      ec_error err = ec_listener_try_accept(listener_, &sock, &address, &port);
      if (err.code == EC_EAGAIN) return;
      if (!err.ok()) {
        AcceptError kind = classify_accept_error(err.code);
        if (kind == AcceptError::Transient) continue;
        if (kind == AcceptError::Fatal) {
          sink_->on_error(err, "accept");
          stop_listening();
          return;
        }
        // Out of descriptors or memory: say so once per episode, and stop
        // watching the listener for a moment instead of spinning on a
        // connection that stays pending.
        if (!reported_shortage_) sink_->on_error(err, "accept");
        reported_shortage_ = true;
        ec_poller_modify(poller_, ec_listener_socket(listener_), 0, &listener_);
        accept_resume_at_ = ec_now_ms() + kAcceptBackoffMs;
        return;
      }
      reported_shortage_ = false;
      admit(sock, address, port);
    }
  }

  void resume_accept() {
    accept_resume_at_ = 0;
    if (listening_) ec_poller_modify(poller_, ec_listener_socket(listener_), EC_POLL_IN, &listener_);
  }

  void stop_listening() {
    if (!listening_) return;
    ec_poller_remove(poller_, ec_listener_socket(listener_));
    listening_ = false;
    accept_resume_at_ = 0;
    // The socket itself is closed by stop(), after this thread is joined.
  }

  void admit(ec_socket_t sock, const std::string& address, int port) {
    std::uint64_t id = 0;
    Reason refused = Reason::ServerFull;
    PollClient* c = nullptr;
    if (roster_.admit(clients_.size(), &id)) {
      refused = Reason::ClientError;
      c = new (std::nothrow)
          PollClient(options_.framing, static_cast<std::size_t>(options_.max_frame_bytes));
    }
    if (c != nullptr) {
      ec_error err = ec_poller_add(poller_, sock, EC_POLL_IN, c);
      if (!err.ok()) {
        delete c;
        c = nullptr;
        sink_->on_error(err, "poll");
      }
    }
    if (c == nullptr) {
      ec_socket_close(sock);
      if (refused != Reason::ServerFull) roster_.tally(refused);
      sink_->on_disconnect(id, reason_name(refused));
      return;
    }
    c->id = id;
    c->sock = sock;
    c->registered = true;
    c->interest = EC_POLL_IN;
    fanout_.join(c);
    clients_.push_back(c);
    by_id_[id] = c;
    clients_count_.store(by_id_.size(), std::memory_order_relaxed);
    need_flush_ = true;  // Replay.
    sink_->on_connection(id, address, port);
  }

  void read_client(PollClient* c) {
    bool forward = forward_ && !stop_.stopping();
    bool messages = !stop_.stopping() && sink_->wants_messages();
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
      // End of stream: a partial frame is dropped (never fed again); the
      // client keeps receiving until a send fails (half-close).
      if (c->ending) {
        close_client(c, Reason::ServerClosed);
        return;
      }
      if (ec_socket_gone(c->sock)) {
        // A reset that recv reported as end of stream (Wine): not a half-close.
        close_client(c, Reason::ClientError);
        return;
      }
      c->half_closed = true;
      c->reading = false;
      update_interest(c);
      return;
    }
    if (stop_.stopping()) return;  // Input is closed: what arrives now is dropped.
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

  void resume_paused() {
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

  void take_commands() {
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

  // Sends what is pending to every client, applies the slow-consumer rule
  // and trims the log. Runs every turn in which something changed.
  void flush() {
    if (!log_grew_ && !need_flush_) return;
    log_grew_ = false;
    need_flush_ = false;
    coalescer_.flushed(fanout_.log().head_bytes());
    for (PollClient* c : clients_)
      if (!c->closing && !c->blocked && fanout_.pending(c)) send_to(c);
    cut_.clear();
    fanout_.slow_consumers(&slow_clock, 0, &cut_);
    for (FanoutMember* m : cut_) close_client(static_cast<PollClient*>(m), Reason::SlowConsumer);
    fanout_.trim();
  }

  void send_to(PollClient* c) {
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
        close_client(c, c->half_closed || c->ending ? Reason::ClientClosed : Reason::ClientError);
        return;
      }
      fanout_.advance(c, sent, g.end);
      if (sent < g.bytes) {
        block(c);
        return;
      }
    }
    if (!fanout_.pending(c)) {
      if (c->interest & EC_POLL_OUT) update_interest(c);
    } else {
      need_flush_ = true;  // Out of sends for this turn, not blocked: next turn.
    }
  }

  void block(PollClient* c) {
    c->blocked = true;
    update_interest(c);
  }

  // What the poller should watch for this client now.
  void update_interest(PollClient* c) {
    unsigned want = 0;
    if (c->reading && !c->paused) want |= EC_POLL_IN;
    if (c->blocked) want |= EC_POLL_OUT;
    set_interest(c, want, false);
  }

  // Registers, changes or (park) removes the client's poller entry.
  void set_interest(PollClient* c, unsigned want, bool park) {
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

  // Closes a client now (socket closed, disconnect reported); its memory is
  // freed by reap() at the end of the turn.
  void close_client(PollClient* c, Reason reason) {
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

  void reap() {
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

  void commit_counters() {
    if (turn_frames_in_ == 0) return;
    fanout_.count_in(turn_frames_in_, turn_bytes_in_);
    turn_frames_in_ = turn_bytes_in_ = 0;
  }

  // ---- Stop (stop_sequence.h) ---------------------------------------------

  void begin_stop(std::uint64_t deadline_ms) {
    if (!stop_.begin(ec_now_ms(), deadline_ms)) return;
    stop_listening();
    resume_paused();  // Nothing is forwarded or reported now: read freely.
  }

  // Called every turn while stopping; true when the loop may end.
  bool stop_progress() {
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

  EngineOptions options_;
  EventSink* sink_;
  ec_listener* listener_ = nullptr;
  ec_poller* poller_ = nullptr;  // Set before the loop runs, destroyed after.
  ec_thread_t thread_;
  bool running_ = false;  // Touched only by the thread calling start/stop.
  // Shared with other threads: the rules' counters are atomic, the
  // roster's tallies too, and the inbox has its lock.
  Fanout fanout_;
  Roster roster_;
  Inbox inbox_;
  std::atomic<bool> room_signal_{false};
  std::atomic<bool> any_paused_{false};
  std::atomic<std::uint64_t> clients_count_{0};

  // The loop thread's own state.
  Coalescer coalescer_;
  StopSequence stop_;
  std::vector<PollClient*> clients_;
  std::unordered_map<std::uint64_t, PollClient*> by_id_;
  std::vector<PollClient*> paused_;
  std::vector<FanoutMember*> cut_;
  std::vector<Command> commands_;
  std::size_t dead_ = 0;
  std::unique_ptr<std::uint8_t[]> buf_;
  ReadSink read_sink_;
  FrameBatch forwarded_;  // Cluster mode: one read's frames.
  bool forward_ = false;  // Cluster mode (set_forward, through the inbox).
  bool listening_ = false;
  bool reported_shortage_ = false;
  std::uint64_t accept_resume_at_ = 0;
  bool log_grew_ = false;
  bool need_flush_ = false;
  std::uint64_t turn_frames_in_ = 0, turn_bytes_in_ = 0;
};

void ReadSink::on_frame(const FrameView& v) {
  engine_->on_client_frame(client, v, forward, messages);
}

}  // namespace

std::unique_ptr<Engine> make_poll_engine(const EngineOptions& options, EventSink* sink) {
  return std::unique_ptr<Engine>(new PollEngine(options, sink));
}

}  // namespace echocast
