// engine_poll.cc — Server 2.0: one I/O thread multiplexes every socket
// (ec_poller: epoll on Linux, WSAPoll on Windows, poll elsewhere).
//
// The loop, per turn: wait for readiness; accept; read each readable client
// once (framer -> frame log, or to JS in cluster mode); take the commands JS
// queued (broadcast/inject, disconnect, stop), which reach the loop through
// the poller's wake-up channel; then, once input has paused for a moment
// (send coalescing, kCoalesceGapUs), for every client with pending frames,
// gather them straight from the log into one writev/WSASend; then apply the
// slow-consumer rule and trim the log. Everything the loop touches is its
// own, so there are no locks on the data path (only the command inbox and
// the counters JS reads are shared).
//
// The rules are the hub's (hub.h), with one difference that one thread makes
// possible: the slow-consumer rule is exact. After a turn's sends, a client
// whose backlog (bytes between its cursor and the head of the log) is still
// over maxBacklogBytes is cut; there is no grace, since a client that could
// take its bytes has just been offered them.
//
// Sockets are level-triggered. Interest: IN while reading (off after end of
// stream, or while JS has too many event bytes pending), OUT only while a
// send would block. A closed client is unregistered and its socket closed at
// once, but its memory is freed only at the end of the turn, because events
// of the same batch may still point at it.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <new>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine.h"
#include "frame_log.h"

namespace echocast {

namespace {

// Bytes read per recv(). Under saturation a larger read means more frames
// per turn and so fuller sends (64 KiB reads left native-poll 20% behind js
// at 50x5x64 B, --rate max; 256 KiB matches it). Raw framing keeps 64 KiB
// chunks, as node:net reads them, since there a chunk is a frame.
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
// Pending connections the kernel may queue.
constexpr int kBacklog = 511;
// Out of descriptors: how long accepting pauses.
constexpr std::uint64_t kAcceptBackoffMs = 100;
// At stop, how long at least peers get to answer a graceful close.
constexpr std::uint64_t kLingerMs = 250;
// Send coalescing. Each send costs the kernel a whole TCP transmit and
// receive (about 4 us on loopback, over 90% of the loop's CPU) whatever its
// size, so fewer, fuller sends are what lowers the CPU per delivery. After a
// turn that appended frames, the sends wait until input has been quiet for
// kCoalesceGapUs (publishers that write at one moment arrive microseconds
// apart), at most kCoalesceUs after the first new frame, and no longer than
// it takes kCoalesceBytes to pile up; then one gathered send per client
// carries them all. Only where the poller waits under a millisecond
// (ec_poller_sub_ms: epoll_pwait2, ppoll); elsewhere (WSAPoll) frames are
// sent in the turn they arrive, as is anything due anyway (a client that
// became writable, a replay, stop).
constexpr std::uint64_t kCoalesceGapUs = 50;
constexpr std::uint64_t kCoalesceUs = 300;
constexpr std::uint64_t kCoalesceBytes = 32 * 1024;

// One connection, owned by the loop thread.
struct PollClient {
  PollClient(Framing framing, std::size_t max_frame) : framer(framing, max_frame) {}
  std::uint64_t id = 0;
  ec_socket_t sock = EC_INVALID_SOCKET;
  Framer framer;
  FrameLog::Cursor cursor;
  std::uint64_t counted = 0;    // Frames before this seq were counted as delivered.
  const char* reason = nullptr; // Set once closed; the disconnect reason.
  unsigned interest = 0;        // What the poller watches now.
  bool registered = false;      // In the poller.
  bool reading = true;          // Wants input (not at end of stream).
  bool paused = false;          // Reading paused until JS takes its events.
  bool blocked = false;         // The last send would block: wait for OUT.
  bool half_closed = false;     // The peer shut its write side; it still receives.
  bool ending = false;          // Stop: our send side is shut, awaiting the peer's.
};

// A command from another thread, applied by the loop in order.
struct Command {
  enum Type { Frames, Disconnect, Stop } type = Frames;
  std::vector<std::uint8_t> bytes;                       // Frames: wire form,
  std::vector<std::pair<std::size_t, std::size_t>> frames;  // their extents,
  std::uint64_t id = 0;                                  // sender / client.
  const char* reason = nullptr;                          // Disconnect.
  std::uint64_t deadline_ms = 0;                         // Stop.
};

// Records where each frame of an injected buffer lies.
class ExtentSink : public FrameSink {
 public:
  ExtentSink(const std::uint8_t* base, Command* cmd) : base_(base), cmd_(cmd) {}
  void on_frame(const FrameView& v) override {
    cmd_->frames.emplace_back(static_cast<std::size_t>(v.bytes - base_), v.size);
  }

