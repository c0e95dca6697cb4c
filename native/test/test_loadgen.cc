// test_loadgen.cc — the bench's native load generator: its histogram, its
// options, a refused connection, finish() during prepare, and a full run
// against the poll and threads engines over loopback (lost 0, order kept);
// its WebSocket clients against a tiny WebSocket broadcast server of the
// test's own, and against a server that does not speak WebSocket.
// Linked into echocast_unit_tests (native/CMakeLists.txt), beside the other
// native tests; the generator itself is native/bench/ (docs/architecture.md).
#include <memory>
#include <string>
#include <vector>

#include "../bench/loadgen.h"
#include "../core/engine.h"
#include "../core/ws/decoder.h"
#include "../core/ws/frame.h"
#include "../core/ws/handshake.h"
#include "../platform/platform.h"
#include "unit.h"

using namespace echocast;
using echocast::bench::LatencyHistogram;
using echocast::bench::LoadGen;
using echocast::bench::LoadGenFailure;
using echocast::bench::LoadGenOptions;
using echocast::bench::LoadGenResult;

namespace {

// Records the generator's completions; tests wait on it.
class Waiter : public bench::LoadGenListener {
 public:
  Waiter() {
    ec_mutex_init(&m_);
    ec_cond_init(&c_);
  }
  ~Waiter() override {
    ec_cond_destroy(&c_);
    ec_mutex_destroy(&m_);
  }
  void on_prepared(const LoadGenFailure* f, bool last) override {
    ec_lock_guard lock(&m_);
    prepared_ = true;
    ok_ = f == nullptr;
    if (f) code_ = f->code;
    last_ = last;
    ec_cond_broadcast(&c_);
  }
  void on_finished(const LoadGenResult& r) override {
    ec_lock_guard lock(&m_);
    finished_ = true;
    result_ = r;
    ec_cond_broadcast(&c_);
  }
  bool wait_prepared(std::uint64_t ms) { return wait(&prepared_, ms); }
  bool wait_finished(std::uint64_t ms) { return wait(&finished_, ms); }
  bool ok() {
    ec_lock_guard lock(&m_);
    return ok_;
  }
  bool last() {
    ec_lock_guard lock(&m_);
    return last_;
  }
  std::string code() {
    ec_lock_guard lock(&m_);
    return code_;
  }
  LoadGenResult result() {
    ec_lock_guard lock(&m_);
    return result_;
  }

 private:
  bool wait(bool* flag, std::uint64_t ms) {
    ec_lock_guard lock(&m_);
    std::uint64_t deadline = ec_now_ms() + ms;
    while (!*flag) {
      std::uint64_t now = ec_now_ms();
      if (now >= deadline) return false;
      ec_cond_timed_wait(&c_, &m_, deadline - now);
    }
    return true;
  }
  ec_mutex_t m_;
  ec_cond_t c_;
  bool prepared_ = false, finished_ = false, ok_ = false, last_ = false;
  std::string code_;
  LoadGenResult result_;
};

// An engine's events, ignored.
class NullSink : public EventSink {
 public:
  void on_connection(std::uint64_t, const std::string&, int) override {}
  bool wants_messages() override { return false; }
  void on_message(std::uint64_t, const FrameRef&, bool) override {}
  void on_frames(std::uint64_t, const std::uint8_t*, std::size_t, std::size_t, bool) override {}
  void on_disconnect(std::uint64_t, const char*) override {}
  void on_error(const ec_error&, const char*) override {}
};

// A server for the generator to drive: an engine on a loopback port with no
// replay (so a client receives exactly what was sent after it joined),
// stopped when the test ends, however it ends. With a token, every client
// must present it first (docs/contract.md S15).
class TestServer {
 public:
  explicit TestServer(bool poll, std::uint64_t max_backlog_bytes = 16u * 1024u * 1024u,
                      bool ws = false, bool refuse_http = true, const std::string& token = "") {
    EngineOptions eo;
    eo.refuse_http = refuse_http;
    eo.auth_token = token;
    eo.replay = 0;
    eo.max_backlog_bytes = max_backlog_bytes;
    if (ws) eo.ws_port = 0;  // A WebSocket listener beside the TCP one.
    engine_ = poll ? make_poll_engine(eo, &sink_) : make_threads_engine(eo, &sink_);
    listening_ = engine_->start();
  }
  ~TestServer() { engine_->stop(1000); }
  bool ok() const { return listening_.err.ok(); }
  // Generator options aimed at this server.
  LoadGenOptions load(std::uint32_t clients, std::uint32_t publishers) const {
    LoadGenOptions o;
    o.port = listening_.bound.port;
    o.clients = clients;
    o.publishers = publishers;
    return o;
  }
  // The same, with WebSocket clients on the engine's ws port.
  LoadGenOptions load_ws(std::uint32_t clients, std::uint32_t publishers) const {
    LoadGenOptions o = load(clients, publishers);
    o.port = listening_.ws_bound.port;
    o.websocket = true;
    return o;
  }

