// test_engine.cc — both native engines through real loopback sockets, with
// a recording EventSink: the seed example, server-full, frame-too-large,
// replay to a newcomer, stop joining every thread, and who may connect
// (docs/contract.md S15: address lists, the token, the hook, HTTP lines,
// origins). Also the target of the
// ThreadSanitizer build.
#include <string>
#include <vector>

#include "../core/engine.h"
#include "../core/handshake_list.h"
#include "../platform/testing.h"
#include "unit.h"

using namespace echocast;

namespace {

// Records events; tests wait on it with a timeout.
class Recorder : public EventSink {
 public:
  Recorder() {
    ec_mutex_init(&m_);
    ec_cond_init(&c_);
  }
  ~Recorder() override {
    ec_cond_destroy(&c_);
    ec_mutex_destroy(&m_);
  }
  void on_connection(std::uint64_t id, const std::string& a, int) override {
    add("connection " + std::to_string(id) + " " + a);
  }
  bool wants_messages() override { return true; }
  void on_frames(std::uint64_t id, const std::uint8_t* data, std::size_t len, std::size_t frames,
                 bool) override {
    add("frames " + std::to_string(id) + " " + std::to_string(frames) + " " +
        std::string(reinterpret_cast<const char*>(data), len));
  }
  void on_message(std::uint64_t id, const FrameRef& f, bool) override {
    add("message " + std::to_string(id) + " " +
        std::string(f->bytes.begin() + f->payload_offset,
                    f->bytes.begin() + f->payload_offset + f->payload_size));
  }
  void on_disconnect(std::uint64_t id, const char* reason) override {
    add("disconnect " + std::to_string(id) + " " + reason);
  }
  void on_error(const ec_error& err, const char* syscall) override {
    add(std::string("error ") + syscall + " " + ec_err_name(err.code));
  }
  void on_refusal(Refusal cause, bool ws, const std::string&, int,
                  const std::string& detail) override {
    add(std::string("refusal ") + refusal_name(cause) + (ws ? " ws" : " tcp") +
        (detail.empty() ? "" : " " + detail));
  }
  // "authorize <ticket> <first frame>" or "authorize <ticket> <path>?<query>".
  void on_authorize(AuthorizeRequest&& r) override {
    add("authorize " + std::to_string(r.ticket) + " " +
        (r.ws ? r.path + "?" + r.query : std::string(r.first_frame.begin(), r.first_frame.end())));
  }
  // Waits until `event` has been recorded (true) or 5 s pass (false).
  bool wait_for(const std::string& event) {
    ec_lock_guard lock(&m_);
    std::uint64_t deadline = ec_now_ms() + 5000;
    for (;;) {
      for (const std::string& e : events_)
        if (e == event) return true;
      std::uint64_t now = ec_now_ms();
      if (now >= deadline) return false;
      ec_cond_timed_wait(&c_, &m_, deadline - now);
    }
  }
  std::vector<std::string> events() {
    ec_lock_guard lock(&m_);
    return events_;
  }

