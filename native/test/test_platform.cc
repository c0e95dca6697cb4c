// test_platform.cc — the platform layer through real loopback sockets: both
// kinds of listener, connect, gathered sends, end of stream and resets,
// interrupting a blocked recv, waking a blocked accept, the poller (levels,
// wake-ups, hang-ups), the error table, timed waits.
#include <atomic>
#include <cstring>
#include <set>
#include <string>

#include "../platform/testing.h"
#include "unit.h"

namespace {

// Sleeps about ms milliseconds on a private condition variable (nothing
// signals it); returns whether it was signalled, which it never is.
bool sleep_ms(std::uint64_t ms) {
  ec_mutex_t m;
  ec_cond_t cv;
  ec_mutex_init(&m);
  ec_cond_init(&cv);
  ec_mutex_lock(&m);
  bool signalled = ec_cond_timed_wait(&cv, &m, ms);
  ec_mutex_unlock(&m);
  ec_cond_destroy(&cv);
  ec_mutex_destroy(&m);
  return signalled;
}

// A blocking listener on 127.0.0.1 and any number of connections to it,
// each as the client's socket and the server's; everything is closed (and
// the socket library released) at the end of the test.
struct Loopback {
  static constexpr int kMax = 4;
  ec_listener* listener = nullptr;
  ec_bound_address bound;
  ec_socket_t client[kMax];
  ec_socket_t server[kMax];
  int count = 0;
  bool ok = false;

  Loopback() {
    for (int i = 0; i < kMax; ++i) client[i] = server[i] = EC_INVALID_SOCKET;
    const char* syscall = "";
    ok = ec_net_acquire().ok() && ec_listen("127.0.0.1", 0, 16, &listener, &bound, &syscall).ok();
  }
  ~Loopback() {
    for (int i = 0; i < kMax; ++i) {
      if (client[i] != EC_INVALID_SOCKET) ec_socket_close(client[i]);
      if (server[i] != EC_INVALID_SOCKET) ec_socket_close(server[i]);
    }
    ec_listener_close(listener);
    ec_net_release();
  }
  // Connects one more client and accepts it; false on any failure.
  bool connect() {
    if (!ok || count == kMax) return false;
    std::string peer;
    int port = 0;
    int i = count++;
    return ec_connect("127.0.0.1", bound.port, &client[i]).ok() &&
           ec_listener_accept(listener, &server[i], &peer, &port).ok() && peer == "127.0.0.1" &&
           port > 0;
  }
};

// Sends text with ec_socket_send_all.
bool send_text(ec_socket_t s, const char* text) {
  ec_iovec piece = {text, std::strlen(text)};
  return ec_socket_send_all(s, &piece, 1).ok();
}

// Receives exactly want bytes (blocking) as a string; shorter on error or end.
std::string recv_exactly(ec_socket_t s, std::size_t want) {
  std::string out(want, '\0');
  std::size_t got = 0, n = 0;
  while (got < want && ec_socket_recv(s, &out[got], want - got, &n).ok() && n > 0) got += n;
  out.resize(got);
  return out;
}

// Waits on the poller (up to 5 s) and returns the events reported for tag,
// or 0 when it was not reported.
unsigned wait_for(ec_poller* p, void* tag, int timeout_ms = 5000) {
  ec_poll_event ev[8];
  std::size_t n = 0;
  bool woken = false;
  if (!ec_poller_wait(p, ev, 8, timeout_ms, &n, &woken).ok()) return 0;
  for (std::size_t i = 0; i < n; ++i)
    if (ev[i].data == tag) return ev[i].events;
  return 0;
}

// Waits on the poller and returns every event bit reported for tag in that
// wait (a socket may be reported twice: see ec_poller_wait), 0 if none.
unsigned wait_all(ec_poller* p, void* tag, int timeout_ms) {
  ec_poll_event ev[16];
  std::size_t n = 0;
  bool woken = false;
  if (!ec_poller_wait(p, ev, 16, timeout_ms, &n, &woken).ok()) return 0;
  unsigned e = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (ev[i].data == tag) e |= ev[i].events;
  return e;
}

struct AcceptCtx {
  ec_listener* l;
  ec_error err;
  std::atomic<bool> returned{false};
};
void accept_one(void* arg) {
  AcceptCtx* a = static_cast<AcceptCtx*>(arg);
  ec_socket_t s = EC_INVALID_SOCKET;
  std::string addr;
  int port = 0;
  a->err = ec_listener_accept(a->l, &s, &addr, &port);
  a->returned.store(true);
  if (a->err.ok()) ec_socket_close(s);
}

struct RecvCtx {
  ec_socket_t sock;
  ec_error err;
  std::size_t n = 99;
};
void recv_one(void* arg) {
  RecvCtx* r = static_cast<RecvCtx*>(arg);
  char buf[16];
  r->err = ec_socket_recv(r->sock, buf, sizeof buf, &r->n);
}

void wake_later(void* arg) {
  sleep_ms(30);
  ec_poller_wake(static_cast<ec_poller*>(arg));
}

// With the network acquired: a nonblocking listener on 127.0.0.1 (any
// port) and a new poller watching it for input with `tag`. The test closes
// and releases them.
bool listen_and_poll(ec_socket_t* l, ec_bound_address* bound, ec_poller** p, void* tag) {
  const char* syscall = "";
  return ec_net_acquire().ok() &&
         ec_listen_nonblocking("127.0.0.1", 0, 16, l, bound, &syscall).ok() &&
         ec_poller_create(p).ok() && ec_poller_add(*p, *l, EC_POLL_IN, tag).ok();
}

}  // namespace