 private:
  NullSink sink_;
  std::unique_ptr<Engine> engine_;
  ListenResult listening_;
};

// A generator and the Waiter it reports to; `gen` goes first (its
// destructor ends and joins the thread), or earlier with gen.reset().
struct Run {
  explicit Run(const LoadGenOptions& o) : gen(new LoadGen(o, &waiter)) {}
  bool start() {
    LoadGenFailure f;
    return gen->start(&f);
  }
  // Starts the generator and waits until its clients are ready: false when
  // it did not start, did not report within 20 s, or failed to prepare.
  bool prepared() { return start() && waiter.wait_prepared(20000) && waiter.ok(); }
  // Starts the generator and waits for a failed prepare that ends the run
  // (reported within 15 s), then joins it: the failure's code, or "" when
  // the prepare did not fail so.
  std::string prepare_failure() {
    if (!start() || !waiter.wait_prepared(15000) || waiter.ok() || !waiter.last()) return "";
    gen->join();
    return waiter.code();
  }
  // Finishes the run and joins the thread: false when the end was not
  // reported within 20 s; *r is the result.
  bool finished(LoadGenResult* r) {
    gen->finish();
    if (!waiter.wait_finished(20000)) return false;
    gen->join();
    *r = waiter.result();
    return true;
  }
  Waiter waiter;
  std::unique_ptr<LoadGen> gen;
};

void sleep_ms(std::uint64_t ms) {
  ec_mutex_t m;
  ec_cond_t c;
  ec_mutex_init(&m);
  ec_cond_init(&c);
  {
    ec_lock_guard lock(&m);
    std::uint64_t end = ec_now_ms() + ms;
    for (std::uint64_t now = ec_now_ms(); now < end; now = ec_now_ms())
      ec_cond_timed_wait(&c, &m, end - now);
  }
  ec_cond_destroy(&c);
  ec_mutex_destroy(&m);
}

// A full prepare / begin / mark / finish run against an engine. rate 0:
// as fast as the server delivers, against a backlog limit of 4 MiB that an
// open loop would overrun (clients cut, frames lost).
// With a token, the server has it and every client presents it.
void full_run(bool poll, double rate = 6000, bool poisson = false, bool ws = false,
              const std::string& token = "") {
  TestServer server(poll, rate == 0 ? 4u * 1024u * 1024u : 64u * 1024u * 1024u, ws, true, token);
  CHECK(server.ok());
  LoadGenOptions o = ws ? server.load_ws(20, 3) : server.load(20, 3);
  o.token = token;
  o.size = 48;
  o.rate = rate;
  o.poisson = poisson;
  o.auditors = 2;
  Run run(o);
  Waiter& w = run.waiter;
  LoadGen& g = *run.gen;
  CHECK(run.prepared());
  CHECK(!w.last());
  bench::LoadGenMark before = g.mark();
  CHECK_EQ(before.frames_sent, 0u);
  CHECK(before.bytes > 0);  // Every client got an admission probe.
  g.begin();
  sleep_ms(500);
  bench::LoadGenMark after = g.mark();
  CHECK(after.frames_sent > 1000);  // 3000 offered at 6000/s.
  CHECK(after.bytes > before.bytes);
  CHECK(after.cpu_micros >= before.cpu_micros);
  g.finish();  // Twice (finished() again): harmless.
  LoadGenResult r;
  CHECK(run.finished(&r));
  CHECK(r.frames_sent >= after.frames_sent);
  CHECK_EQ(r.lost, 0u);
  CHECK_EQ(r.order_violations, 0u);
  CHECK(r.latency_count >= 2 * r.frames_sent);
  CHECK(r.p50 <= r.p99);
  CHECK(r.p99 <= r.max);
  CHECK(r.max < 5000000);
  CHECK(r.bytes >= r.frames_sent * o.size * o.clients);
  bench::LoadGenMark final_mark = g.mark();  // After the thread: its last numbers.
  CHECK_EQ(final_mark.frames_sent, r.frames_sent);
}

// A WebSocket broadcast server just big enough to test the generator's
// WebSocket clients without an engine: a thread per connection over blocking
// sockets, ws::Handshake for the upgrade, a server-role ws::Decoder, and each
// message sent to every upgraded client as one unmasked text frame.
class TinyWsServer {
 public:
  TinyWsServer() {
    ec_mutex_init(&m_);
    config_.path = "/";
    const char* syscall = nullptr;
    ok_ =
        ec_net_acquire().ok() &&
        ec_listen("127.0.0.1", 0, 64, &listener_, &bound_, &syscall).ok() &&
        ec_thread_create(&acceptor_, &TinyWsServer::accept_main, this, EC_THREAD_STACK_BYTES).ok();
  }
  ~TinyWsServer() {
    if (ok_) {
      ec_listener_wake(listener_);
      ec_thread_join(&acceptor_);
      {
        ec_lock_guard lock(&m_);
        for (auto& c : conns_) ec_socket_interrupt(c->sock);
      }
      for (auto& c : conns_) {
        ec_thread_join(&c->thread);
        ec_socket_close(c->sock);
      }
    }
    if (listener_ != nullptr) ec_listener_close(listener_);
    ec_net_release();
    ec_mutex_destroy(&m_);
  }
  bool ok() const { return ok_; }
  int port() const { return bound_.port; }
  std::uint64_t messages() {
    ec_lock_guard lock(&m_);
    return messages_;
  }