 private:
  void add(const std::string& e) {
    ec_lock_guard lock(&m_);
    events_.push_back(e);
    ec_cond_broadcast(&c_);
  }
  ec_mutex_t m_;
  ec_cond_t c_;
  std::vector<std::string> events_;
};

bool send_str(ec_socket_t s, const std::string& text) {
  ec_iovec piece = {text.data(), text.size()};
  return ec_socket_send_all(s, &piece, 1).ok();
}

// Reads until `want` bytes arrived (or the stream ends / fails).
std::string recv_n(ec_socket_t s, std::size_t want) {
  std::string out;
  char buf[256];
  while (out.size() < want) {
    std::size_t n = 0;
    if (!ec_socket_recv(s, buf, sizeof buf, &n).ok() || n == 0) break;
    out.append(buf, n);
  }
  return out;
}

struct StopCtx {
  Engine* engine;
  std::uint64_t deadline_ms;
};
void stop_main(void* arg) {
  StopCtx* s = static_cast<StopCtx*>(arg);
  s->engine->stop(s->deadline_ms);
}

typedef std::unique_ptr<Engine> (*Factory)(const EngineOptions&, EventSink*);

// Makes an engine with `o` reporting to `sink` and starts it; *port is
// where it listens. False if it did not start.
bool start_engine(Factory make_engine, const EngineOptions& o, EventSink* sink,
                  std::unique_ptr<Engine>* e, int* port) {
  *e = make_engine(o, sink);
  ListenResult r = (*e)->start();
  *port = r.bound.port;
  return r.err.ok();
}

// start_engine(), then three clients connected in this order (ids 1, 2, 3).
bool start_with_three(Factory make_engine, const EngineOptions& o, Recorder* rec,
                      std::unique_ptr<Engine>* e, ec_socket_t* first, ec_socket_t* second,
                      ec_socket_t* third) {
  int port = 0;
  if (!start_engine(make_engine, o, rec, e, &port)) return false;
  for (ec_socket_t* s : {first, second, third})
    if (!ec_connect("127.0.0.1", port, s).ok()) return false;
  return rec->wait_for("connection 3 127.0.0.1");
}

// Connects a client and waits for the event it causes (`expect`).
bool connect_and_wait(int port, ec_socket_t* s, Recorder* rec, const char* expect) {
  return ec_connect("127.0.0.1", port, s).ok() && rec->wait_for(expect);
}

// Starts an engine and connects two clients (ids 1 and 2).
bool start_with_two(Factory make_engine, const EngineOptions& o, Recorder* rec,
                    std::unique_ptr<Engine>* e, int* port, ec_socket_t* first,
                    ec_socket_t* second) {
  return start_engine(make_engine, o, rec, e, port) &&
         connect_and_wait(*port, first, rec, "connection 1 127.0.0.1") &&
         connect_and_wait(*port, second, rec, "connection 2 127.0.0.1");
}

// One masked client frame (the key is fixed; RFC 6455 only asks for one).
std::string ws_client_frame(std::uint8_t first_byte, const std::string& payload) {
  std::string out;
  out += static_cast<char>(first_byte);
  out += static_cast<char>(0x80 | payload.size());  // Short payloads only.
  const char key[4] = {9, 8, 7, 6};
  out.append(key, 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    out += static_cast<char>(payload[i] ^ key[i % 4]);
  return out;
}

const char kWsHead[] =
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

// Reads an HTTP response head (up to the blank line).
std::string recv_head(ec_socket_t s) {
  std::string out;
  char ch;
  while (out.size() < 4096 && out.find("\r\n\r\n") == std::string::npos) {
    std::size_t n = 0;
    if (!ec_socket_recv(s, &ch, 1, &n).ok() || n == 0) break;
    out += ch;
  }
  return out;
}

}  // namespace

// Each scenario runs on both engines: threads and poll.
#define ENGINE_TEST(name)                              \
  static void name(Factory make_engine);               \
  TEST(name##_threads) { name(&make_threads_engine); } \
  TEST(name##_poll) { name(&make_poll_engine); }       \
  static void name(Factory make_engine)

ENGINE_TEST(engine_seed_example_and_stop) {
  Recorder rec;
  EngineOptions o;
  std::unique_ptr<Engine> e;
  int port = 0;
  CHECK(start_engine(make_engine, o, &rec, &e, &port));
  ec_socket_t a = EC_INVALID_SOCKET, b = EC_INVALID_SOCKET;
  CHECK(ec_connect("127.0.0.1", port, &a).ok());
  CHECK(rec.wait_for("connection 1 127.0.0.1"));
  CHECK(send_str(a, "Hello\n"));
  CHECK_EQ(recv_n(a, 6), std::string("Hello\n"));
  CHECK(send_str(a, "World\n"));
  CHECK_EQ(recv_n(a, 6), std::string("World\n"));
  CHECK(ec_connect("127.0.0.1", port, &b).ok());
  CHECK_EQ(recv_n(b, 6), std::string("World\n"));
  CHECK(send_str(b, "Wow\n"));
  CHECK_EQ(recv_n(b, 4), std::string("Wow\n"));
  CHECK_EQ(recv_n(a, 4), std::string("Wow\n"));
  CHECK(send_str(a, "That is so cool!\n"));
  CHECK_EQ(recv_n(a, 17), std::string("That is so cool!\n"));
  CHECK_EQ(recv_n(b, 17), std::string("That is so cool!\n"));
  CHECK(rec.wait_for("message 1 That is so cool!"));
  EngineStats s = e->stats();
  CHECK_EQ(s.clients, 2u);
  CHECK_EQ(s.counters.frames_in, 4u);
  CHECK_EQ(s.counters.frames_out, 7u);
  e->broadcast(reinterpret_cast<const std::uint8_t*>("bye\n"), 4);
  // Stop on another thread while the clients, like real peers, read what
  // was flushed, see end of stream and close their side (which a graceful
  // close on Windows waits for).
  StopCtx sc{e.get(), 1000};
  ec_thread_t stopper;
  CHECK(ec_thread_create(&stopper, stop_main, &sc, EC_THREAD_STACK_BYTES).ok());
  std::string got_a = recv_n(a, 100);
  std::string got_b = recv_n(b, 100);
  ec_socket_close(a);
  ec_socket_close(b);
  std::uint64_t t0 = ec_now_ms();
  ec_thread_join(&stopper);
  CHECK_EQ(got_a, std::string("bye\n"));  // Flushed, then closed.
  CHECK_EQ(got_b, std::string("bye\n"));
  CHECK(ec_now_ms() - t0 < 5000);
  CHECK(rec.wait_for("disconnect 1 server-closed"));
  CHECK(rec.wait_for("disconnect 2 server-closed"));
  CHECK_EQ(e->stats().clients, 0u);
}

ENGINE_TEST(engine_limits_and_bad_input) {
  Recorder rec;
  EngineOptions o;
  o.max_clients = 2;
  o.max_frame_bytes = 8;
  o.framing = Framing::Line;
  std::unique_ptr<Engine> e;
  int port = 0;
  ec_socket_t a, b, c;
  CHECK(start_with_two(make_engine, o, &rec, &e, &port, &a, &b));
  CHECK(ec_connect("127.0.0.1", port, &c).ok());
  CHECK(rec.wait_for("disconnect 3 server-full"));
  CHECK_EQ(recv_n(c, 1), std::string(""));  // Closed at once.
  CHECK(send_str(a, "ok\n123456789"));
  CHECK(rec.wait_for("disconnect 1 frame-too-large"));
  CHECK_EQ(recv_n(b, 3), std::string("ok\n"));
  // A newcomer gets the replayed frame first, then the new one.
  ec_socket_close(c);
  CHECK(ec_connect("127.0.0.1", port, &c).ok());
  CHECK(rec.wait_for("connection 4 127.0.0.1"));
  CHECK_EQ(recv_n(c, 3), std::string("ok\n"));
  CHECK(send_str(c, "hi\n"));
  CHECK_EQ(recv_n(c, 3), std::string("hi\n"));
  CHECK_EQ(recv_n(b, 3), std::string("hi\n"));
  e->stop(100);
  CHECK(rec.wait_for("disconnect 2 server-closed"));
  CHECK(rec.wait_for("disconnect 4 server-closed"));
  ec_socket_close(a);
  ec_socket_close(b);
  ec_socket_close(c);
}

ENGINE_TEST(engine_many_clients_broadcast) {
  Recorder rec;
  EngineOptions o;
  o.replay = 0;
  std::unique_ptr<Engine> e;
  int port = 0;
  CHECK(start_engine(make_engine, o, &rec, &e, &port));
  constexpr int kN = 100;
  std::vector<ec_socket_t> socks(kN);
  for (int i = 0; i < kN; ++i) CHECK(ec_connect("127.0.0.1", port, &socks[i]).ok());
  CHECK(rec.wait_for("connection " + std::to_string(kN) + " 127.0.0.1"));
  e->broadcast(reinterpret_cast<const std::uint8_t*>("all\n"), 4);
  for (int i = 0; i < kN; ++i) CHECK_EQ(recv_n(socks[i], 4), std::string("all\n"));
  CHECK_EQ(e->stats().counters.frames_out, static_cast<std::uint64_t>(kN));
  e->stop(500);
  for (int i = 0; i < kN; ++i) ec_socket_close(socks[i]);
  CHECK_EQ(e->stats().disconnects["server-closed"], static_cast<std::uint64_t>(kN));
}

ENGINE_TEST(engine_forward_inject_disconnect) {
  Recorder rec;
  EngineOptions o;
  o.replay = 2;
  o.echo_to_sender = false;
  std::unique_ptr<Engine> e = make_engine(o, &rec);
  e->set_forward(true);
  // Injected before start: the replay history a cluster node preloads.
  e->inject(reinterpret_cast<const std::uint8_t*>("h1\nh2\nh3\n"), 9, 0);
  ListenResult r = e->start();
  CHECK(r.err.ok());
  ec_socket_t a, b;
  CHECK(ec_connect("127.0.0.1", r.bound.port, &a).ok());
  CHECK(rec.wait_for("connection 1 127.0.0.1"));
  CHECK_EQ(recv_n(a, 6), std::string("h2\nh3\n"));
  CHECK(ec_connect("127.0.0.1", r.bound.port, &b).ok());
  CHECK(rec.wait_for("connection 2 127.0.0.1"));
  CHECK_EQ(recv_n(b, 6), std::string("h2\nh3\n"));
  // Forwarded, not delivered: one event per read, wire form.
  CHECK(send_str(a, "x\ny\n"));
  CHECK(rec.wait_for("frames 1 2 x\ny\n"));
  // Injected back with a as the origin: b gets them, a (echoToSender off) not.
  e->inject(reinterpret_cast<const std::uint8_t*>("x\ny\n"), 4, 1);
  e->inject(reinterpret_cast<const std::uint8_t*>("z\n"), 2, 0);
  CHECK_EQ(recv_n(b, 6), std::string("x\ny\nz\n"));
  CHECK_EQ(recv_n(a, 2), std::string("z\n"));
  CHECK_EQ(e->stats().counters.frames_in, 6u);
  e->disconnect(1, "cluster-unavailable");
  CHECK(rec.wait_for("disconnect 1 cluster-unavailable"));
  e->disconnect(1, "client-error");  // Gone: no-op.
  CHECK_EQ(recv_n(a, 100), std::string(""));
  e->stop(200);
  CHECK(rec.wait_for("disconnect 2 server-closed"));
  CHECK_EQ(e->stats().disconnects["cluster-unavailable"], 1u);
  CHECK_EQ(e->stats().disconnects.count("client-error"), 0u);
  ec_socket_close(a);
  ec_socket_close(b);
}

namespace {

// Sleeps about ms milliseconds (nothing signals the condition variable).
void nap_ms(std::uint64_t ms) {
  ec_mutex_t m;
  ec_cond_t cv;
  ec_mutex_init(&m);
  ec_cond_init(&cv);
  ec_mutex_lock(&m);
  ec_cond_timed_wait(&cv, &m, ms);
  ec_mutex_unlock(&m);
  ec_cond_destroy(&cv);
  ec_mutex_destroy(&m);
}

// A publisher thread: `total` bytes of 1 KiB lines, as fast as TCP takes them.
struct PublishCtx {
  ec_socket_t sock;
  std::size_t total;
  bool ok = false;
};
void publish_main(void* arg) {
  PublishCtx* p = static_cast<PublishCtx*>(arg);
  std::string line(1023, 'p');
  line += '\n';
  std::string chunk;
  for (int i = 0; i < 64; ++i) chunk += line;
  bool ok = true;
  for (std::size_t sent = 0; ok && sent < p->total; sent += chunk.size())
    ok = send_str(p->sock, chunk);
  p->ok = ok;
}

// A reader thread: reads until `want` bytes, end of stream or an error,
// napping `nap` ms after every `per_nap` bytes (0: full speed).
struct ReadCtx {
  ec_socket_t sock;
  std::size_t want;
  std::size_t per_nap;
  std::uint64_t nap;
  std::size_t got = 0;
  bool intact = true;
};
void read_main(void* arg) {
  ReadCtx* r = static_cast<ReadCtx*>(arg);
  std::vector<char> buf(64 * 1024);
  std::size_t since_nap = 0;
  while (r->got < r->want) {
    std::size_t n = 0;
    std::size_t ask = buf.size();
    if (r->per_nap != 0 && ask > r->per_nap) ask = r->per_nap;
    if (!ec_socket_recv(r->sock, buf.data(), ask, &n).ok() || n == 0) break;
    for (std::size_t i = 0; i < n; ++i) {
      char want = (r->got + i) % 1024 == 1023 ? '\n' : 'p';
      if (buf[i] != want) r->intact = false;
    }
    r->got += n;
    since_nap += n;
    if (r->per_nap != 0 && since_nap >= r->per_nap) {
      since_nap = 0;
      nap_ms(r->nap);
    }
  }
}

}  // namespace

// docs/contract.md S11: a FIN is a close (without allowHalfOpen): the client
// is sent what was queued for it, then closed, and its slot is free at once,
// with or without traffic.
ENGINE_TEST(engine_fin_frees_the_slot) {
  Recorder rec;
  EngineOptions o;
  o.max_clients = 2;
  o.replay = 0;
  std::unique_ptr<Engine> e;
  int port = 0;
  ec_socket_t a, b, c;
  CHECK(start_with_two(make_engine, o, &rec, &e, &port, &a, &b));
  // Quiet: nobody sends. b leaves; its place is free.
  ec_socket_shutdown_send(b);
  CHECK(rec.wait_for("disconnect 2 client-closed"));
  CHECK_EQ(recv_n(b, 1), std::string(""));
  CHECK(ec_connect("127.0.0.1", port, &c).ok());
  CHECK(rec.wait_for("connection 3 127.0.0.1"));
  // With traffic: a gets what was sent, then the end.
  // (Queued before a's end of stream: the fanout tests cover the frames
  // still unsent at that moment.)
  CHECK(send_str(c, "last\n"));
  CHECK(rec.wait_for("message 3 last"));
  ec_socket_shutdown_send(a);
  CHECK_EQ(recv_n(a, 100), std::string("last\n"));
  CHECK(rec.wait_for("disconnect 1 client-closed"));
  e->stop(200);
  ec_socket_close(a);
  ec_socket_close(b);
  ec_socket_close(c);
}

// allowHalfOpen keeps a half-closed client receiving.
ENGINE_TEST(engine_allow_half_open_keeps_receiving) {
  Recorder rec;
  EngineOptions o;
  o.replay = 0;
  o.allow_half_open = true;
  std::unique_ptr<Engine> e;
  int port = 0;
  CHECK(start_engine(make_engine, o, &rec, &e, &port));
  ec_socket_t a;
  CHECK(ec_connect("127.0.0.1", port, &a).ok());
  CHECK(rec.wait_for("connection 1 127.0.0.1"));
  ec_socket_shutdown_send(a);
  nap_ms(50);
  e->broadcast(reinterpret_cast<const std::uint8_t*>("still\n"), 6);
  CHECK_EQ(recv_n(a, 6), std::string("still\n"));
  CHECK_EQ(e->stats().clients, 1u);
  e->stop(200);
  ec_socket_close(a);
}

namespace {

// The flow-control tests' options (docs/contract.md S7): a 256 KiB backlog
// limit, no replay, no echo.
EngineOptions flow_options(std::uint64_t slow_consumer_ms) {
  EngineOptions o;
  o.replay = 0;
  o.echo_to_sender = false;
  o.max_backlog_bytes = 256 * 1024;
  o.slow_consumer_ms = slow_consumer_ms;
  return o;
}

// An engine with flow_options() and three clients: two readers (first and
// second, ids 1 and 2) and a publisher.
struct FlowRun {
  Recorder rec;
  std::unique_ptr<Engine> e;
  ec_socket_t first, second, pub;
  bool start(Factory make_engine, std::uint64_t slow_consumer_ms) {
    return start_with_three(make_engine, flow_options(slow_consumer_ms), &rec, &e, &first, &second,
                            &pub);
  }
};

}  // namespace

// docs/contract.md S7: a reader much slower than an unpaced publisher loses
// nothing; the publisher is paced (reading pauses), nobody is cut.
ENGINE_TEST(engine_flow_control_paces_the_publisher) {
  const std::size_t total = 8u * 1024 * 1024;
  FlowRun run;
  CHECK(run.start(make_engine, 5000));
  std::unique_ptr<Engine>& e = run.e;
  ec_socket_t fast = run.first, slow = run.second, pub = run.pub;
  ReadCtx rf{fast, total, 0, 0};
  // About 1.6 MB/s at most: slower than any publisher, even under a sanitizer on a
  // busy machine (at 3 MB/s the TSan build, sharing 2 cores with an ASan run, never
  // paused: its publisher was no faster than the reader).
  ReadCtx rs{slow, total, 16 * 1024, 10};
  PublishCtx pc{pub, total};
  ec_thread_t tf, ts, tp;
  CHECK(ec_thread_create(&tf, read_main, &rf, EC_THREAD_STACK_BYTES).ok());
  CHECK(ec_thread_create(&ts, read_main, &rs, EC_THREAD_STACK_BYTES).ok());
  CHECK(ec_thread_create(&tp, publish_main, &pc, EC_THREAD_STACK_BYTES).ok());
  ec_thread_join(&tp);
  ec_thread_join(&tf);
  ec_thread_join(&ts);
  CHECK(pc.ok);
  CHECK_EQ(rf.got, total);
  CHECK_EQ(rs.got, total);
  CHECK(rf.intact && rs.intact);
  EngineStats s = e->stats();
#ifndef _WIN32
  // Not on Windows: in the Windows lane (Wine) sends complete into buffers of
  // Wine's own, and once in about fifteen runs the 8 MiB went through with the
  // backlog never past the limit (native-poll, read_pauses 0): the platform's
  // buffering, not the engine's count (as test/conformance/websocket-close.test.ts
  // says of its own pause check). The rest holds there.
  CHECK(s.read_pauses > 0);
#endif
  CHECK_EQ(s.disconnects.count("slow-consumer"), 0u);
  e->stop(200);
  for (ec_socket_t x : {pub, fast, slow}) ec_socket_close(x);
}

// A reader that never reads is cut once slow_consumer_ms has passed; the
// others lose nothing.
ENGINE_TEST(engine_stalled_reader_cut_after_slow_consumer_ms) {
  FlowRun run;
  CHECK(run.start(make_engine, 300));
  Recorder& rec = run.rec;
  std::unique_ptr<Engine>& e = run.e;
  ec_socket_t stalled = run.first, fast = run.second, pub = run.pub;
  const std::size_t total = 32u * 1024 * 1024;
  ReadCtx rf{fast, total, 0, 0};
  PublishCtx pc{pub, total};
  ec_thread_t tf, tp;
  std::uint64_t t0 = ec_now_ms();
  CHECK(ec_thread_create(&tf, read_main, &rf, EC_THREAD_STACK_BYTES).ok());
  CHECK(ec_thread_create(&tp, publish_main, &pc, EC_THREAD_STACK_BYTES).ok());
  CHECK(rec.wait_for("disconnect 1 slow-consumer"));
  std::uint64_t cut_after = ec_now_ms() - t0;
  ec_thread_join(&tp);
  ec_thread_join(&tf);
  CHECK(pc.ok);
  CHECK_EQ(rf.got, total);
  CHECK(rf.intact);
  CHECK(cut_after >= 250);  // It was waited for...
  CHECK(cut_after < 3000);  // ...for about slow_consumer_ms.
  EngineStats s = e->stats();
  CHECK_EQ(s.read_pauses >= 1, true);
  CHECK(s.read_paused_ms >= 250);
  e->stop(200);
  for (ec_socket_t x : {pub, fast, stalled}) ec_socket_close(x);
}

// docs/contract.md §6 through real sockets: an upgrade admitted beside a TCP
// client (one order, each frame one message, text or binary), a ping
// answered between messages, a handshake that never completes takes no
// slot, and stop's close frame 1001.
ENGINE_TEST(engine_websocket_beside_tcp) {
  Recorder rec;
  EngineOptions o;
  o.max_clients = 2;
  o.ws_port = 0;
  o.ws_path = "/ws";
  o.ws_page = "<p>hi</p>";
  std::unique_ptr<Engine> e = make_engine(o, &rec);
  ListenResult r = e->start();
  CHECK(r.err.ok());
  CHECK(r.ws_bound.port > 0);
  ec_socket_t t, w, silent;
  CHECK(ec_connect("127.0.0.1", r.ws_bound.port, &silent).ok());  // Holds no slot.
  CHECK(ec_connect("127.0.0.1", r.bound.port, &t).ok());
  CHECK(rec.wait_for("connection 1 127.0.0.1"));
  CHECK(ec_connect("127.0.0.1", r.ws_bound.port, &w).ok());
  CHECK(send_str(w, kWsHead));
  std::string head = recv_head(w);
  CHECK(head.find("HTTP/1.1 101") == 0);
  CHECK(head.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != std::string::npos);
  CHECK(rec.wait_for("connection 2 127.0.0.1"));
  CHECK(send_str(t, "from tcp\n"));
  CHECK_EQ(recv_n(w, 10), std::string("\x81\x08"
                                      "from tcp"));
  CHECK(send_str(w, ws_client_frame(0x81, "a\nb")));  // Two line frames.
  CHECK_EQ(recv_n(t, 13), std::string("from tcp\na\nb\n"));
  CHECK(rec.wait_for("message 2 b"));
  CHECK(send_str(w, ws_client_frame(0x89, "pp")));  // A ping.
  e->broadcast(reinterpret_cast<const std::uint8_t*>("\xff\n"), 2);
  // The echo, the pong and the binary broadcast, whole messages in some
  // order (the pong never inside a message).
  std::string got = recv_n(w, 3 + 3 + 4 + 3);
  CHECK(got.find(std::string("\x81\x01"
                             "a\x81\x01"
                             "b")) != std::string::npos);
  CHECK(got.find(std::string("\x8a\x02pp")) != std::string::npos);
  CHECK(got.find(std::string("\x82\x01\xff")) != std::string::npos);
  CHECK_EQ(e->stats().clients, 2u);
  StopCtx sc{e.get(), 1000};
  ec_thread_t stopper;
  CHECK(ec_thread_create(&stopper, stop_main, &sc, EC_THREAD_STACK_BYTES).ok());
  std::string bye = recv_n(w, 2 + 2 + 13);
  CHECK_EQ(bye, std::string("\x88\x0f\x03\xe9server-closed"));
  recv_n(t, 1);
  ec_socket_close(t);
  ec_socket_close(w);
  ec_thread_join(&stopper);
  ec_socket_close(silent);
  CHECK(rec.wait_for("disconnect 2 server-closed"));
  CHECK_EQ(rec.events().size(), 7u);  // 2 connections, 3 messages, 2 disconnects.
}

// ---- Who may connect (docs/contract.md S15) ---------------------------------

namespace {

// Whether the peer closed having sent nothing (end of stream or a reset).
bool closed_silent(ec_socket_t s) {
  char buf[64];
  std::size_t n = 0;
  ec_error err = ec_socket_recv(s, buf, sizeof buf, &n);
  return !err.ok() || n == 0;
}

AddressList one_address(int a, int b, int c, int d) {
  std::uint8_t r[18] = {4,
                        32,
                        static_cast<std::uint8_t>(a),
                        static_cast<std::uint8_t>(b),
                        static_cast<std::uint8_t>(c),
                        static_cast<std::uint8_t>(d)};
  AddressList l;
  l.parse(r, sizeof r);
  return l;
}

// Connects to `port`, sends `bytes` (none when empty), and whether the
// server then closed it having sent nothing and reported `refusal`.
bool refused_silently(int port, const char* bytes, Recorder* rec, const char* refusal,
                      ec_socket_t* s) {
  if (!ec_connect("127.0.0.1", port, s).ok()) return false;
  if (bytes[0] != '\0' && !send_str(*s, bytes)) return false;
  return closed_silent(*s) && rec->wait_for(refusal);
}

// Options for the hook's tests: the hook asked about every connection, and
// a WebSocket listener on /ws.
EngineOptions hook_and_ws() {
  EngineOptions o;
  o.authorize = true;
  o.ws_port = 0;
  o.ws_path = "/ws";
  return o;
}

// A started engine whose door asks for the token "s3cret" (`o` gives the
// rest of its options).
struct TokenDoor {
  Recorder rec;
  std::unique_ptr<Engine> e;
  int port = 0;
  bool start(Factory make_engine, EngineOptions o) {
    o.auth_token = "s3cret";
    return start_engine(make_engine, o, &rec, &e, &port);
  }
  // A client sending `bytes` is refused for its token, having received
  // nothing.
  bool refused(const char* bytes, ec_socket_t* s) {
    return refused_silently(port, bytes, &rec, "refusal token tcp", s);
  }
};

}  // namespace

ENGINE_TEST(engine_refuses_by_address_on_both_listeners) {
  Recorder rec;
  EngineOptions o;
  o.deny = one_address(127, 0, 0, 1);
  o.ws_port = 0;
  std::unique_ptr<Engine> e = make_engine(o, &rec);
  ListenResult r = e->start();
  CHECK(r.err.ok());
  ec_socket_t t, w;
  CHECK(refused_silently(r.bound.port, "", &rec, "refusal address tcp", &t));
  CHECK(refused_silently(r.ws_bound.port, "", &rec, "refusal address ws", &w));
  EngineStats s = e->stats();
  CHECK_EQ(s.refusals["address"], 2u);
  CHECK_EQ(s.refusals["token"], 0u);
  e->stop(1000);
  ec_socket_close(t);
  ec_socket_close(w);
  for (const std::string& ev : rec.events()) CHECK(ev.compare(0, 10, "connection") != 0);
}

ENGINE_TEST(engine_token_at_the_door) {
  EngineOptions o;
  o.replay = 5;
  TokenDoor d;
  CHECK(d.start(make_engine, o));
  d.e->broadcast(reinterpret_cast<const std::uint8_t*>("old\n"), 4);
  ec_socket_t bad, good;
  CHECK(d.refused("wrong\nhello\n", &bad));  // Not even the replay.
  CHECK(ec_connect("127.0.0.1", d.port, &good).ok());
  CHECK(send_str(good, "s3cret\nhi\n"));
  CHECK(d.rec.wait_for("connection 1 127.0.0.1"));
  CHECK_EQ(recv_n(good, 7), std::string("old\nhi\n"));  // Replay, then what it sent after.
  CHECK(d.rec.wait_for("message 1 hi"));
  EngineStats s = d.e->stats();
  CHECK_EQ(s.refusals["token"], 1u);
  CHECK_EQ(s.counters.frames_in, 2u);  // The broadcast and "hi": never the token.
  d.e->stop(1000);
  ec_socket_close(bad);
  ec_socket_close(good);
}

ENGINE_TEST(engine_token_deadline) {
  EngineOptions o;
  o.auth_timeout_ms = 150;
  TokenDoor d;
  CHECK(d.start(make_engine, o));
  ec_socket_t s;
  CHECK(d.refused("s3c", &s));  // Never finished.
  d.e->stop(1000);
  ec_socket_close(s);
}

ENGINE_TEST(engine_hook_answers) {
  Recorder rec;
  EngineOptions o;
  o.authorize = true;
  o.max_clients = 2;
  std::unique_ptr<Engine> e;
  int port = 0;
  CHECK(start_engine(make_engine, o, &rec, &e, &port));
  ec_socket_t yes, no;
  CHECK(ec_connect("127.0.0.1", port, &yes).ok());
  CHECK(send_str(yes, "me\nx\ny\n"));
  CHECK(rec.wait_for("authorize 1 me"));
  CHECK(ec_connect("127.0.0.1", port, &no).ok());
  CHECK(send_str(no, "you\nz\n"));
  CHECK(rec.wait_for("authorize 2 you"));
  // Both wait and hold a slot each: a third is server-full (max 2).
  ec_socket_t third;
  CHECK(ec_connect("127.0.0.1", port, &third).ok());
  CHECK(closed_silent(third));
  CHECK(rec.wait_for("disconnect 1 server-full"));
  e->authorize_answer(2, false, "not you");
  CHECK(closed_silent(no));
  CHECK(rec.wait_for("refusal hook tcp not you"));
  e->authorize_answer(1, true, "");
  e->authorize_answer(1, false, "");  // Answered already: ignored.
  CHECK(rec.wait_for("connection 2 127.0.0.1"));
  CHECK_EQ(recv_n(yes, 4), std::string("x\ny\n"));  // Held, then in order.
  CHECK(rec.wait_for("message 2 y"));
  EngineStats s = e->stats();
  CHECK_EQ(s.refusals["hook"], 1u);
  CHECK_EQ(s.clients, 1u);
  e->stop(1000);
  for (ec_socket_t k : {yes, no, third}) ec_socket_close(k);
}

ENGINE_TEST(engine_hook_silence_refuses) {
  Recorder rec;
  EngineOptions o = hook_and_ws();
  o.auth_timeout_ms = 150;
  std::unique_ptr<Engine> e = make_engine(o, &rec);
  ListenResult r = e->start();
  CHECK(r.err.ok());
  ec_socket_t t, w;
  CHECK(ec_connect("127.0.0.1", r.bound.port, &t).ok());
  CHECK(send_str(t, "me\n"));
  CHECK(rec.wait_for("authorize 1 me"));
  CHECK(closed_silent(t));
  CHECK(rec.wait_for("refusal hook tcp"));
  CHECK(ec_connect("127.0.0.1", r.ws_bound.port, &w).ok());
  CHECK(send_str(w, kWsHead));
  CHECK(rec.wait_for("authorize 2 /ws?"));
  CHECK(recv_head(w).find("HTTP/1.1 403") == 0);  // Not answered in time.
  CHECK(rec.wait_for("refusal hook ws"));
  e->authorize_answer(2, true, "");  // Expired: ignored.
  EngineStats s = e->stats();
  CHECK_EQ(s.refusals["hook"], 2u);
  CHECK_EQ(s.clients, 0u);
  e->stop(1000);
  ec_socket_close(t);
  ec_socket_close(w);
}

ENGINE_TEST(engine_websocket_hook_then_upgrade) {
  Recorder rec;
  std::unique_ptr<Engine> e = make_engine(hook_and_ws(), &rec);
  ListenResult r = e->start();
  CHECK(r.err.ok());
  ec_socket_t w;
  CHECK(ec_connect("127.0.0.1", r.ws_bound.port, &w).ok());
  std::string head = kWsHead;
  head.replace(4, 3, "/ws?room=1");
  CHECK(send_str(w, head + ws_client_frame(0x81, "early")));
  CHECK(rec.wait_for("authorize 1 /ws?room=1"));
  e->authorize_answer(1, true, "");
  CHECK(recv_head(w).find("HTTP/1.1 101") == 0);
  CHECK(rec.wait_for("connection 1 127.0.0.1"));
  CHECK(rec.wait_for("message 1 early"));  // Held with the 101, then fed.
  e->stop(1000);
  ec_socket_close(w);
}

ENGINE_TEST(engine_http_first_frame_cut_and_origin_refused) {
  Recorder rec;
  EngineOptions o;
  o.ws_port = 0;
  o.ws_path = "/ws";
  std::unique_ptr<Engine> e = make_engine(o, &rec);
  ListenResult r = e->start();
  CHECK(r.err.ok());
  ec_socket_t reader, web, page;
  CHECK(ec_connect("127.0.0.1", r.bound.port, &reader).ok());
  CHECK(rec.wait_for("connection 1 127.0.0.1"));
  CHECK(ec_connect("127.0.0.1", r.bound.port, &web).ok());
  CHECK(rec.wait_for("connection 2 127.0.0.1"));
  CHECK(send_str(web, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(rec.wait_for("disconnect 2 protocol-error"));
  CHECK(rec.wait_for("refusal http tcp"));
  CHECK(send_str(reader, "mine\n"));
  CHECK_EQ(recv_n(reader, 5), std::string("mine\n"));  // Nothing of the request before it.
  std::string head = kWsHead;
  head.insert(head.size() - 2, "Origin: http://evil.example\r\n");
  CHECK(ec_connect("127.0.0.1", r.ws_bound.port, &page).ok());
  CHECK(send_str(page, head));
  CHECK(recv_head(page).find("HTTP/1.1 403") == 0);
  CHECK(rec.wait_for("refusal origin ws"));
  EngineStats s = e->stats();
  CHECK_EQ(s.refusals["http"], 1u);
  CHECK_EQ(s.refusals["origin"], 1u);
  CHECK_EQ(s.counters.frames_in, 1u);
  e->stop(1000);
  for (ec_socket_t k : {reader, web, page}) ec_socket_close(k);
}

ENGINE_TEST(engine_handshake_limit_refusals) {
  Recorder rec;
  EngineOptions o;
  o.max_clients = 1;  // At most kMinHandshakes handshakes.
  o.ws_port = 0;
  std::unique_ptr<Engine> e = make_engine(o, &rec);
  ListenResult r = e->start();
  CHECK(r.err.ok());
  std::vector<ec_socket_t> silent;
  for (std::size_t i = 0; i < kMinHandshakes + 1; ++i) {
    ec_socket_t s;
    CHECK(ec_connect("127.0.0.1", r.ws_bound.port, &s).ok());
    silent.push_back(s);
  }
  CHECK(rec.wait_for("refusal handshake-limit ws"));
  EngineStats s = e->stats();
  CHECK_EQ(s.refusals["handshake-limit"], 1u);
  e->stop(1000);
  for (ec_socket_t k : silent) ec_socket_close(k);
}