 private:
  const std::uint8_t* base_;
  Command* cmd_;
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

class PollEngine : public Engine {
 public:
  PollEngine(const EngineOptions& options, EventSink* sink)
      : options_(options), sink_(sink), log_(options.replay), read_sink_(this) {
    ec_mutex_init(&inbox_mutex_);
    ec_mutex_init(&stats_mutex_);
  }

  ~PollEngine() override {
    stop(0);
    ec_mutex_destroy(&stats_mutex_);
    ec_mutex_destroy(&inbox_mutex_);
  }

  ListenResult start() override {
    ListenResult result;
    result.err = ec_net_acquire();
    if (!result.err.ok()) {
      result.syscall = "WSAStartup";
      return result;
    }
    result.err = ec_listen(options_.host.c_str(), options_.port, kBacklog, &listener_,
                           &result.bound, &result.syscall);
    if (!result.err.ok()) {
      ec_net_release();
      return result;
    }
    ec_poller* poller = nullptr;
    result.err = ec_poller_create(&poller);
    if (result.err.ok()) {
      result.err = ec_poller_add(poller, ec_listener_socket(listener_), EC_POLL_IN, &listener_);
      if (!result.err.ok()) ec_poller_destroy(poller);
    }
    if (!result.err.ok()) {
      result.syscall = "listen";
      ec_listener_close(listener_);
      listener_ = nullptr;
      ec_net_release();
      return result;
    }
    {
      ec_lock_guard lock(&inbox_mutex_);
      poller_ = poller;
    }
    coalesce_ = ec_poller_sub_ms(poller);
    listening_ = true;
    buf_.reset(new (std::nothrow) std::uint8_t[kRecvBytes]);
    if (buf_) result.err = ec_thread_create(&thread_, &PollEngine::loop_main, this,
                                            EC_THREAD_STACK_BYTES);
    else result.err.code = EC_ENOMEM;
    if (!result.err.ok()) {
      result.syscall = "thread_create";
      close_poller();
      ec_listener_close(listener_);
      listener_ = nullptr;
      ec_net_release();
      return result;
    }
    running_ = true;
    return result;
  }

  void broadcast(const std::uint8_t* data, std::size_t len) override {
    inject(data, len, 0);
  }

  void set_forward(bool on) override { forward_ = on; }

  void inject(const std::uint8_t* data, std::size_t len, std::uint64_t origin) override {
    Command cmd;
    cmd.type = Command::Frames;
    cmd.id = origin;
    cmd.bytes.assign(data, data + len);
    ExtentSink extents(cmd.bytes.data(), &cmd);
    split_encoded(options_.framing, cmd.bytes.data(), cmd.bytes.size(), &extents);
    if (cmd.frames.empty()) return;
    // Counted now, so stats() right after broadcast() already shows it: the
    // frames have their place in the order from this moment.
    std::uint64_t bytes = 0;
    for (const auto& f : cmd.frames) bytes += f.second;
    ec_lock_guard lock(&inbox_mutex_);
    if (stop_queued_) return;  // Input is closed.
    frames_in_.fetch_add(cmd.frames.size(), std::memory_order_relaxed);
    bytes_in_.fetch_add(bytes, std::memory_order_relaxed);
    post_locked(std::move(cmd));
  }

  void disconnect(std::uint64_t id, const char* reason) override {
    Command cmd;
    cmd.type = Command::Disconnect;
    cmd.id = id;
    cmd.reason = reason;
    ec_lock_guard lock(&inbox_mutex_);
    post_locked(std::move(cmd));
  }