TEST(platform_loopback_roundtrip) {
  Loopback lo;
  CHECK(lo.ok);
  CHECK_EQ(lo.bound.address, std::string("127.0.0.1"));
  CHECK(lo.bound.port > 0);
  CHECK(!lo.bound.ipv6);
  CHECK(lo.connect());
  // A gathered send with an empty piece in the middle.
  ec_iovec pieces[3] = {{"Hel", 3}, {"", 0}, {"lo\n", 3}};
  CHECK(ec_socket_send_all(lo.server[0], pieces, 3).ok());
  CHECK_EQ(recv_exactly(lo.client[0], 6), std::string("Hello\n"));
  // More pieces than one system call takes, still one stream in order.
  std::string big;
  ec_iovec many[3 * EC_MAX_IOV];
  for (std::size_t i = 0; i < 3 * EC_MAX_IOV; ++i) {
    many[i] = {"abc" + i % 3, 1};
    big += "abc"[i % 3];
  }
  CHECK(ec_socket_send_all(lo.server[0], many, 3 * EC_MAX_IOV).ok());
  CHECK_EQ(recv_exactly(lo.client[0], big.size()), big);
  // Peer closes: end of stream.
  ec_socket_close(lo.client[0]);
  lo.client[0] = EC_INVALID_SOCKET;
  CHECK_EQ(recv_exactly(lo.server[0], 1), std::string());
}

// ec_socket_send_now on a blocking socket (a WebSocket close frame sent under
// a lock): what fits goes at once; once the peer stops reading and the
// buffers are full it returns EC_EAGAIN instead of waiting, and no byte it
// said it sent is lost.
TEST(platform_send_now_never_waits) {
  Loopback lo;
  CHECK(lo.connect());
  std::size_t sent = 0;
  CHECK(ec_socket_send_now(lo.server[0], "hi\n", 3, &sent).ok());
  CHECK_EQ(sent, std::size_t{3});
  CHECK_EQ(recv_exactly(lo.client[0], 3), std::string("hi\n"));
  // The client reads nothing now: fill both buffers, 1 KiB at a time.
  static char chunk[1024];
  std::memset(chunk, 'x', sizeof chunk);
  std::size_t total = 0;
  bool full = false;
  for (int i = 0; i < 64 * 1024 && !full; ++i) {
    ec_error err = ec_socket_send_now(lo.server[0], chunk, sizeof chunk, &sent);
    total += sent;
    if (err.code == EC_EAGAIN) full = true;
    else CHECK(err.ok());
  }
  CHECK(full);  // Within 64 MiB: it did not wait for the reader.
  CHECK(total > 0);
  // Everything it counted arrives.
  CHECK_EQ(recv_exactly(lo.client[0], total).size(), total);
  // Writable again once drained.
  CHECK(ec_socket_send_now(lo.server[0], "ok", 2, &sent).ok());
  CHECK_EQ(sent, std::size_t{2});
  CHECK_EQ(recv_exactly(lo.client[0], 2), std::string("ok"));
}

