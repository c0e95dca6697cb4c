// poller_wsapoll.cc (Windows) — the primitives under poller_dense.cc:
// WSAPoll, whose POLLHUP is normalized here to what EC_POLL_HUP promises,
// and a loopback TCP socket pair as the wake-up channel (WSAPoll watches
// sockets only, so no pipe or event will do).
#include <cstring>

#include "win32.h"

namespace ec_internal {
namespace {

// A connected pair of loopback sockets: listen on 127.0.0.1:0, connect,
// accept, close the listener.
ec_error socket_pair(SOCKET* a, SOCKET* b) {
  *a = *b = INVALID_SOCKET;
  SOCKET l = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  if (l == INVALID_SOCKET) return last_error();
  sockaddr_in addr;
  std::memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int len = sizeof addr;
  ec_error err;
  SOCKET c = INVALID_SOCKET, d = INVALID_SOCKET;
  if (bind(l, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(l, 1) != 0 ||
      getsockname(l, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    err = last_error();
  } else {
    c = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (c == INVALID_SOCKET || connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      err = last_error();
    } else {
      d = accept(l, nullptr, nullptr);
      if (d == INVALID_SOCKET) err = last_error();
    }
  }
  closesocket(l);
  if (!err.ok()) {
    if (c != INVALID_SOCKET) closesocket(c);
    return err;
  }
  for (SOCKET x : {c, d}) {
    no_inherit(x);
    set_nonblocking(static_cast<ec_socket_t>(x), true);
    set_nodelay(static_cast<ec_socket_t>(x));
  }
  *a = d;
  *b = c;
  return ec_error();
}

}  // namespace

short dense_events(unsigned interest) {
  short e = 0;
  if (interest & EC_POLL_IN) e |= POLLRDNORM;
  if (interest & EC_POLL_OUT) e |= POLLWRNORM;
  return e;
}

// WSAPoll reports POLLHUP for the peer's FIN alone, whatever was asked. A
// zero-byte send tells that from a connection finished both ways (reset, or
// our send side shut too), which alone is EC_POLL_HUP, as with epoll. For a
// FIN alone: end of stream is readable (EC_POLL_IN) on a socket watched for
// input; on one watched for nothing (or whose input the gate holds back:
// `interest` is as the gate leaves it) the entry is parked, since POLLHUP
// would end every wait; on one waiting to send, only writability is reported.
unsigned dense_ready(const WSAPOLLFD& f, unsigned interest, bool* park) {
  unsigned e = 0;
  SHORT r = f.revents;
  if (r & (POLLRDNORM | POLLRDBAND)) e |= EC_POLL_IN;
  if (r & POLLWRNORM) e |= EC_POLL_OUT;
  if (r & (POLLERR | POLLNVAL)) e |= EC_POLL_ERR;
  if (r & POLLHUP) {
    if (interest & EC_POLL_IN) e |= EC_POLL_IN;
    if (!probe_gone(static_cast<ec_socket_t>(f.fd)).ok()) {
      e |= EC_POLL_HUP;
    } else if ((interest & (EC_POLL_IN | EC_POLL_OUT)) == 0) {
      *park = true;
    }
  }
  return e;
}

// WSAPoll counts whole milliseconds (and sleeps to the scheduler tick), so
// short waits are not offered: the engine then sends without coalescing.
int dense_poll(WSAPOLLFD* fds, std::size_t n, std::int64_t timeout_us, ec_error* err) {
  int r = WSAPoll(fds, static_cast<ULONG>(n), ceil_ms(timeout_us));
  if (r == SOCKET_ERROR) {
    *err = last_error();
    return -1;
  }
  return r;
}

bool dense_sub_ms() { return false; }

ec_error wake_open(ec_socket_t* r, ec_socket_t* w) {
  SOCKET a, b;
  ec_error err = socket_pair(&a, &b);
  if (!err.ok()) return err;
  *r = static_cast<ec_socket_t>(a);
  *w = static_cast<ec_socket_t>(b);
  return ec_error();
}

void wake_close(ec_socket_t r, ec_socket_t w) {
  closesocket(sock(r));
  closesocket(sock(w));
}

void wake_poke(ec_socket_t w) {
  char byte = 1;
  send(sock(w), &byte, 1, 0);
}

void wake_drain(ec_socket_t r) {
  char buf[64];
  while (recv(sock(r), buf, sizeof buf, 0) > 0) {
  }
}

}  // namespace ec_internal

const char* ec_poller_backend() { return "WSAPoll"; }