  void events_drained() override {
    if (!any_paused_.load(std::memory_order_acquire)) return;
    room_signal_.store(true, std::memory_order_release);
    ec_lock_guard lock(&inbox_mutex_);
    if (poller_ != nullptr) ec_poller_wake(poller_);
  }

  void stop(std::uint64_t deadline_ms) override {
    if (!running_) return;
    running_ = false;
    {
      Command cmd;
      cmd.type = Command::Stop;
      cmd.deadline_ms = deadline_ms;
      ec_lock_guard lock(&inbox_mutex_);
      post_locked(std::move(cmd));
      stop_queued_ = true;
    }
    ec_thread_join(&thread_);
    close_poller();
    if (listener_ != nullptr) ec_listener_close(listener_);
    listener_ = nullptr;
    ec_net_release();
  }

  EngineStats stats() override {
    EngineStats s;
    s.clients = clients_count_.load(std::memory_order_relaxed);
    s.hub.frames_in = frames_in_.load(std::memory_order_relaxed);
    s.hub.bytes_in = bytes_in_.load(std::memory_order_relaxed);
    s.hub.frames_out = frames_out_.load(std::memory_order_relaxed);
    s.hub.bytes_out = bytes_out_.load(std::memory_order_relaxed);
    ec_lock_guard lock(&stats_mutex_);
    s.disconnects = disconnects_;
    return s;
  }

  // A frame from the client being read (ReadSink).
  void on_client_frame(PollClient* c, const FrameView& v, bool forward, bool messages) {
    if (forward) {
      forwarded_.insert(forwarded_.end(), v.bytes, v.bytes + v.size);
      ++forwarded_frames_;
    } else {
      log_.append(v.bytes, v.size, c->id);
      ++turn_frames_in_;
      turn_bytes_in_ += v.size;
      log_grew_ = true;
    }
    if (messages) {
      auto frame = std::make_shared<HubFrame>();
      frame->sender = c->id;
      frame->bytes.assign(v.bytes, v.bytes + v.size);
      frame->payload_offset = v.payload_offset;
      frame->payload_size = v.payload_size;
      sink_->on_message(c->id, frame, false);
    }
  }

 private:
  static void loop_main(void* arg) { static_cast<PollEngine*>(arg)->loop(); }

  // Queues a command and wakes the loop. inbox_mutex_ is held.
  void post_locked(Command&& cmd) {
    inbox_.push_back(std::move(cmd));
    has_commands_.store(true, std::memory_order_release);
    if (poller_ != nullptr) ec_poller_wake(poller_);
  }

  void close_poller() {
    ec_poller* p;
    {
      ec_lock_guard lock(&inbox_mutex_);
      p = poller_;
      poller_ = nullptr;
    }
    if (p != nullptr) ec_poller_destroy(p);
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
        wait_for_command();
        n = 0;
      }
      // Commands first: they were queued before this wait returned.
      if (has_commands_.load(std::memory_order_acquire)) take_commands();
      for (std::size_t i = 0; i < n; ++i) handle(events[i]);
      // Batching without coalescing: when this turn read client frames, look
      // once more (without sleeping) for input that arrived meanwhile, so
      // that one send per client carries it too.
      if (!coalesce_ && log_grew_ && !broken && n < kMaxEvents) {
        std::size_t more = 0;
        bool woken2 = false;
        if (ec_poller_wait(poller_, events.data(), events.size(), 0, &more, &woken2).ok())
          for (std::size_t i = 0; i < more; ++i) handle(events[i]);
        if (woken2 && has_commands_.load(std::memory_order_acquire)) take_commands();
      }
      if (room_signal_.exchange(false, std::memory_order_acq_rel)) resume_paused();
      if (accept_resume_at_ != 0 && ec_now_ms() >= accept_resume_at_) resume_accept();
      commit_counters();  // Before the sends: stats never lag what clients got.
      if (flush_now()) flush();
      reap();
      if (stopping_ && stop_progress()) break;
    }
    for (PollClient* c : clients_) close_client(c, "server-closed");
    reap();
    if (listening_) {
      ec_poller_remove(poller_, ec_listener_socket(listener_));
      listening_ = false;
    }
  }