TEST(platform_listen_errors) {
  Loopback lo;
  CHECK(lo.ok);
  // Each row: host, port (0: the one in use), the step and codes expected.
  struct Row {
    const char* host;
    bool in_use;
    const char* syscall;
    ec_err code;
    ec_err or_code;
  };
  const Row rows[] = {
      {"127.0.0.1", true, "bind", EC_EADDRINUSE, EC_EADDRINUSE},
      {"no-such-host.invalid", false, "getaddrinfo", EC_ENOTFOUND, EC_EAI_AGAIN},
  };
  for (const Row& row : rows) {
    int port = row.in_use ? lo.bound.port : 0;
    for (int kind = 0; kind < 2; ++kind) {
      const char* syscall = "";
      ec_bound_address b;
      ec_listener* l = nullptr;
      ec_socket_t s = EC_INVALID_SOCKET;
      ec_error err = kind == 0 ? ec_listen(row.host, port, 16, &l, &b, &syscall)
                               : ec_listen_nonblocking(row.host, port, 16, &s, &b, &syscall);
      CHECK(l == nullptr && s == EC_INVALID_SOCKET);
      CHECK(err.code == row.code || err.code == row.or_code);
      CHECK_EQ(std::string(syscall), std::string(row.syscall));
      CHECK(!ec_error_message(err).empty());
    }
  }
}

TEST(platform_error_table) {
  // Every code has a distinct name and a message (libuv's wording).
  std::set<std::string> names;
  for (int c = EC_OK; c <= EC_EUNKNOWN; ++c) {
    ec_err code = static_cast<ec_err>(c);
    names.insert(ec_err_name(code));
    CHECK(code == EC_EUNKNOWN || ec_err_message(code) != nullptr);
  }
  CHECK_EQ(names.size(), static_cast<std::size_t>(EC_EUNKNOWN) + 1);
  CHECK_EQ(std::string(ec_err_name(EC_EADDRINUSE)), std::string("EADDRINUSE"));
  CHECK_EQ(std::string(ec_err_name(EC_EUNKNOWN)), std::string("UNKNOWN"));
  CHECK_EQ(std::string(ec_err_message(EC_ECONNRESET)), std::string("connection reset by peer"));
  CHECK(ec_err_message(EC_EUNKNOWN) == nullptr);
}

TEST(platform_wake_blocked_accept) {
  Loopback lo;
  CHECK(lo.ok);
  AcceptCtx a{lo.listener, ec_error()};
  ec_thread_t t;
  CHECK(ec_thread_create(&t, accept_one, &a, EC_THREAD_STACK_BYTES).ok());
  sleep_ms(50);  // Let accept block (how long the wait lasted is not this test's point).
  // Still blocked: nothing connected, so only the wake below can end it.
  CHECK(!a.returned.load());
  ec_listener_wake(lo.listener);
  ec_thread_join(&t);
  CHECK(a.err.code == EC_ECANCELED);
  // A woken listener stays woken.
  AcceptCtx again{lo.listener, ec_error()};
  accept_one(&again);
  CHECK(again.err.code == EC_ECANCELED);
}

TEST(platform_interrupt_blocked_recv) {
  Loopback lo;
  CHECK(lo.connect());
  RecvCtx r{lo.server[0], ec_error(), 99};
  ec_thread_t t;
  CHECK(ec_thread_create(&t, recv_one, &r, EC_THREAD_STACK_BYTES).ok());
  sleep_ms(50);
  ec_socket_interrupt(lo.server[0]);
  ec_thread_join(&t);  // Would hang if interrupt did not wake recv.
  CHECK(!r.err.ok() || r.n == 0);
  // Sending to an interrupted socket fails with an error, not a signal.
  CHECK(!send_text(lo.server[0], "x"));
}