 private:
  struct Conn : ws::MessageSink {
    TinyWsServer* server = nullptr;
    ec_socket_t sock = EC_INVALID_SOCKET;
    ec_thread_t thread;
    bool open = false;  // Upgraded: receives broadcasts (under m_).
    void on_message(const std::uint8_t* data, std::size_t len, bool) override {
      server->broadcast(data, len);
    }
    void on_ping(const std::uint8_t*, std::size_t) override {}
    void on_close(std::uint16_t, const std::uint8_t*, std::size_t) override {}
  };

  static void accept_main(void* arg) {
    TinyWsServer* self = static_cast<TinyWsServer*>(arg);
    for (;;) {
      ec_socket_t s = EC_INVALID_SOCKET;
      std::string peer;
      int peer_port = 0;
      ec_error err = ec_listener_accept(self->listener_, &s, &peer, &peer_port);
      if (err.code == EC_ECANCELED) return;
      if (!err.ok()) continue;
      ec_lock_guard lock(&self->m_);
      self->conns_.emplace_back(new Conn());
      Conn* c = self->conns_.back().get();
      c->server = self;
      c->sock = s;
      if (!ec_thread_create(&c->thread, &TinyWsServer::conn_main, c, EC_THREAD_STACK_BYTES).ok()) {
        ec_socket_close(s);
        self->conns_.pop_back();
      }
    }
  }