  int timeout_ms() const {
    // Commands queued before the loop started (inject before start) or
    // whose wake-up was coalesced: do not sleep on them.
    if (has_commands_.load(std::memory_order_acquire)) return 0;
    if (need_flush_) return 0;  // A client left with sends for the next turn.
    std::uint64_t until = 0;
    if (stopping_) until = ending_ ? linger_end_ : stop_deadline_;
    if (accept_resume_at_ != 0 && (until == 0 || accept_resume_at_ < until))
      until = accept_resume_at_;
    if (until == 0) return -1;
    std::uint64_t now = ec_now_ms();
    if (now >= until) return 0;
    std::uint64_t wait = until - now;
    return wait > 60000 ? 60000 : static_cast<int>(wait);
  }

  // The wait of this turn in microseconds: timeout_ms(), shortened to the
  // end of a coalescing window.
  std::int64_t timeout_us() const {
    int ms = timeout_ms();
    if (ms == 0 || flush_due_us_ == 0) return ms < 0 ? -1 : std::int64_t{ms} * 1000;
    std::uint64_t now = ec_now_micros();
    std::int64_t left = now >= flush_due_us_ ? 0 : static_cast<std::int64_t>(flush_due_us_ - now);
    return ms < 0 ? left : std::min(left, std::int64_t{ms} * 1000);
  }

  // Whether this turn sends: frames just appended wait for more (see
  // kCoalesceGapUs) unless something is due anyway.
  bool flush_now() {
    if (!log_grew_) return need_flush_;
    std::uint64_t head = log_.head_bytes();
    if (!coalesce_ || need_flush_ || stopping_ || head - flushed_bytes_ >= kCoalesceBytes) {
      flush_due_us_ = 0;
      return true;
    }
    std::uint64_t now = ec_now_micros();
    if (flush_due_us_ == 0) {  // The first new frames: a window opens.
      window_end_us_ = now + kCoalesceUs;
      flush_due_us_ = std::min(window_end_us_, now + kCoalesceGapUs);
      seen_bytes_ = head;
      return false;
    }
    if (head != seen_bytes_) {  // More input: wait for a quiet gap again.
      seen_bytes_ = head;
      flush_due_us_ = std::min(window_end_us_, now + kCoalesceGapUs);
    }
    if (now < flush_due_us_) return false;
    flush_due_us_ = 0;
    return true;
  }

  void wait_for_command() {
    // Only after a poller failure: poll the inbox gently until stop.
    for (int i = 0; i < 10 && !has_commands_.load(std::memory_order_acquire); ++i) {
      ec_lock_guard lock(&inbox_mutex_);
      ec_cond_t c;
      ec_cond_init(&c);
      ec_cond_timed_wait(&c, &inbox_mutex_, 10);
      ec_cond_destroy(&c);
    }
  }

