// socket.cc (POSIX) — the socket primitives of internal.h over BSD sockets,
// and the socket calls of platform.h, bench.h and testing.h that differ per
// OS (interrupt, end, close, reset, connect result, SO_RCVLOWAT).
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <climits>

#include "../bench.h"
#include "../testing.h"
#include "posix.h"

namespace ec_internal {
namespace {

#if defined(MSG_NOSIGNAL)
constexpr int kSendFlags = MSG_NOSIGNAL;
#else
constexpr int kSendFlags = 0;  // SO_NOSIGPIPE is set on each socket instead.
#endif

void no_sigpipe(int fd) {
#if defined(SO_NOSIGPIPE)
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#else
  (void)fd;
#endif
}

}  // namespace

void set_cloexec(int fd) {
  int flags = fcntl(fd, F_GETFD);
  if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

void set_fd_nonblocking(int fd, bool on) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return;
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  fcntl(fd, F_SETFL, flags);
}

ec_error make_wake_pipe(int fds[2]) {
  if (pipe(fds) != 0) return last_error();
  for (int i = 0; i < 2; ++i) {
    set_cloexec(fds[i]);
    set_fd_nonblocking(fds[i], true);
  }
  return ec_error();
}

void poke_wake_pipe(int fd) {
  char byte = 1;
  ssize_t rc = write(fd, &byte, 1);
  (void)rc;
}

void drain_wake_pipe(int fd) {
  char buf[64];
  while (read(fd, buf, sizeof buf) > 0) {
  }
}

ec_error open_socket(const addrinfo* ai, ec_socket_t* out) {
  int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
  if (fd < 0) return last_error();
  set_cloexec(fd);
  no_sigpipe(fd);
  *out = fd;
  return ec_error();
}

void prepare_listener(ec_socket_t s, int family) {
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) {
    int zero = 0;
    setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  }
}

void set_nodelay(ec_socket_t s) {
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void set_nonblocking(ec_socket_t s, bool on) { set_fd_nonblocking(s, on); }

ec_error send_pieces(ec_socket_t s, const ec_iovec* pieces, std::size_t count, std::size_t* sent) {
  iovec iov[EC_MAX_IOV];
  std::size_t n = count < EC_MAX_IOV ? count : EC_MAX_IOV;
  for (std::size_t i = 0; i < n; ++i) {
    iov[i].iov_base = const_cast<void*>(pieces[i].base);
    iov[i].iov_len = pieces[i].len;
  }
  msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov;
  msg.msg_iovlen = n;
  for (;;) {
    ssize_t r = sendmsg(s, &msg, kSendFlags);
    if (r >= 0) {
      *sent = static_cast<std::size_t>(r);
      return ec_error();
    }
    if (errno != EINTR) return last_error();
  }
}

ec_error recv_some(ec_socket_t s, void* buf, std::size_t len, std::size_t* received) {
  for (;;) {
    ssize_t n = recv(s, buf, len, 0);
    if (n >= 0) {
      *received = static_cast<std::size_t>(n);
      return ec_error();
    }
    if (errno != EINTR) {
      *received = 0;
      return last_error();
    }
  }
}

ec_error probe_gone(ec_socket_t) { return ec_error(); }

ec_error connect_to(ec_socket_t s, const addrinfo* ai, bool nonblocking, bool* pending) {
  int c;
  do {
    c = connect(s, ai->ai_addr, ai->ai_addrlen);
  } while (c != 0 && nonblocking && errno == EINTR);
  if (c == 0) {
    if (pending) *pending = false;
    return ec_error();
  }
  int e = errno;
  if (nonblocking && (e == EINPROGRESS || e == EAGAIN)) {
    *pending = true;
    return ec_error();
  }
  return from_os(e);
}

ec_error accept_socket(ec_socket_t listener, bool nonblocking, ec_socket_t* out,
                       std::string* peer_address, int* peer_port, ec_peer_address* peer_bytes) {
  for (;;) {
    sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
#if defined(__linux__)
    int fd = accept4(listener, reinterpret_cast<sockaddr*>(&ss), &sl,
                     SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0));
#else
    int fd = accept(listener, reinterpret_cast<sockaddr*>(&ss), &sl);
#endif
    if (fd < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
#if !defined(__linux__)
    set_cloexec(fd);
    set_fd_nonblocking(fd, nonblocking);  // BSDs let accepted sockets inherit O_NONBLOCK.
#endif
    no_sigpipe(fd);
    set_nodelay(fd);
    describe(ss, peer_address, peer_port, nullptr, peer_bytes);
    *out = fd;
    return ec_error();
  }
}

}  // namespace ec_internal

using namespace ec_internal;

ec_error ec_net_acquire() { return ec_error(); }

void ec_net_release() {}

// shutdown(SHUT_RDWR) wakes a recv or send blocked in another thread on
// every POSIX kernel and keeps the descriptor, so interrupt and end are one.
void ec_socket_interrupt(ec_socket_t s) { shutdown(s, SHUT_RDWR); }

void ec_socket_end(ec_socket_t s) { shutdown(s, SHUT_RDWR); }

void ec_socket_close(ec_socket_t s) { close(s); }

void ec_socket_shutdown_send(ec_socket_t s) { shutdown(s, SHUT_WR); }

ec_error ec_socket_send_now(ec_socket_t s, const void* data, std::size_t len, std::size_t* sent) {
  *sent = 0;
  for (;;) {
    ssize_t r = send(s, data, len, kSendFlags | MSG_DONTWAIT);
    if (r >= 0) {
      *sent = static_cast<std::size_t>(r);
      return ec_error();
    }
    if (errno != EINTR) return last_error();
  }
}

void ec_socket_reset(ec_socket_t s) {
  linger l;
  l.l_onoff = 1;
  l.l_linger = 0;
  setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(s);
}

ec_error ec_connect_result(ec_socket_t s) {
  int e = 0;
  socklen_t len = sizeof e;
  if (getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &len) != 0) return last_error();
  if (e != 0) return from_os(e);
  sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getpeername(s, reinterpret_cast<sockaddr*>(&ss), &sl) == 0) return ec_error();
  if (errno == ENOTCONN) return from_os(EAGAIN);
  return last_error();
}

bool ec_socket_set_rcvlowat(ec_socket_t s, std::size_t bytes) {
  int v = bytes > static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(bytes);
  if (v < 1) v = 1;
  return setsockopt(s, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) == 0;
}
