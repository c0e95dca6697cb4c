// test_platform.cc — the platform layer through real loopback sockets:
// listen/accept/connect, gathered sends, end of stream, interrupting a
// blocked recv, waking a blocked accept, error translation, timed waits.
#include <cstring>
#include <string>

#include "../platform/platform.h"
#include "unit.h"

namespace {

struct AcceptCtx {
  ec_listener* l;
  ec_error err;
  ec_socket_t sock = EC_INVALID_SOCKET;
};
void accept_one(void* arg) {
  AcceptCtx* a = static_cast<AcceptCtx*>(arg);
  std::string addr;
  int port = 0;
  a->err = ec_listener_accept(a->l, &a->sock, &addr, &port);
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

}  // namespace

TEST(platform_loopback_roundtrip) {
  CHECK(ec_net_acquire().ok());
  ec_listener* l = nullptr;
  ec_bound_address bound;
  const char* syscall = "";
  CHECK(ec_listen("127.0.0.1", 0, 16, &l, &bound, &syscall).ok());
  CHECK_EQ(bound.address, std::string("127.0.0.1"));
  CHECK(bound.port > 0);
  CHECK(!bound.ipv6);
  ec_socket_t c = EC_INVALID_SOCKET;
  CHECK(ec_connect("127.0.0.1", bound.port, &c).ok());
  ec_socket_t s = EC_INVALID_SOCKET;
  std::string peer;
  int peer_port = 0;
  CHECK(ec_listener_accept(l, &s, &peer, &peer_port).ok());
  CHECK_EQ(peer, std::string("127.0.0.1"));
  CHECK(peer_port > 0);
  ec_iovec pieces[3] = {{"Hel", 3}, {"", 0}, {"lo\n", 3}};
  CHECK(ec_socket_send_all(s, pieces, 3).ok());
  char buf[16];
  std::size_t got = 0, n = 0;
  while (got < 6) {
    CHECK(ec_socket_recv(c, buf + got, sizeof buf - got, &n).ok());
    CHECK(n > 0);
    got += n;
  }
  CHECK_EQ(std::string(buf, 6), std::string("Hello\n"));
  // Peer closes: end of stream.
  ec_socket_close(c);
  CHECK(ec_socket_recv(s, buf, sizeof buf, &n).ok());
  CHECK_EQ(n, 0u);
  ec_socket_close(s);
  // Address in use, with the step that failed.
  ec_listener* l2 = nullptr;
  ec_bound_address b2;
  ec_error err = ec_listen("127.0.0.1", bound.port, 16, &l2, &b2, &syscall);
  CHECK_EQ(std::string(ec_err_name(err.code)), std::string("EADDRINUSE"));
  CHECK_EQ(std::string(syscall), std::string("bind"));
  CHECK(!ec_error_message(err).empty());
  ec_listener_close(l);
  ec_net_release();
}

TEST(platform_unknown_host) {
  CHECK(ec_net_acquire().ok());
  ec_listener* l = nullptr;
  ec_bound_address bound;
  const char* syscall = "";
  ec_error err = ec_listen("no-such-host.invalid", 0, 16, &l, &bound, &syscall);
  CHECK(!err.ok());
  CHECK_EQ(std::string(syscall), std::string("getaddrinfo"));
  CHECK(err.code == EC_ENOTFOUND || err.code == EC_EAI_AGAIN);
  ec_net_release();
}

TEST(platform_wake_blocked_accept) {
  CHECK(ec_net_acquire().ok());
  ec_listener* l = nullptr;
  ec_bound_address bound;
  const char* syscall = "";
  CHECK(ec_listen("127.0.0.1", 0, 16, &l, &bound, &syscall).ok());
  AcceptCtx a{l, ec_error(), EC_INVALID_SOCKET};
  ec_thread_t t;
  CHECK(ec_thread_create(&t, accept_one, &a, EC_THREAD_STACK_BYTES).ok());
  ec_mutex_t m;
  ec_cond_t cv;
  ec_mutex_init(&m);
  ec_cond_init(&cv);
  ec_mutex_lock(&m);
  std::uint64_t t0 = ec_now_ms();
  bool signalled = ec_cond_timed_wait(&cv, &m, 50);  // Let accept block.
  ec_mutex_unlock(&m);
  CHECK(!signalled);
  CHECK(ec_now_ms() - t0 >= 40);
  ec_listener_wake(l);
  ec_thread_join(&t);
  CHECK(a.err.code == EC_ECANCELED);
  ec_cond_destroy(&cv);
  ec_mutex_destroy(&m);
  ec_listener_close(l);
  ec_net_release();
}

TEST(platform_interrupt_blocked_recv) {
  CHECK(ec_net_acquire().ok());
  ec_listener* l = nullptr;
  ec_bound_address bound;
  const char* syscall = "";
  CHECK(ec_listen("127.0.0.1", 0, 16, &l, &bound, &syscall).ok());
  ec_socket_t c = EC_INVALID_SOCKET, s = EC_INVALID_SOCKET;
  CHECK(ec_connect("127.0.0.1", bound.port, &c).ok());
  std::string peer;
  int port = 0;
  CHECK(ec_listener_accept(l, &s, &peer, &port).ok());
  RecvCtx r{s, ec_error(), 99};
  ec_thread_t t;
  CHECK(ec_thread_create(&t, recv_one, &r, EC_THREAD_STACK_BYTES).ok());
  ec_mutex_t m;
  ec_cond_t cv;
  ec_mutex_init(&m);
  ec_cond_init(&cv);
  ec_mutex_lock(&m);
  ec_cond_timed_wait(&cv, &m, 50);
  ec_mutex_unlock(&m);
  ec_socket_interrupt(s);
  ec_thread_join(&t);  // Would hang if interrupt did not wake recv.
  CHECK(!r.err.ok() || r.n == 0);
  // Sending to an interrupted socket fails with an error, not a signal.
  ec_iovec piece = {"x", 1};
  CHECK(!ec_socket_send_all(s, &piece, 1).ok());
  ec_cond_destroy(&cv);
  ec_mutex_destroy(&m);
  ec_socket_close(s);
  ec_socket_close(c);
  ec_listener_close(l);
  ec_net_release();
}

namespace {
void wake_later(void* arg) {
  ec_mutex_t m;
  ec_cond_t cv;
  ec_mutex_init(&m);
  ec_cond_init(&cv);
  ec_mutex_lock(&m);
  ec_cond_timed_wait(&cv, &m, 30);
  ec_mutex_unlock(&m);
  ec_cond_destroy(&cv);
  ec_mutex_destroy(&m);
  ec_poller_wake(static_cast<ec_poller*>(arg));
}
}  // namespace

TEST(platform_poller_nonblocking_io_and_wake) {
  CHECK(ec_net_acquire().ok());
  ec_listener* l = nullptr;
  ec_bound_address bound;
  const char* syscall = "";
  CHECK(ec_listen("127.0.0.1", 0, 16, &l, &bound, &syscall).ok());
  ec_poller* p = nullptr;
  CHECK(ec_poller_create(&p).ok());
  int tag_listener = 0, tag_server = 0;
  CHECK(ec_poller_add(p, ec_listener_socket(l), EC_POLL_IN, &tag_listener).ok());
  ec_socket_t s = EC_INVALID_SOCKET;
  std::string peer;
  int port = 0;
  CHECK_EQ(ec_listener_try_accept(l, &s, &peer, &port).code, EC_EAGAIN);
  ec_socket_t c = EC_INVALID_SOCKET;
  CHECK(ec_connect("127.0.0.1", bound.port, &c).ok());
  ec_poll_event ev[4];
  std::size_t n = 0;
  bool woken = false;
  CHECK(ec_poller_wait(p, ev, 4, 5000, &n, &woken).ok());
  CHECK_EQ(n, 1u);
  CHECK(ev[0].data == &tag_listener);
  CHECK(ec_listener_try_accept(l, &s, &peer, &port).ok());
  CHECK_EQ(peer, std::string("127.0.0.1"));
  char buf[64];
  std::size_t got = 99;
  CHECK_EQ(ec_socket_try_recv(s, buf, sizeof buf, &got).code, EC_EAGAIN);
  CHECK(ec_poller_add(p, s, EC_POLL_IN | EC_POLL_OUT, &tag_server).ok());
  CHECK(ec_poller_wait(p, ev, 4, 5000, &n, &woken).ok());
  CHECK_EQ(n, 1u);
  CHECK(ev[0].data == &tag_server);
  CHECK(ev[0].events & EC_POLL_OUT);
  CHECK(!(ev[0].events & EC_POLL_IN));
  // A gathered send.
  ec_iovec pieces[2] = {{"hel", 3}, {"lo\n", 3}};
  std::size_t sent = 0;
  CHECK(ec_socket_try_send(s, pieces, 2, &sent).ok());
  CHECK_EQ(sent, 6u);
  CHECK(ec_socket_recv(c, buf, 6, &got).ok());
  CHECK_EQ(std::string(buf, got), std::string("hello\n"));
  // Readable, level-triggered: reported until read.
  ec_iovec hi = {"hi", 2};
  CHECK(ec_socket_send_all(c, &hi, 1).ok());
  CHECK(ec_poller_modify(p, s, EC_POLL_IN, &tag_server).ok());
  for (int i = 0; i < 2; ++i) {
    CHECK(ec_poller_wait(p, ev, 4, 5000, &n, &woken).ok());
    CHECK_EQ(n, 1u);
    CHECK(ev[0].events & EC_POLL_IN);
  }
  CHECK(ec_socket_try_recv(s, buf, sizeof buf, &got).ok());
  CHECK_EQ(got, 2u);
  // Nothing ready: times out.
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
  CHECK(ec_poller_wait(p, ev, 4, 1000, &n, &woken).ok());
  CHECK(woken);
  CHECK(ec_poller_wait(p, ev, 4, 20, &n, &woken).ok());
  CHECK(!woken);
  // Shutting the send side: the peer sees end of stream, and can answer.
  ec_socket_shutdown_send(s);
  CHECK(ec_socket_recv(c, buf, sizeof buf, &got).ok());
  CHECK_EQ(got, 0u);
  CHECK(ec_socket_send_all(c, &hi, 1).ok());
  CHECK(ec_poller_wait(p, ev, 4, 5000, &n, &woken).ok());
  CHECK(ec_socket_try_recv(s, buf, sizeof buf, &got).ok());
  CHECK_EQ(got, 2u);
  ec_poller_remove(p, s);
  ec_poller_remove(p, ec_listener_socket(l));
  ec_poller_destroy(p);
  ec_socket_close(s);
  ec_socket_close(c);
  ec_listener_close(l);
  ec_net_release();
}

TEST(platform_reset_versus_half_close) {
  CHECK(ec_net_acquire().ok());
  ec_listener* l = nullptr;
  ec_bound_address bound;
  const char* syscall = "";
  CHECK(ec_listen("127.0.0.1", 0, 16, &l, &bound, &syscall).ok());
  ec_poller* p = nullptr;
  CHECK(ec_poller_create(&p).ok());
  ec_socket_t c1, c2, s1 = EC_INVALID_SOCKET, s2 = EC_INVALID_SOCKET;
  std::string peer;
  int port = 0;
  CHECK(ec_connect("127.0.0.1", bound.port, &c1).ok());
  CHECK(ec_connect("127.0.0.1", bound.port, &c2).ok());
  CHECK(ec_listener_accept(l, &s1, &peer, &port).ok());
  CHECK(ec_listener_accept(l, &s2, &peer, &port).ok());
  // c1 half-closes, c2 resets.
  ec_socket_shutdown_send(c1);
  ec_socket_reset(c2);
  int t1 = 1, t2 = 2;
  CHECK(ec_poller_add(p, s1, EC_POLL_IN, &t1).ok());
  CHECK(ec_poller_add(p, s2, EC_POLL_IN, &t2).ok());
  bool seen1 = false, seen2 = false;
  for (int i = 0; i < 20 && !(seen1 && seen2); ++i) {
    ec_poll_event ev[4];
    std::size_t n = 0;
    bool woken = false;
    CHECK(ec_poller_wait(p, ev, 4, 1000, &n, &woken).ok());
    for (std::size_t k = 0; k < n; ++k) {
      if (ev[k].data == &t1) seen1 = true;
      if (ev[k].data == &t2) seen2 = true;
    }
  }
  CHECK(seen1 && seen2);
  char buf[8];
  std::size_t got = 99;
  // The half-closed one: end of stream, and not gone.
  CHECK(ec_socket_recv(s1, buf, sizeof buf, &got).ok());
  CHECK_EQ(got, 0u);
  CHECK(!ec_socket_gone(s1));
  // The reset one: an error, or (Wine) end of stream and gone.
  ec_error err = ec_socket_recv(s2, buf, sizeof buf, &got);
  CHECK(!err.ok() || (got == 0 && ec_socket_gone(s2)));
  ec_poller_destroy(p);
  ec_socket_close(s1);
  ec_socket_close(s2);
  ec_socket_close(c1);
  ec_listener_close(l);
  ec_net_release();
}