  void handle(const ec_poll_event& ev) {
    if (ev.data == &listener_) {
      accept_some();
      return;
    }
    PollClient* c = static_cast<PollClient*>(ev.data);
    if (c->reason != nullptr) return;  // Closed earlier in this batch.
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
      close_client(c, c->half_closed || c->ending ? "client-closed" : "client-error");
      return;
    }
    if ((ev.events & EC_POLL_HUP) && !c->reading) {
      if (c->ending) {
        close_client(c, "server-closed");
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
        ec_err code = err.code;
        if (code == EC_ECONNABORTED || code == EC_ECONNRESET || code == EC_EINTR ||
            code == EC_EPIPE || code == EC_ENETDOWN || code == EC_EHOSTUNREACH ||
            code == EC_ENETUNREACH || code == EC_ETIMEDOUT)
          continue;
        if (code == EC_EMFILE || code == EC_ENFILE || code == EC_ENOBUFS || code == EC_ENOMEM) {
          // Out of descriptors or memory: say so once per episode, and stop
          // watching the listener for a moment instead of spinning on a
          // connection that stays pending.
          if (!reported_shortage_) sink_->on_error(err, "accept");
          reported_shortage_ = true;
          ec_poller_modify(poller_, ec_listener_socket(listener_), 0, &listener_);
          accept_resume_at_ = ec_now_ms() + kAcceptBackoffMs;
          return;
        }
        sink_->on_error(err, "accept");
        stop_listening();
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
    std::uint64_t id = ++next_id_;
    const char* refused = nullptr;
    PollClient* c = nullptr;
    if (clients_.size() >= options_.max_clients) {
      refused = "server-full";
    } else {
      c = new (std::nothrow)
          PollClient(options_.framing, static_cast<std::size_t>(options_.max_frame_bytes));
      if (c == nullptr) refused = "client-error";
    }
    if (c != nullptr) {
      c->id = id;
      c->sock = sock;
      c->cursor = FrameLog::Cursor{log_.join_seq(), 0};
      c->counted = c->cursor.seq;
      ec_error err = ec_poller_add(poller_, sock, EC_POLL_IN, c);
      if (!err.ok()) {
        delete c;
        c = nullptr;
        refused = "client-error";
        sink_->on_error(err, "poll");
      } else {
        c->registered = true;
        c->interest = EC_POLL_IN;
      }
    }
    if (c == nullptr) {
      ec_socket_close(sock);
      count_disconnect(refused);
      sink_->on_disconnect(id, refused);
      return;
    }
    clients_.push_back(c);
    by_id_[id] = c;
    clients_count_.store(by_id_.size(), std::memory_order_relaxed);
    need_flush_ = true;  // Replay.
    sink_->on_connection(id, address, port);
  }

  void read_client(PollClient* c) {
    bool forward = forward_.load(std::memory_order_relaxed) && !stopping_;
    bool messages = !stopping_ && sink_->wants_messages();
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
      close_client(c, c->ending ? "server-closed" : "client-error");
      return;
    }
    if (n == 0) {
      // End of stream: a partial frame is dropped (never fed again); the
      // client keeps receiving until a send fails (half-close).
      if (c->ending) {
        close_client(c, "server-closed");
        return;
      }
      if (ec_socket_gone(c->sock)) {
        // A reset that recv reported as end of stream (Wine): not a half-close.
        close_client(c, "client-error");
        return;
      }
      c->half_closed = true;
      c->reading = false;
      update_interest(c);
      return;
    }
    if (stopping_) return;  // Input is closed: what arrives now is dropped.
    read_sink_.client = c;
    read_sink_.forward = forward;
    read_sink_.messages = messages;
    forwarded_.clear();
    forwarded_frames_ = 0;
    bool ok = c->framer.feed(buf_.get(), n, &read_sink_);
    if (forwarded_frames_ > 0) {
      sink_->on_frames(c->id, forwarded_.data(), forwarded_.size(), forwarded_frames_, false);
      if (forwarded_.capacity() > 2 * kRecvBytes) std::vector<std::uint8_t>().swap(forwarded_);
    }
    if (!ok) close_client(c, "frame-too-large");
  }