TEST(platform_poller_nonblocking_io_and_wake) {
  ec_socket_t l = EC_INVALID_SOCKET;
  ec_bound_address bound;
  ec_poller* p = nullptr;
  int tag_listener = 0, tag_server = 0;
  CHECK(listen_and_poll(&l, &bound, &p, &tag_listener));
  CHECK(!ec_poller_add(p, l, EC_POLL_IN, &tag_listener).ok());  // Once only.
  ec_socket_t s = EC_INVALID_SOCKET, c = EC_INVALID_SOCKET;
  std::string peer;
  int port = 0;
  CHECK_EQ(ec_socket_try_accept(l, &s, &peer, &port).code, EC_EAGAIN);
  CHECK(ec_connect("127.0.0.1", bound.port, &c).ok());
  CHECK(wait_for(p, &tag_listener) & EC_POLL_IN);
  CHECK(ec_socket_try_accept(l, &s, &peer, &port).ok());
  CHECK_EQ(peer, std::string("127.0.0.1"));
  char buf[64];
  std::size_t got = 99;
  CHECK_EQ(ec_socket_try_recv(s, buf, sizeof buf, &got).code, EC_EAGAIN);
  CHECK(ec_poller_add(p, s, EC_POLL_IN | EC_POLL_OUT, &tag_server).ok());
  CHECK_EQ(wait_for(p, &tag_server), static_cast<unsigned>(EC_POLL_OUT));
  // A gathered send.
  ec_iovec pieces[2] = {{"hel", 3}, {"lo\n", 3}};
  std::size_t sent = 0;
  CHECK(ec_socket_try_send(s, pieces, 2, &sent).ok());
  CHECK_EQ(sent, 6u);
  CHECK_EQ(recv_exactly(c, 6), std::string("hello\n"));
  // Readable, level-triggered: reported until read.
  CHECK(send_text(c, "hi"));
  CHECK(ec_poller_modify(p, s, EC_POLL_IN, &tag_server).ok());
  for (int i = 0; i < 2; ++i) CHECK(wait_for(p, &tag_server) & EC_POLL_IN);
  CHECK(ec_socket_try_recv(s, buf, sizeof buf, &got).ok());
  CHECK_EQ(got, 2u);
  // Nothing ready: times out.
  std::size_t n = 0;
  bool woken = false;
  ec_poll_event ev[4];
  CHECK(ec_poller_wait(p, ev, 4, 20, &n, &woken).ok());
  CHECK_EQ(n, 0u);
  CHECK(!woken);
  // A wake-up from another thread ends a wait with no limit; two coalesce.
  ec_thread_t t;
  CHECK(ec_thread_create(&t, wake_later, p, EC_THREAD_STACK_BYTES).ok());
  CHECK(ec_poller_wait(p, ev, 4, -1, &n, &woken).ok());
  ec_thread_join(&t);
  CHECK(woken);
  CHECK_EQ(n, 0u);
  ec_poller_wake(p);
  ec_poller_wake(p);
  CHECK(ec_poller_wait_us(p, ev, 4, 1000000, &n, &woken).ok());
  CHECK(woken);
  CHECK(ec_poller_wait_us(p, ev, 4, 20000, &n, &woken).ok());
  CHECK(!woken);
  // Shutting the send side: the peer sees end of stream, and can answer.
  ec_socket_shutdown_send(s);
  CHECK_EQ(recv_exactly(c, 1), std::string());
  CHECK(send_text(c, "hi"));
  CHECK(wait_for(p, &tag_server) & EC_POLL_IN);
  CHECK(ec_socket_try_recv(s, buf, sizeof buf, &got).ok());
  CHECK_EQ(got, 2u);
  // The peer closes too: finished both ways, a hang-up.
  ec_socket_close(c);
  CHECK(ec_poller_modify(p, s, 0, &tag_server).ok());
  CHECK(wait_for(p, &tag_server) & EC_POLL_HUP);
  ec_poller_remove(p, s);
  ec_poller_remove(p, l);
  ec_poller_destroy(p);
  ec_socket_close(s);
  ec_socket_close(l);
  ec_net_release();
}

TEST(platform_reset_versus_half_close) {
  Loopback lo;
  CHECK(lo.connect() && lo.connect());
  ec_poller* p = nullptr;
  CHECK(ec_poller_create(&p).ok());
  // Client 0 half-closes, client 1 resets.
  ec_socket_shutdown_send(lo.client[0]);
  ec_socket_reset(lo.client[1]);
  lo.client[1] = EC_INVALID_SOCKET;
  int tags[2] = {0, 1};
  for (int i = 0; i < 2; ++i) CHECK(ec_poller_add(p, lo.server[i], EC_POLL_IN, &tags[i]).ok());
  for (int i = 0; i < 2; ++i) {
    bool seen = false;
    for (int k = 0; k < 20 && !seen; ++k) seen = (wait_for(p, &tags[i], 1000) & EC_POLL_IN) != 0;
    CHECK(seen);
  }
  char buf[8];
  std::size_t got = 99;
  // The half-closed one: end of stream; it still receives.
  CHECK(ec_socket_recv(lo.server[0], buf, sizeof buf, &got).ok());
  CHECK_EQ(got, 0u);
  CHECK(send_text(lo.server[0], "still"));
  CHECK_EQ(recv_exactly(lo.client[0], 5), std::string("still"));
  // Watched for nothing, the half-closed one reports nothing (no hang-up:
  // this side can still send).
  CHECK(ec_poller_modify(p, lo.server[0], 0, &tags[0]).ok());
  CHECK_EQ(wait_for(p, &tags[0], 50), 0u);
  // The reset one: an error, on every OS (under Wine too).
  CHECK(!ec_socket_recv(lo.server[1], buf, sizeof buf, &got).ok());
  ec_poller_destroy(p);
}