  static void conn_main(void* arg) {
    Conn* c = static_cast<Conn*>(arg);
    TinyWsServer* self = c->server;
    ws::Handshake handshake(&self->config_);
    ws::Decoder decoder(ws::Role::Server, 1u << 20);
    std::vector<std::uint8_t> buf(64 * 1024);
    bool upgraded = false;
    for (;;) {
      std::size_t got = 0;
      if (!ec_socket_recv(c->sock, buf.data(), buf.size(), &got).ok() || got == 0) return;
      const std::uint8_t* data = buf.data();
      if (!upgraded) {
        std::size_t used = 0;
        ws::Handshake::Result r = handshake.feed(data, got, &used);
        if (r == ws::Handshake::Result::NeedMore) continue;
        const std::string& answer = handshake.response();
        ec_iovec piece{answer.data(), answer.size()};
        {
          ec_lock_guard lock(&self->m_);
          if (!ec_socket_send_all(c->sock, &piece, 1).ok()) return;
          c->open = r == ws::Handshake::Result::Upgrade;
        }
        if (r != ws::Handshake::Result::Upgrade) return;
        upgraded = true;
        data += used;
        got -= used;
      }
      if (decoder.feed(data, got, c) != 0 || decoder.closed()) return;
    }
  }

  void broadcast(const std::uint8_t* data, std::size_t len) {
    std::uint8_t header[ws::kMaxHeader];
    std::size_t h = ws::encode_header(ws::kText, len, header);
    ec_iovec pieces[2] = {{header, h}, {data, len}};
    ec_lock_guard lock(&m_);
    messages_ += 1;
    for (auto& c : conns_)
      if (c->open) ec_socket_send_all(c->sock, pieces, 2);
  }

  ws::HandshakeConfig config_;
  ec_listener* listener_ = nullptr;
  ec_bound_address bound_;
  ec_thread_t acceptor_;
  bool ok_ = false;
  ec_mutex_t m_;
  std::vector<std::unique_ptr<Conn>> conns_;  // Under m_.
  std::uint64_t messages_ = 0;                // Under m_.
};

}  // namespace

TEST(loadgen_histogram_exact_small_and_within_a_thousandth_large) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 1000; ++v) h.record(v);
  CHECK_EQ(h.count(), 1000u);
  CHECK_EQ(h.percentile(50), 500u);
  CHECK_EQ(h.percentile(99), 990u);
  CHECK_EQ(h.max(), 1000u);
  LatencyHistogram big;
  for (std::uint64_t v = 1; v <= 100000; ++v) big.record(v * 1000);
  double p99 = static_cast<double>(big.percentile(99));
  CHECK(p99 <= 99000000.0 && (99000000.0 - p99) / 99000000.0 < 0.001);
  CHECK_EQ(big.max(), 100000000u);
  // Every bucket maps back to a value within 1/1024 below the input.
  for (std::uint64_t v = 1; v < (std::uint64_t(1) << 40); v = v * 3 / 2 + 7) {
    std::uint64_t low = LatencyHistogram::value_at(LatencyHistogram::index_of(v));
    CHECK(low <= v);
    CHECK(static_cast<double>(v - low) / static_cast<double>(v) < 1.0 / 1024);
  }
  CHECK_EQ(LatencyHistogram().percentile(99), 0u);
  h.reset();
  CHECK_EQ(h.count(), 0u);
  CHECK_EQ(h.max(), 0u);
}

TEST(loadgen_options_are_checked) {
  LoadGenOptions o;
  o.port = 1000;
  CHECK(bench::validate_options(o).empty());
  o.size = 31;
  CHECK(!bench::validate_options(o).empty());
  o.size = 64;
  o.publishers = 51;
  CHECK(!bench::validate_options(o).empty());
  o.publishers = 5;
  o.rate = -1;
  CHECK(!bench::validate_options(o).empty());
  o.rate = 10;
  o.token = "a token";
  CHECK(bench::validate_options(o).empty());
  o.token = "two\nlines";  // It travels as one line, or in one header.
  CHECK(!bench::validate_options(o).empty());
}

TEST(loadgen_refused_connection_fails_prepare) {
  // A port that was just free: listen, note it, close.
  ec_listener* l = nullptr;
  ec_bound_address bound;
  const char* syscall = nullptr;
  CHECK(ec_net_acquire().ok());
  CHECK(ec_listen("127.0.0.1", 0, 16, &l, &bound, &syscall).ok());
  ec_listener_close(l);
  LoadGenOptions o;
  o.port = bound.port;
  o.clients = 5;
  o.publishers = 1;
  Run run(o);
  CHECK_EQ(run.prepare_failure(), std::string("ECONNREFUSED"));
  ec_net_release();
}