  void resume_paused() {
    std::vector<PollClient*> still;
    bool room = stopping_ || sink_->events_room();
    for (PollClient* c : paused_) {
      if (c->reason != nullptr || !c->paused) continue;
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
    std::vector<Command> batch;
    {
      ec_lock_guard lock(&inbox_mutex_);
      batch.swap(inbox_);
      has_commands_.store(false, std::memory_order_relaxed);
    }
    for (Command& cmd : batch) {
      switch (cmd.type) {
        case Command::Frames:
          if (stopping_) break;
          for (const auto& f : cmd.frames) log_.append(cmd.bytes.data() + f.first, f.second, cmd.id);
          log_grew_ = true;
          break;
        case Command::Disconnect: {
          auto it = by_id_.find(cmd.id);
          if (it != by_id_.end()) close_client(it->second, cmd.reason);
          break;
        }
        case Command::Stop:
          begin_stop(cmd.deadline_ms);
          break;
      }
    }
  }

  // Sends what is pending to every client, applies the slow-consumer rule
  // and trims the log. Runs every turn in which something changed.
  void flush() {
    if (!log_grew_ && !need_flush_) return;
    log_grew_ = false;
    need_flush_ = false;
    flush_due_us_ = 0;
    flushed_bytes_ = log_.head_bytes();
    std::uint64_t head = log_.head_seq();
    std::uint64_t slowest = head;
    for (PollClient* c : clients_) {
      if (c->reason != nullptr) continue;
      if (!c->blocked && c->cursor.seq < head) send_to(c);
      if (c->reason != nullptr) continue;
      if (c->cursor.seq < head && log_.backlog(c->cursor) > options_.max_backlog_bytes) {
        close_client(c, "slow-consumer");
        continue;
      }
      slowest = std::min(slowest, c->cursor.seq);
    }
    log_.trim(slowest);
  }

  void send_to(PollClient* c) {
    std::uint64_t skip = options_.echo_to_sender ? 0 : c->id;
    std::uint64_t head = log_.head_seq();
    ec_iovec pieces[EC_MAX_IOV];
    for (int k = 0; k < kSendsPerTurn && c->cursor.seq < head; ++k) {
      FrameLog::Gathered g =
          log_.gather(c->cursor, skip, pieces, EC_MAX_IOV, kGatherBytes, c->counted);
      // Deliveries are counted as frames are first handed to the socket, so
      // stats never lag what a client has already received.
      if (g.end > c->counted) {
        if (g.new_frames != 0) {
          frames_out_.fetch_add(g.new_frames, std::memory_order_relaxed);
          bytes_out_.fetch_add(g.new_bytes, std::memory_order_relaxed);
        }
        c->counted = g.end;
      }
      if (g.pieces == 0) {  // Only the client's own frames: passed over.
        c->cursor = FrameLog::Cursor{g.end, 0};
        continue;
      }
      std::size_t sent = 0;
      ec_error err = ec_socket_try_send(c->sock, pieces, g.pieces, &sent);
      if (err.code == EC_EAGAIN) {
        block(c);
        return;
      }
      if (!err.ok()) {
        close_client(c, c->half_closed || c->ending ? "client-closed" : "client-error");
        return;
      }
      c->cursor = log_.advance(c->cursor, skip, sent, g.end);
      if (sent < g.bytes) {
        block(c);
        return;
      }
    }
    if (c->cursor.seq >= head) {
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
      close_client(c, "client-error");
      return;
    }
    c->registered = true;
    c->interest = want;
  }

  // Closes a client now (socket closed, disconnect reported); its memory is
  // freed by reap() at the end of the turn.
  void close_client(PollClient* c, const char* reason) {
    if (c->reason != nullptr) return;
    c->reason = reason;
    if (c->registered) ec_poller_remove(poller_, c->sock);
    c->registered = false;
    ec_socket_close(c->sock);
    c->sock = EC_INVALID_SOCKET;
    by_id_.erase(c->id);
    clients_count_.store(by_id_.size(), std::memory_order_relaxed);
    dead_ += 1;
    count_disconnect(reason);
    sink_->on_disconnect(c->id, reason);
  }

  void count_disconnect(const char* reason) {
    ec_lock_guard lock(&stats_mutex_);
    ++disconnects_[reason];
  }

  void reap() {
    if (dead_ == 0) return;
    dead_ = 0;
    auto keep = std::partition(clients_.begin(), clients_.end(),
                               [](PollClient* c) { return c->reason == nullptr; });
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
    if (turn_frames_in_ != 0) {
      frames_in_.fetch_add(turn_frames_in_, std::memory_order_relaxed);
      bytes_in_.fetch_add(turn_bytes_in_, std::memory_order_relaxed);
      turn_frames_in_ = turn_bytes_in_ = 0;
    }
  }

  // ---- Stop ----------------------------------------------------------------

  void begin_stop(std::uint64_t deadline_ms) {
    if (stopping_) return;
    stopping_ = true;
    stop_listening();
    stop_deadline_ = ec_now_ms() + deadline_ms;
    if (stop_deadline_ == 0) stop_deadline_ = 1;
    resume_paused();  // Nothing is forwarded or reported now: read freely.
  }

  // Called every turn while stopping; true when the loop may end.
  bool stop_progress() {
    std::uint64_t now = ec_now_ms();
    if (!ending_) {
      // Phase 1: flush what was accepted, up to the deadline.
      bool drained = true;
      std::uint64_t head = log_.head_seq();
      for (PollClient* c : clients_)
        if (c->reason == nullptr && c->cursor.seq < head) drained = false;
      if (!drained && now < stop_deadline_) return false;
      // Phase 2: graceful close. The send side is shut (the peer reads what
      // was sent, then end of stream); the peer's answer closes the socket.
      ending_ = true;
      linger_end_ = std::max(stop_deadline_, now + kLingerMs);
      for (PollClient* c : clients_) {
        if (c->reason != nullptr) continue;
        c->ending = true;
        ec_socket_shutdown_send(c->sock);
        if (c->half_closed) {
          close_client(c, "server-closed");
        } else if (!c->registered || c->paused) {
          c->paused = false;
          update_interest(c);
        }
      }
      reap();
    }
    return clients_.empty() || now >= linger_end_;
  }

  EngineOptions options_;
  EventSink* sink_;
  ec_listener* listener_ = nullptr;
  ec_thread_t thread_;
  bool running_ = false;  // Touched only by the thread calling start/stop.

  // The loop thread's own state.
  FrameLog log_;
  std::vector<PollClient*> clients_;
  std::unordered_map<std::uint64_t, PollClient*> by_id_;
  std::vector<PollClient*> paused_;
  std::size_t dead_ = 0;
  std::unique_ptr<std::uint8_t[]> buf_;
  ReadSink read_sink_;
  std::vector<std::uint8_t> forwarded_;
  std::size_t forwarded_frames_ = 0;
  std::uint64_t next_id_ = 0;
  bool listening_ = false;
  bool reported_shortage_ = false;
  std::uint64_t accept_resume_at_ = 0;
  bool log_grew_ = false;
  bool need_flush_ = false;
  bool coalesce_ = false;            // Send coalescing is on (kCoalesceGapUs).
  std::uint64_t flush_due_us_ = 0;   // When the held sends are due; 0: none held.
  std::uint64_t window_end_us_ = 0;  // The latest they may be held to.
  std::uint64_t seen_bytes_ = 0;     // log_.head_bytes() when flush_due_us_ was set.
  std::uint64_t flushed_bytes_ = 0;  // log_.head_bytes() at the last flush.
  bool stopping_ = false;
  bool ending_ = false;
  std::uint64_t stop_deadline_ = 0;
  std::uint64_t linger_end_ = 0;
  std::uint64_t turn_frames_in_ = 0, turn_bytes_in_ = 0;

  // Shared with other threads.
  ec_mutex_t inbox_mutex_;  // Guards inbox_, poller_ (for waking), stop_queued_.
  std::vector<Command> inbox_;
  ec_poller* poller_ = nullptr;
  bool stop_queued_ = false;
  std::atomic<bool> has_commands_{false};
  std::atomic<bool> forward_{false};
  std::atomic<bool> room_signal_{false};
  std::atomic<bool> any_paused_{false};
  std::atomic<std::uint64_t> clients_count_{0};
  std::atomic<std::uint64_t> frames_in_{0}, bytes_in_{0}, frames_out_{0}, bytes_out_{0};
  ec_mutex_t stats_mutex_;  // Guards disconnects_.
  std::map<std::string, std::uint64_t> disconnects_;
};

void ReadSink::on_frame(const FrameView& v) {
  engine_->on_client_frame(client, v, forward, messages);
}

}  // namespace

std::unique_ptr<Engine> make_poll_engine(const EngineOptions& options, EventSink* sink) {
  return std::unique_ptr<Engine>(new PollEngine(options, sink));
}

}  // namespace echocast