TEST(platform_poller_input_gate) {
  ec_socket_t l = EC_INVALID_SOCKET;
  ec_bound_address bound;
  ec_poller* p = nullptr;
  int tag_listener = 0, tag_a = 0, tag_b = 0;
  CHECK(listen_and_poll(&l, &bound, &p, &tag_listener));  // The listener ungated.
  ec_socket_t a = EC_INVALID_SOCKET, b = EC_INVALID_SOCKET;
  ec_socket_t ca = EC_INVALID_SOCKET, cb = EC_INVALID_SOCKET;
  std::string peer;
  int port = 0;
  CHECK(ec_connect("127.0.0.1", bound.port, &ca).ok());
  CHECK(wait_all(p, &tag_listener, 5000) & EC_POLL_IN);
  CHECK(ec_socket_try_accept(l, &a, &peer, &port).ok());
  CHECK(ec_poller_add(p, a, EC_POLL_IN | EC_POLL_GATED, &tag_a).ok());
  CHECK(send_text(ca, "hi"));
  CHECK_EQ(wait_all(p, &tag_a, 5000), static_cast<unsigned>(EC_POLL_IN));
  // Gate closed: the pending input is not reported...
  ec_poller_gate_input(p, false);
  CHECK_EQ(wait_all(p, &tag_a, 30), 0u);
  // ...but the ungated listener is (accepting goes on),
  CHECK(ec_connect("127.0.0.1", bound.port, &cb).ok());
  CHECK(wait_all(p, &tag_listener, 5000) & EC_POLL_IN);
  CHECK(ec_socket_try_accept(l, &b, &peer, &port).ok());
  // and so is output, added while closed, without the input.
  CHECK(ec_poller_modify(p, a, EC_POLL_IN | EC_POLL_GATED | EC_POLL_OUT, &tag_a).ok());
  CHECK_EQ(wait_all(p, &tag_a, 5000), static_cast<unsigned>(EC_POLL_OUT));
  CHECK(ec_poller_modify(p, a, EC_POLL_IN | EC_POLL_GATED, &tag_a).ok());
  CHECK_EQ(wait_all(p, &tag_a, 30), 0u);
  // A socket registered while closed obeys the gate; a peer's end of stream
  // alone is not reported (it would end every wait) while the gate is closed.
  CHECK(ec_poller_add(p, b, EC_POLL_IN | EC_POLL_GATED, &tag_b).ok());
  CHECK(send_text(cb, "yo"));
  ec_socket_shutdown_send(cb);
  sleep_ms(20);
  CHECK_EQ(wait_all(p, &tag_b, 30), 0u);
  CHECK_EQ(wait_all(p, &tag_b, 30), 0u);
  // Open: both are reported (level-triggered), the data and then the end.
  ec_poller_gate_input(p, true);
  unsigned ea = 0, eb = 0;
  for (int i = 0; i < 4 && (!(ea & EC_POLL_IN) || !(eb & EC_POLL_IN)); ++i) {
    ec_poll_event ev[16];
    std::size_t n = 0;
    bool woken = false;
    CHECK(ec_poller_wait(p, ev, 16, 5000, &n, &woken).ok());
    for (std::size_t k = 0; k < n; ++k) {
      if (ev[k].data == &tag_a) ea |= ev[k].events;
      if (ev[k].data == &tag_b) eb |= ev[k].events;
    }
  }
  CHECK(ea & EC_POLL_IN);
  CHECK(eb & EC_POLL_IN);
  char buf[64];
  std::size_t got = 0;
  CHECK(ec_socket_try_recv(b, buf, sizeof buf, &got).ok());
  CHECK_EQ(got, 2u);
  CHECK(ec_socket_try_recv(b, buf, sizeof buf, &got).ok());
  CHECK_EQ(got, 0u);  // End of stream.
  // Closing and opening again is idempotent; removed while closed stays removed.
  ec_poller_gate_input(p, false);
  ec_poller_gate_input(p, false);
  ec_poller_remove(p, b);
  ec_poller_gate_input(p, true);
  ec_poller_gate_input(p, true);
  CHECK(wait_all(p, &tag_a, 5000) & EC_POLL_IN);  // Still unread.
  CHECK_EQ(wait_all(p, &tag_b, 30), 0u);
  ec_poller_remove(p, a);
  ec_poller_remove(p, l);
  ec_poller_destroy(p);
  for (ec_socket_t x : {a, b, ca, cb, l}) ec_socket_close(x);
  ec_net_release();
}