TEST(loadgen_finish_during_prepare_cancels) {
  TestServer server(true);
  CHECK(server.ok());
  Run run(server.load(200, 5));
  CHECK(run.start());
  run.gen->finish();
  Waiter& w = run.waiter;
  CHECK(w.wait_prepared(15000));
  CHECK(!w.ok() || !w.last());  // Cancelled, or prepared just before finish.
  if (!w.ok()) CHECK_EQ(w.code(), std::string("ECANCELED"));
  else CHECK(w.wait_finished(15000));
}  // The generator's destructor joins.

TEST(loadgen_destructor_ends_a_running_generator) {
  TestServer server(true);
  CHECK(server.ok());
  Run run(server.load(10, 2));
  CHECK(run.start());
  CHECK(run.waiter.wait_prepared(15000));
  run.gen->begin();
  sleep_ms(100);
  run.gen.reset();
  CHECK(!run.waiter.wait_finished(10));  // Aborted: nothing reported.
}

TEST(loadgen_full_run_poll_engine) { full_run(true); }

TEST(loadgen_full_run_threads_engine) { full_run(false); }

TEST(loadgen_full_run_poisson_arrivals) { full_run(true, 6000, true); }

TEST(loadgen_full_run_as_fast_as_delivered_loses_nothing) { full_run(true, 0); }

TEST(loadgen_websocket_options_are_checked) {
  LoadGenOptions o;
  o.port = 1000;
  o.websocket = true;
  CHECK(bench::validate_options(o).empty());
  o.ws_path = "chat";
  CHECK(!bench::validate_options(o).empty());
  o.ws_path = "/a b";
  CHECK(!bench::validate_options(o).empty());
  o.ws_path = "/chat";
  o.rcvlowat = 16384;
  CHECK(!bench::validate_options(o).empty());
}

TEST(loadgen_websocket_clients_upgrade_send_masked_and_count_messages) {
  TinyWsServer server;
  CHECK(server.ok());
  LoadGenOptions o;
  o.port = server.port();
  o.clients = 8;
  o.publishers = 2;
  o.size = 200;  // A 199-byte payload: the 16-bit length form, both ways.
  o.rate = 2000;
  o.auditors = 2;
  o.websocket = true;
  Run run(o);
  LoadGen& g = *run.gen;
  CHECK(run.prepared());
  bench::LoadGenMark before = g.mark();
  CHECK_EQ(before.frames_sent, 0u);
  CHECK(before.bytes >= o.clients * o.size);  // Each client got a probe message.
  CHECK_EQ(before.bytes % o.size, 0u);        // size bytes per message.
  g.begin();
  sleep_ms(400);
  LoadGenResult r;
  CHECK(run.finished(&r));
  CHECK(r.frames_sent > 200);
  CHECK_EQ(r.lost, 0u);
  CHECK_EQ(r.order_violations, 0u);
  CHECK_EQ(r.latency_count, 2 * r.frames_sent);  // Both auditors parsed every message.
  CHECK_EQ(r.bytes % o.size, 0u);
  CHECK(r.bytes >= before.bytes + r.frames_sent * o.size * o.clients);
  // Every frame the generator counts as sent reached the server as one message.
  CHECK(server.messages() >= r.frames_sent);
}

TEST(loadgen_websocket_upgrade_refused_by_a_tcp_server_fails_prepare) {
  // A line-framed engine that relays HTTP text (refuseHttp off) echoes the
  // request head back: no 101.
  TestServer server(true, 16u * 1024u * 1024u, false, false);
  CHECK(server.ok());
  LoadGenOptions o = server.load(3, 1);
  o.websocket = true;
  Run run(o);
  CHECK_EQ(run.prepare_failure(), std::string("EPROTO"));
}

