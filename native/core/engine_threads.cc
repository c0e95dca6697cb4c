// engine_threads.cc — Server 1.0, the seed's model: one accept thread, and
// per client a reader thread (blocking recv -> framer -> hub) and a writer
// thread (sleeps on its condition variable, sends batches outside the lock).
// A reaper thread joins the threads of finished clients, closes their
// sockets and reports the disconnect, so finished clients cost nothing.
//
// Closing a client: whoever decides first (reader: EOF is not a close, but a
// recv error or an oversized frame is; writer: a send error; another reader's
// append: slow-consumer; stop: server-closed) calls Hub::close_member, which
// records the reason and interrupts the socket under the hub's lock. That
// wakes both threads; each exits, the last one hands the client to the
// reaper, and only the reaper closes the socket, after joining both threads.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "engine.h"

namespace echocast {

namespace {

// Bytes read per recv(). Also bounds raw framing's chunk size.
constexpr std::size_t kRecvBytes = 64 * 1024;
// Bytes gathered into one send by a writer (at least one frame).
constexpr std::size_t kBatchBytes = 64 * 1024;
// Frames up to this size are copied together into one buffer for sending;
// larger ones are sent in place (gathered I/O).
constexpr std::size_t kCoalesceBytes = 2048;
// Pending connections the kernel may queue.
constexpr int kBacklog = 511;
// At stop, how long at least peers get to answer a graceful close before
// their connections are interrupted.
constexpr std::uint64_t kLingerMs = 250;

class ThreadsEngine;

// One connection: its hub membership, socket and two threads.
struct Client : public HubMember {
  ThreadsEngine* engine = nullptr;
  ec_socket_t sock = EC_INVALID_SOCKET;
  ec_thread_t reader;
  ec_thread_t writer;
  bool reader_started = false;
  bool writer_started = false;
  // Threads still running, plus one held by admit() until it has written
  // the fields above; guarded by the engine's mutex.
  int alive = 0;
  // Set by the reader when the peer shut its write side (recv returned 0);
  // read by the writer after a send error. Guarded by the hub's lock through
  // the happens-before of close_member / next_batch; kept atomic for clarity.
  std::atomic<bool> half_closed{false};

 protected:
  // A stopping server ends connections gracefully (the peer still reads
  // what was flushed); every other reason cuts the client at once.
  void on_close(const char* reason) override {
    if (std::strcmp(reason, "server-closed") == 0) {
      ec_socket_end(sock);
    } else {
      ec_socket_interrupt(sock);
    }
  }
};

// Collects the frames of one received chunk so they enter the hub under one
// lock acquisition, each stored once.
class FrameCollector : public FrameSink {
 public:
  FrameCollector(std::uint64_t sender, std::vector<FrameRef>* out)
      : sender_(sender), out_(out) {}
  void on_frame(const FrameView& view) override {
    auto frame = std::make_shared<HubFrame>();
    frame->sender = sender_;
    frame->bytes.assign(view.bytes, view.bytes + view.size);
    frame->payload_offset = view.payload_offset;
    frame->payload_size = view.payload_size;
    out_->push_back(std::move(frame));
  }

