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