// The engines' own WebSocket listeners (docs/contract.md §6), TCP-checked
// figures and all: each frame one message, nothing lost, one order.
TEST(loadgen_full_run_websocket_poll_engine) { full_run(true, 6000, false, true); }

TEST(loadgen_full_run_websocket_threads_engine) { full_run(false, 6000, false, true); }

TEST(loadgen_full_run_websocket_as_fast_as_delivered_loses_nothing) {
  full_run(true, 0, false, true);
}

// A throttled WebSocket reader (bench --ws --throttled) reads at its rate, not
// at full speed: the throttled reads and the WebSocket hook share read_client,
// and the credit must be spent before the hook decodes. Whatever the machine's
// pace, in a window of T seconds it reads at most its 4 KiB burst, 10 KB per
// second and one read's overshoot (4 KiB); at 6000 frames/s of 48 B the others
// get up to 288 KB/s each. The drain then reads it at full speed, so nothing is
// lost and nobody is cut. (An upper bound only: a loaded machine, Wine
// included, can only make it read less. Comparing its window with the
// publishers' was not: readers that lag catch up inside the window.)
TEST(loadgen_throttled_websocket_reader_reads_at_its_rate) {
  TestServer server(true, 64u * 1024u * 1024u, true);
  CHECK(server.ok());
  LoadGenOptions o = server.load_ws(20, 3);
  o.size = 48;
  o.rate = 6000;
  o.auditors = 2;
  o.throttled_clients = 1;
  o.throttle_bytes_per_sec = 10000;
  Run run(o);
  LoadGen& g = *run.gen;
  CHECK(run.prepared());
  g.begin();
  sleep_ms(200);
  const std::uint64_t t0 = ec_now_ms();
  bench::LoadGenMark before = g.mark();
  sleep_ms(1000);
  bench::LoadGenMark after = g.mark();
  const std::uint64_t window_ms = ec_now_ms() - t0;
  CHECK(after.frames_sent > before.frames_sent);
  const std::uint64_t read = after.throttled_bytes - before.throttled_bytes;
  CHECK(read <= 4096 + 10000 * window_ms / 1000 + 10 + 4096);
  LoadGenResult r;
  CHECK(run.finished(&r));
  CHECK_EQ(r.lost, 0u);
  CHECK_EQ(r.order_violations, 0u);
  CHECK_EQ(r.throttled_closed, 0u);
}

// bench --token (docs/contract.md S15): every TCP client sends the token as
// its first line, before the admission probes and the load; the server never
// broadcasts it, and no count includes it. A token longer than a frame: were
// its bytes counted as written, they would pass for a frame. Nothing lost,
// one order (an auditor that saw the token would count it a violation).
TEST(loadgen_full_run_with_a_token_poll_engine) {
  full_run(true, 6000, false, false, std::string(100, 't'));
}

TEST(loadgen_full_run_with_a_token_threads_engine) {
  full_run(false, 0, false, false, "0123456789abcdef0123456789abcdef");
}

// WebSocket clients present it as `Authorization: Bearer` in the upgrade.
TEST(loadgen_full_run_websocket_with_a_token) {
  full_run(true, 6000, false, true, "0123456789abcdef0123456789abcdef");
}

namespace {

// Clients with a wrong token (WebSocket ones when `ws`) against a poll
// server that wants another: prepare fails with `expected`.
void wrong_token_fails_prepare(bool ws, const char* expected) {
  TestServer server(true, 16u * 1024u * 1024u, ws, true, "the right one");
  CHECK(server.ok());
  LoadGenOptions o = ws ? server.load_ws(4, 1) : server.load(4, 1);
  o.token = "a wrong one";
  Run run(o);
  CHECK_EQ(run.prepare_failure(), std::string(expected));
}

}  // namespace

// A wrong token: the server closes the clients, and prepare says so.
TEST(loadgen_wrong_token_fails_prepare) { wrong_token_fails_prepare(false, "ECONNRESET"); }

// A WebSocket client with a wrong token is answered 401 before the upgrade.
TEST(loadgen_websocket_wrong_token_fails_prepare) { wrong_token_fails_prepare(true, "EPROTO"); }