 private:
  std::uint64_t sender_;
  std::vector<FrameRef>* out_;
};

class ThreadsEngine : public Engine {
 public:
  ThreadsEngine(const EngineOptions& options, EventSink* sink)
      : options_(options), sink_(sink), hub_(hub_options(options)) {
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
    result.err = ec_net_acquire();
    if (!result.err.ok()) {
      result.syscall = "WSAStartup";
      return result;
    }
    result.err = ec_listen(options_.host.c_str(), options_.port, kBacklog,
                           &listener_, &result.bound, &result.syscall);
    if (!result.err.ok()) {
      ec_net_release();
      return result;
    }
    result.err = ec_thread_create(&reaper_thread_, &ThreadsEngine::reaper_main,
                                  this, EC_THREAD_STACK_BYTES);
    if (result.err.ok()) {
      result.err = ec_thread_create(&accept_thread_, &ThreadsEngine::accept_main,
                                    this, EC_THREAD_STACK_BYTES);
      if (!result.err.ok()) {
        {
          ec_lock_guard lock(&mutex_);
          reaper_exit_ = true;
          ec_cond_signal(&reaper_cond_);
        }
        ec_thread_join(&reaper_thread_);
      }
    }
    if (!result.err.ok()) {
      result.syscall = "thread_create";
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

  void inject(const std::uint8_t* data, std::size_t len,
              std::uint64_t origin) override {
    std::vector<FrameRef> frames;
    FrameCollector collector(origin, &frames);
    split_encoded(options_.framing, data, len, &collector);
    if (!frames.empty()) hub_.append(frames.data(), frames.size());  // Never waits.
  }

  void disconnect(std::uint64_t id, const char* reason) override {
    // Under the engine's lock the client cannot be finished and freed (the
    // reaper erases it under this lock before closing its socket). Lock
    // order: engine mutex, then hub lock, as everywhere else.
    ec_lock_guard lock(&mutex_);
    auto it = clients_.find(id);
    if (it != clients_.end()) hub_.close_member(it->second, reason);
  }

  void stop(std::uint64_t deadline_ms) override {
    if (!running_) return;
    running_ = false;
    std::uint64_t stop_started = ec_now_ms();
    // 1. Stop accepting: wake the accept thread and join it. After this no
    //    client can be added.
    {
      ec_lock_guard lock(&mutex_);
      stopping_ = true;
      ec_cond_broadcast(&idle_cond_);  // Ends an accept back-off wait.
    }
    ec_listener_wake(listener_);
    ec_thread_join(&accept_thread_);
    ec_listener_close(listener_);
    listener_ = nullptr;
    // 2. Fix the set of frames to flush and give writers until the deadline.
    hub_.close_input();
    hub_.wait_drained(ec_now_ms() + deadline_ms);
    // 3. Close every client gracefully ("server-closed"): writers stop, and
    //    readers see end of stream (POSIX at once; Windows when the peer
    //    answers the FIN). The reaper joins the threads of each.
    hub_.close_all("server-closed");
    // 4. Clients still there after a short linger (a peer that does not
    //    close, a writer stuck in send) are interrupted, abortively if the
    //    OS needs it. Their sockets are still open: a socket is closed only
    //    after its client has left clients_, and this runs under the lock.
    std::uint64_t now = ec_now_ms();
    std::uint64_t linger_end = std::max(stop_started + deadline_ms, now + kLingerMs);
    {
      ec_lock_guard lock(&mutex_);
      while (!clients_.empty()) {
        now = ec_now_ms();
        if (now >= linger_end) break;
        ec_cond_timed_wait(&idle_cond_, &mutex_, linger_end - now);
      }
      for (const auto& kv : clients_) ec_socket_interrupt(kv.second->sock);
      while (!clients_.empty()) ec_cond_wait(&idle_cond_, &mutex_);
      reaper_exit_ = true;
      ec_cond_signal(&reaper_cond_);
    }
    // 4. The last thread.
    ec_thread_join(&reaper_thread_);
    ec_net_release();
  }

  EngineStats stats() override {
    EngineStats s;
    {
      ec_lock_guard lock(&mutex_);
      s.clients = clients_.size();
      s.disconnects = disconnects_;
    }
    s.hub = hub_.counters();
    return s;
  }

 private:
  static HubOptions hub_options(const EngineOptions& o) {
    HubOptions h;
    h.replay = o.replay;
    h.echo_to_sender = o.echo_to_sender;
    h.max_backlog_bytes = o.max_backlog_bytes;
    return h;
  }

  static void accept_main(void* arg) { static_cast<ThreadsEngine*>(arg)->accept_loop(); }
  static void reaper_main(void* arg) { static_cast<ThreadsEngine*>(arg)->reaper_loop(); }
  static void reader_main(void* arg) {
    Client* c = static_cast<Client*>(arg);
    c->engine->reader_loop(c);
  }
  static void writer_main(void* arg) {
    Client* c = static_cast<Client*>(arg);
    c->engine->writer_loop(c);
  }

  static bool transient(ec_err code) {
    return code == EC_ECONNABORTED || code == EC_ECONNRESET ||
           code == EC_EINTR || code == EC_EAGAIN || code == EC_EPIPE ||
           code == EC_ENETDOWN || code == EC_EHOSTUNREACH ||
           code == EC_ENETUNREACH || code == EC_ETIMEDOUT;
  }

  static bool resource_shortage(ec_err code) {
    return code == EC_EMFILE || code == EC_ENFILE || code == EC_ENOBUFS ||
           code == EC_ENOMEM;
  }

  void accept_loop() {
    bool reported_shortage = false;
    for (;;) {
      ec_socket_t sock = EC_INVALID_SOCKET;
      std::string address;
      int port = 0;
      ec_error err = ec_listener_accept(listener_, &sock, &address, &port);
      if (err.code == EC_ECANCELED) return;
      if (!err.ok()) {
        if (transient(err.code)) continue;
        if (resource_shortage(err.code)) {
          // Out of descriptors or memory: say so once per episode, and wait
          // a little (woken at once by stop) instead of spinning on a
          // connection that stays pending.
          if (!reported_shortage) sink_->on_error(err, "accept");
          reported_shortage = true;
          ec_lock_guard lock(&mutex_);
          if (!stopping_) ec_cond_timed_wait(&idle_cond_, &mutex_, 100);
          if (stopping_) return;
          continue;
        }
        sink_->on_error(err, "accept");
        return;
      }
      reported_shortage = false;
      admit(sock, address, port);
    }
  }

  void admit(ec_socket_t sock, const std::string& address, int port) {
    Client* c = nullptr;
    const char* refused = nullptr;
    std::uint64_t id;
    {
      ec_lock_guard lock(&mutex_);
      id = ++next_id_;
      if (clients_.size() >= options_.max_clients) {
        refused = "server-full";
      } else {
        c = new (std::nothrow) Client;
        if (c == nullptr) {
          refused = "client-error";
        } else {
          c->engine = this;
          c->id = id;
          c->sock = sock;
          // Reader, writer, and admit() itself: the reader can finish
          // before ec_thread_create returns, and the reaper must not see
          // the client (and delete it) before c->reader and
          // c->reader_started are written (ThreadSanitizer found the race).
          c->alive = 3;
          clients_[id] = c;
        }
      }
      if (refused != nullptr) ++disconnects_[refused];
    }
    if (c == nullptr) {
      ec_socket_close(sock);
      sink_->on_disconnect(id, refused);
      return;
    }
    hub_.join(c);
    sink_->on_connection(id, address, port);
    ec_error err = ec_thread_create(&c->writer, &ThreadsEngine::writer_main, c,
                                    EC_THREAD_STACK_BYTES);
    c->writer_started = err.ok();
    if (err.ok()) {
      err = ec_thread_create(&c->reader, &ThreadsEngine::reader_main, c,
                             EC_THREAD_STACK_BYTES);
      c->reader_started = err.ok();
      if (!err.ok()) {
        hub_.close_member(c, "client-error");  // The writer exits.
        thread_done(c);                        // For the reader never run.
      }
    } else {
      hub_.close_member(c, "client-error");
      thread_done(c);
      thread_done(c);
    }
    if (!err.ok()) sink_->on_error(err, "thread_create");
    thread_done(c);  // admit()'s own share: the reaper may take c from here.
  }

  void reader_loop(Client* c) {
    std::unique_ptr<std::uint8_t[]> buf(new (std::nothrow) std::uint8_t[kRecvBytes]);
    if (!buf) {
      hub_.close_member(c, "client-error");
      thread_done(c);
      return;
    }
    Framer framer(options_.framing, static_cast<std::size_t>(options_.max_frame_bytes));
    std::vector<FrameRef> frames;
    FrameCollector collector(c->id, &frames);
    std::vector<std::uint8_t> forwarded;  // Cluster mode: one read's frames.
    for (;;) {
      std::size_t n = 0;
      ec_error err = ec_socket_recv(c->sock, buf.get(), kRecvBytes, &n);
      if (!err.ok()) {
        hub_.close_member(c, "client-error");  // Keeps an earlier reason.
        break;
      }
      if (n == 0) {
        if (ec_socket_gone(c->sock)) {
          // A reset that recv reported as end of stream (Wine): not a half-close.
          hub_.close_member(c, "client-error");
          break;
        }
        // The peer shut its write side: drop any partial frame (with the
        // framer) but keep the writer sending until the socket fails.
        c->half_closed = true;
        break;
      }
      frames.clear();
      bool ok = framer.feed(buf.get(), n, &collector);
      if (!frames.empty()) {
        if (forward_) {
          // Cluster mode: the frames go to JS (and the stream), not the hub.
          if (sink_->wants_messages())
            for (const FrameRef& f : frames) sink_->on_message(c->id, f, true);
          forwarded.clear();
          for (const FrameRef& f : frames)
            forwarded.insert(forwarded.end(), f->bytes.begin(), f->bytes.end());
          sink_->on_frames(c->id, forwarded.data(), forwarded.size(), frames.size(), true);
          if (forwarded.capacity() > kRecvBytes) std::vector<std::uint8_t>().swap(forwarded);
        } else if (hub_.append(frames.data(), frames.size(), true) &&
                   sink_->wants_messages()) {
          for (const FrameRef& f : frames) sink_->on_message(c->id, f, true);
        }
      }
      frames.clear();
      if (!ok) {
        hub_.close_member(c, "frame-too-large");
        break;
      }
    }
    thread_done(c);
  }

  void writer_loop(Client* c) {
    std::vector<FrameRef> batch;
    std::vector<ec_iovec> pieces;
    // Small frames are copied side by side into `scratch` so one send carries
    // many of them; large ones are sent from the hub's copy (no copy here).
    // Reserved once and never grown past kBatchBytes + kCoalesceBytes, so
    // pointers into it stay valid while a batch is built.
    std::vector<std::uint8_t> scratch;
    std::uint64_t done = 0;  // End of the batch just sent, reported below.
    for (;;) {
      std::uint64_t end = 0;
      if (hub_.next_batch(c, &batch, &end, kBatchBytes, true, done) == BatchResult::Closed)
        break;
      pieces.clear();
      for (const FrameRef& f : batch) {
        const std::uint8_t* data = f->bytes.data();
        std::size_t size = f->bytes.size();
        if (size > kCoalesceBytes) {
          pieces.push_back(ec_iovec{data, size});
          continue;
        }
        if (scratch.capacity() == 0) scratch.reserve(kBatchBytes + kCoalesceBytes);
        const std::uint8_t* at = scratch.data() + scratch.size();
        scratch.insert(scratch.end(), data, data + size);
        if (!pieces.empty() &&
            static_cast<const std::uint8_t*>(pieces.back().base) + pieces.back().len == at) {
          pieces.back().len += size;  // Contiguous with the previous copy.
        } else {
          pieces.push_back(ec_iovec{at, size});
        }
      }
      ec_error err = ec_socket_send_all(c->sock, pieces.data(), pieces.size());
      scratch.clear();
      if (!err.ok()) {
        hub_.close_member(c, c->half_closed ? "client-closed" : "client-error");
        break;
      }
      done = end;
    }
    batch.clear();
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
        while (dead_.empty() && !reaper_exit_) ec_cond_wait(&reaper_cond_, &mutex_);
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
    const char* reason = hub_.reason(c);
    if (reason == nullptr) reason = "client-closed";
    hub_.leave(c);
    std::uint64_t id = c->id;
    {
      ec_lock_guard lock(&mutex_);
      clients_.erase(c->id);  // Before the close: stop() may interrupt clients_.
      ++disconnects_[reason];
      if (clients_.empty()) ec_cond_broadcast(&idle_cond_);
    }
    ec_socket_close(c->sock);
    delete c;
    sink_->on_disconnect(id, reason);
  }

  EngineOptions options_;
  EventSink* sink_;
  Hub hub_;
  ec_listener* listener_ = nullptr;
  ec_thread_t accept_thread_;
  ec_thread_t reaper_thread_;
  bool running_ = false;  // Touched only by the thread calling start/stop.
  // Cluster mode (set_forward); read by every reader per chunk.
  std::atomic<bool> forward_{false};

  // Guards everything below.
  ec_mutex_t mutex_;
  // The reaper sleeps here until a client is finished or it should exit.
  ec_cond_t reaper_cond_;
  // stop() sleeps here until every client is gone; the accept thread's
  // back-off wait uses it too so that stop ends it at once.
  ec_cond_t idle_cond_;
  std::map<std::uint64_t, Client*> clients_;
  std::vector<Client*> dead_;
  std::map<std::string, std::uint64_t> disconnects_;
  std::uint64_t next_id_ = 0;
  bool stopping_ = false;
  bool reaper_exit_ = false;
};

}  // namespace

std::unique_ptr<Engine> make_threads_engine(const EngineOptions& options,
                                            EventSink* sink) {
  return std::unique_ptr<Engine>(new ThreadsEngine(options, sink));
}

}  // namespace echocast
