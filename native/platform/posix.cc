// posix.cc — platform.h on Linux, macOS and other POSIX systems: BSD sockets,
// pthreads, pthread_mutex and pthread_cond (timed waits on CLOCK_MONOTONIC).
#include "platform.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__) && !defined(ECHOCAST_USE_POLL)
#define EC_USE_EPOLL 1
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif

#include <atomic>
#include <climits>
#include <new>
#include <unordered_map>
#include <vector>

static_assert(sizeof(pthread_mutex_t) <= sizeof(ec_mutex_t::storage),
              "ec_mutex_t too small for pthread_mutex_t");
static_assert(sizeof(pthread_cond_t) <= sizeof(ec_cond_t::storage),
              "ec_cond_t too small for pthread_cond_t");
static_assert(sizeof(pthread_t) <= sizeof(std::uintptr_t),
              "pthread_t does not fit in ec_thread_t");

namespace {

ec_err translate_errno(int e) {
  switch (e) {
    case 0: return EC_OK;
    case EADDRINUSE: return EC_EADDRINUSE;
    case EADDRNOTAVAIL: return EC_EADDRNOTAVAIL;
    case EACCES: return EC_EACCES;
    case EPERM: return EC_EACCES;
    case EAFNOSUPPORT: return EC_EAFNOSUPPORT;
    case EAGAIN: return EC_EAGAIN;
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK: return EC_EAGAIN;
#endif
    case EBADF: return EC_EBADF;
    case ECANCELED: return EC_ECANCELED;
    case ECONNABORTED: return EC_ECONNABORTED;
    case ECONNREFUSED: return EC_ECONNREFUSED;
    case ECONNRESET: return EC_ECONNRESET;
    case EHOSTUNREACH: return EC_EHOSTUNREACH;
    case EINTR: return EC_EINTR;
    case EINVAL: return EC_EINVAL;
    case EMFILE: return EC_EMFILE;
    case ENETDOWN: return EC_ENETDOWN;
    case ENETUNREACH: return EC_ENETUNREACH;
    case ENFILE: return EC_ENFILE;
    case ENOBUFS: return EC_ENOBUFS;
    case ENOMEM: return EC_ENOMEM;
    case ENOTCONN: return EC_ENOTCONN;
    case ENOTSOCK: return EC_ENOTSOCK;
    case EPIPE: return EC_EPIPE;
    case ESHUTDOWN: return EC_ESHUTDOWN;
    case ETIMEDOUT: return EC_ETIMEDOUT;
    default: return EC_EUNKNOWN;
  }
}

ec_error from_errno(int e) {
  ec_error err;
  err.code = translate_errno(e);
  err.os_code = e;
  return err;
}

ec_error last_error() { return from_errno(errno); }

// getaddrinfo reports its own EAI_* codes; they are kept apart from errno
// values by storing them negated in os_code.
ec_error from_gai(int rc) {
  ec_error err;
  if (rc == EAI_SYSTEM) return last_error();
  err.code = (rc == EAI_AGAIN) ? EC_EAI_AGAIN : EC_ENOTFOUND;
  err.os_code = -rc;
  if (rc == EAI_MEMORY) err.code = EC_ENOMEM;
  return err;
}

void set_cloexec(int fd) {
  int flags = fcntl(fd, F_GETFD);
  if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

void set_nonblocking(int fd, bool on) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return;
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  fcntl(fd, F_SETFL, flags);
}

// Writes the numeric form of a socket address.
void describe(const sockaddr_storage& ss, std::string* address, int* port,
              bool* ipv6) {
  char host[INET6_ADDRSTRLEN + 1] = {0};
  if (ss.ss_family == AF_INET6) {
    const sockaddr_in6* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    *port = ntohs(a->sin6_port);
    if (ipv6) *ipv6 = true;
  } else {
    const sockaddr_in* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    *port = ntohs(a->sin_port);
    if (ipv6) *ipv6 = false;
  }
  *address = host;
}

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

// The listener and its self-pipe: writing one byte to wake_w makes poll()
// in ec_listener_accept() return, which close() on the listening socket does
// not reliably do (Linux leaves accept() blocked).
struct ec_listener {
  int fd = -1;
  int wake_r = -1;
  int wake_w = -1;
};

std::string ec_error_message(const ec_error& err) {
  if (err.os_code < 0 && err.code == EC_EUNKNOWN) return gai_strerror(-err.os_code);
  const char* fixed = ec_err_message(err.code);
  if (fixed != nullptr) return fixed;
  // An errno we have no name for: the system's text. strerror is safe here
  // for the values it is given (it only formats unknown numbers).
  const char* text = strerror(err.os_code);
  return text ? text : "unknown error";
}

const char* ec_platform_name() { return "posix"; }

ec_error ec_net_acquire() { return ec_error(); }

void ec_net_release() {}

ec_error ec_listen(const char* host, int port, int backlog, ec_listener** out,
                   ec_bound_address* bound, const char** syscall) {
  *out = nullptr;
  addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  addrinfo* list = nullptr;
  int rc = getaddrinfo(host, service, &hints, &list);
  if (rc != 0) {
    *syscall = "getaddrinfo";
    return from_gai(rc);
  }
  ec_error first_error;
  const char* first_syscall = "listen";
  int fd = -1;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    const char* step = "socket";
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd >= 0) {
      set_cloexec(fd);
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (ai->ai_family == AF_INET6) {
        // Like Node: "::" also accepts IPv4 (dual stack).
        int zero = 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
      }
      step = "bind";
      if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        step = "listen";
        if (listen(fd, backlog) == 0) break;
      }
    }
    if (first_error.ok()) {
      first_error = last_error();
      first_syscall = step;
    }
    if (fd >= 0) close(fd);
    fd = -1;
  }
  freeaddrinfo(list);
  if (fd < 0) {
    *syscall = first_syscall;
    if (first_error.ok()) first_error = from_errno(EADDRNOTAVAIL);
    return first_error;
  }
  int pipefd[2];
  if (pipe(pipefd) != 0) {
    ec_error err = last_error();
    close(fd);
    *syscall = "pipe";
    return err;
  }
  set_cloexec(pipefd[0]);
  set_cloexec(pipefd[1]);
  set_nonblocking(pipefd[0], true);
  set_nonblocking(pipefd[1], true);
  set_nonblocking(fd, true);

  sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  memset(&ss, 0, sizeof ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl);
  describe(ss, &bound->address, &bound->port, &bound->ipv6);

  ec_listener* l = new (std::nothrow) ec_listener;
  if (l == nullptr) {
    close(fd);
    close(pipefd[0]);
    close(pipefd[1]);
    *syscall = "listen";
    return from_errno(ENOMEM);
  }
  l->fd = fd;
  l->wake_r = pipefd[0];
  l->wake_w = pipefd[1];
  *out = l;
  return ec_error();
}

ec_error ec_listener_accept(ec_listener* l, ec_socket_t* out,
                            std::string* peer_address, int* peer_port) {
  for (;;) {
    pollfd fds[2];
    fds[0].fd = l->fd;
    fds[0].events = POLLIN;
    fds[0].revents = 0;
    fds[1].fd = l->wake_r;
    fds[1].events = POLLIN;
    fds[1].revents = 0;
    int n = poll(fds, 2, -1);  // Sleeps until a connection or a wake-up.
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    if (fds[1].revents != 0) {
      ec_error err;
      err.code = EC_ECANCELED;
      return err;
    }
    if (fds[0].revents == 0) continue;
    sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
    int fd = accept(l->fd, reinterpret_cast<sockaddr*>(&ss), &sl);
    if (fd < 0) {
      int e = errno;
      // The connection went away between poll and accept: wait again.
      if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR) continue;
      return from_errno(e);
    }
    set_cloexec(fd);
    set_nonblocking(fd, false);  // BSDs let accepted sockets inherit O_NONBLOCK.
    no_sigpipe(fd);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    describe(ss, peer_address, peer_port, nullptr);
    *out = fd;
    return ec_error();
  }
}

void ec_listener_wake(ec_listener* l) {
  char byte = 1;
  // The pipe is non-blocking; if it is full a wake-up is already pending.
  ssize_t rc = write(l->wake_w, &byte, 1);
  (void)rc;
}

void ec_listener_close(ec_listener* l) {
  if (l == nullptr) return;
  close(l->fd);
  close(l->wake_r);
  close(l->wake_w);
  delete l;
}

ec_error ec_connect(const char* host, int port, ec_socket_t* out) {
  addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  addrinfo* list = nullptr;
  int rc = getaddrinfo(host, service, &hints, &list);
  if (rc != 0) return from_gai(rc);
  ec_error err = from_errno(ECONNREFUSED);
  int fd = -1;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
      err = last_error();
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    err = last_error();
    close(fd);
    fd = -1;
  }
  freeaddrinfo(list);
  if (fd < 0) return err;
  set_cloexec(fd);
  no_sigpipe(fd);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  *out = fd;
  return ec_error();
}

ec_error ec_socket_recv(ec_socket_t s, void* buf, std::size_t len,
                        std::size_t* received) {
  for (;;) {
    ssize_t n = recv(s, buf, len, 0);
    if (n >= 0) {
      *received = static_cast<std::size_t>(n);
      return ec_error();
    }
    if (errno == EINTR) continue;
    *received = 0;
    return last_error();
  }
}

ec_error ec_socket_send_all(ec_socket_t s, const ec_iovec* pieces,
                            std::size_t count) {
  // Copy the descriptors into iovecs in windows of at most kMax, advancing
  // past partially sent pieces.
  constexpr std::size_t kMax = 64;
  iovec iov[kMax];
  std::size_t index = 0;   // First piece not fully sent.
  std::size_t offset = 0;  // Bytes of pieces[index] already sent.
  while (index < count) {
    std::size_t n = 0;
    for (std::size_t i = index; i < count && n < kMax; ++i) {
      if (pieces[i].len == 0) continue;
      std::size_t skip = (i == index) ? offset : 0;
      iov[n].iov_base = const_cast<char*>(static_cast<const char*>(pieces[i].base) + skip);
      iov[n].iov_len = pieces[i].len - skip;
      ++n;
    }
    if (n == 0) break;
    msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    ssize_t sent = sendmsg(s, &msg, kSendFlags);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    std::size_t left = static_cast<std::size_t>(sent);
    while (index < count && left > 0) {
      std::size_t rest = pieces[index].len - offset;
      if (left >= rest) {
        left -= rest;
        ++index;
        offset = 0;
      } else {
        offset += left;
        left = 0;
      }
    }
    while (index < count && pieces[index].len == 0) ++index;
  }
  return ec_error();
}

void ec_socket_interrupt(ec_socket_t s) { shutdown(s, SHUT_RDWR); }

void ec_socket_end(ec_socket_t s) { shutdown(s, SHUT_RDWR); }

void ec_socket_close(ec_socket_t s) { close(s); }

// ---------------------------------------------------------------------------
// Non-blocking sockets.
// ---------------------------------------------------------------------------

ec_socket_t ec_listener_socket(ec_listener* l) { return l->fd; }

ec_error ec_listener_try_accept(ec_listener* l, ec_socket_t* out,
                                std::string* peer_address, int* peer_port) {
  for (;;) {
    sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
#if defined(__linux__)
    int fd = accept4(l->fd, reinterpret_cast<sockaddr*>(&ss), &sl,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int fd = accept(l->fd, reinterpret_cast<sockaddr*>(&ss), &sl);
#endif
    if (fd < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e == EWOULDBLOCK) e = EAGAIN;
      return from_errno(e);
    }
#if !defined(__linux__)
    set_cloexec(fd);
    set_nonblocking(fd, true);
#endif
    no_sigpipe(fd);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    describe(ss, peer_address, peer_port, nullptr);
    *out = fd;
    return ec_error();
  }
}

ec_error ec_socket_try_recv(ec_socket_t s, void* buf, std::size_t len,
                            std::size_t* received) {
  for (;;) {
    ssize_t n = recv(s, buf, len, 0);
    if (n >= 0) {
      *received = static_cast<std::size_t>(n);
      return ec_error();
    }
    if (errno == EINTR) continue;
    *received = 0;
    return from_errno(errno == EWOULDBLOCK ? EAGAIN : errno);
  }
}

ec_error ec_socket_try_send(ec_socket_t s, const ec_iovec* pieces,
                            std::size_t count, std::size_t* sent) {
  iovec iov[EC_MAX_IOV];
  std::size_t n = 0;
  for (std::size_t i = 0; i < count && n < EC_MAX_IOV; ++i) {
    if (pieces[i].len == 0) continue;
    iov[n].iov_base = const_cast<void*>(pieces[i].base);
    iov[n].iov_len = pieces[i].len;
    ++n;
  }
  *sent = 0;
  if (n == 0) return ec_error();
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
    if (errno == EINTR) continue;
    return from_errno(errno == EWOULDBLOCK ? EAGAIN : errno);
  }
}

void ec_socket_shutdown_send(ec_socket_t s) { shutdown(s, SHUT_WR); }

void ec_socket_reset(ec_socket_t s) {
  linger l;
  l.l_onoff = 1;
  l.l_linger = 0;
  setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(s);
}

bool ec_socket_gone(ec_socket_t s) {
  // POSIX kernels report a reset from recv() itself (ECONNRESET), so an end of
  // stream here is always the peer's FIN: a half-close, or a close we learn of
  // at the next send (reason client-closed either way). Probing with a
  // zero-byte send would misread a peer that said goodbye and then had its
  // unread echoes answered with RST as a reset (client-error).
  (void)s;
  return false;
}

// ---------------------------------------------------------------------------
// The poller.
// ---------------------------------------------------------------------------

#if defined(EC_USE_EPOLL)

// epoll, level-triggered, plus an eventfd registered with a null data
// pointer as the wake-up channel.
struct ec_poller {
  int ep = -1;
  int wake_fd = -1;
  std::atomic<bool> wake_pending{false};
  std::vector<epoll_event> events;
};

namespace {
std::uint32_t to_epoll(unsigned events) {
  std::uint32_t e = 0;
  if (events & EC_POLL_IN) e |= EPOLLIN;
  if (events & EC_POLL_OUT) e |= EPOLLOUT;
  return e;
}
}  // namespace

const char* ec_poller_backend() { return "epoll"; }

ec_error ec_poller_create(ec_poller** out) {
  *out = nullptr;
  ec_poller* p = new (std::nothrow) ec_poller;
  if (p == nullptr) return from_errno(ENOMEM);
  p->ep = epoll_create1(EPOLL_CLOEXEC);
  if (p->ep < 0) {
    ec_error err = last_error();
    delete p;
    return err;
  }
  p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (p->wake_fd < 0) {
    ec_error err = last_error();
    close(p->ep);
    delete p;
    return err;
  }
  epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  if (epoll_ctl(p->ep, EPOLL_CTL_ADD, p->wake_fd, &ev) != 0) {
    ec_error err = last_error();
    close(p->wake_fd);
    close(p->ep);
    delete p;
    return err;
  }
  *out = p;
  return ec_error();
}

void ec_poller_destroy(ec_poller* p) {
  if (p == nullptr) return;
  close(p->wake_fd);
  close(p->ep);
  delete p;
}

ec_error ec_poller_add(ec_poller* p, ec_socket_t s, unsigned events, void* data) {
  epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = to_epoll(events);
  ev.data.ptr = data;
  if (epoll_ctl(p->ep, EPOLL_CTL_ADD, s, &ev) != 0) return last_error();
  return ec_error();
}

ec_error ec_poller_modify(ec_poller* p, ec_socket_t s, unsigned events, void* data) {
  epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = to_epoll(events);
  ev.data.ptr = data;
  if (epoll_ctl(p->ep, EPOLL_CTL_MOD, s, &ev) != 0) return last_error();
  return ec_error();
}

void ec_poller_remove(ec_poller* p, ec_socket_t s) {
  epoll_event ev;  // Kernels before 2.6.9 want a non-null pointer.
  memset(&ev, 0, sizeof ev);
  epoll_ctl(p->ep, EPOLL_CTL_DEL, s, &ev);
}

ec_error ec_poller_wait(ec_poller* p, ec_poll_event* out, std::size_t max,
                        int timeout_ms, std::size_t* count, bool* woken) {
  *count = 0;
  *woken = false;
  if (max == 0) return from_errno(EINVAL);
  if (p->events.size() < max + 1) p->events.resize(max + 1);
  int n;
  for (;;) {
    n = epoll_wait(p->ep, p->events.data(), static_cast<int>(max + 1), timeout_ms);
    if (n >= 0) break;
    if (errno != EINTR) return last_error();
  }
  std::size_t k = 0;
  for (int i = 0; i < n; ++i) {
    const epoll_event& ev = p->events[static_cast<std::size_t>(i)];
    if (ev.data.ptr == nullptr) {
      std::uint64_t value;
      ssize_t rc = read(p->wake_fd, &value, sizeof value);
      (void)rc;
      p->wake_pending.store(false, std::memory_order_release);
      *woken = true;
      continue;
    }
    if (k == max) break;  // Level-triggered: the rest is reported next time.
    unsigned e = 0;
    if (ev.events & EPOLLIN) e |= EC_POLL_IN;
    if (ev.events & EPOLLOUT) e |= EC_POLL_OUT;
    if (ev.events & EPOLLERR) e |= EC_POLL_ERR;
    if (ev.events & EPOLLHUP) e |= EC_POLL_HUP;
    out[k].data = ev.data.ptr;
    out[k].events = e;
    ++k;
  }
  *count = k;
  return ec_error();
}

void ec_poller_wake(ec_poller* p) {
  if (p->wake_pending.exchange(true, std::memory_order_acq_rel)) return;
  std::uint64_t one = 1;
  ssize_t rc = write(p->wake_fd, &one, sizeof one);
  (void)rc;
}

#else  // poll(): other POSIX systems, or ECHOCAST_USE_POLL.

// poll() over an array kept dense (removal swaps the last entry in), with
// the read end of a self-pipe at index 0 as the wake-up channel.
struct ec_poller {
  int wake_r = -1;
  int wake_w = -1;
  std::atomic<bool> wake_pending{false};
  std::vector<pollfd> fds;
  std::vector<void*> data;
  std::unordered_map<int, std::size_t> index;
  std::size_t rotate = 0;  // Where reporting starts, for fairness.
};

namespace {
short to_poll(unsigned events) {
  short e = 0;
  if (events & EC_POLL_IN) e |= POLLIN;
  if (events & EC_POLL_OUT) e |= POLLOUT;
  return e;
}
}  // namespace

const char* ec_poller_backend() { return "poll"; }

ec_error ec_poller_create(ec_poller** out) {
  *out = nullptr;
  ec_poller* p = new (std::nothrow) ec_poller;
  if (p == nullptr) return from_errno(ENOMEM);
  int pipefd[2];
  if (pipe(pipefd) != 0) {
    ec_error err = last_error();
    delete p;
    return err;
  }
  for (int fd : pipefd) {
    set_cloexec(fd);
    set_nonblocking(fd, true);
  }
  p->wake_r = pipefd[0];
  p->wake_w = pipefd[1];
  pollfd w;
  w.fd = p->wake_r;
  w.events = POLLIN;
  w.revents = 0;
  p->fds.push_back(w);
  p->data.push_back(nullptr);
  *out = p;
  return ec_error();
}

void ec_poller_destroy(ec_poller* p) {
  if (p == nullptr) return;
  close(p->wake_r);
  close(p->wake_w);
  delete p;
}

ec_error ec_poller_add(ec_poller* p, ec_socket_t s, unsigned events, void* data) {
  if (p->index.count(s) != 0) return from_errno(EINVAL);
  pollfd f;
  f.fd = s;
  f.events = to_poll(events);
  f.revents = 0;
  p->index[s] = p->fds.size();
  p->fds.push_back(f);
  p->data.push_back(data);
  return ec_error();
}

ec_error ec_poller_modify(ec_poller* p, ec_socket_t s, unsigned events, void* data) {
  auto it = p->index.find(s);
  if (it == p->index.end()) return from_errno(EBADF);
  p->fds[it->second].events = to_poll(events);
  p->data[it->second] = data;
  return ec_error();
}

void ec_poller_remove(ec_poller* p, ec_socket_t s) {
  auto it = p->index.find(s);
  if (it == p->index.end()) return;
  std::size_t i = it->second;
  std::size_t last = p->fds.size() - 1;
  p->index.erase(it);
  if (i != last) {
    p->fds[i] = p->fds[last];
    p->data[i] = p->data[last];
    p->index[p->fds[i].fd] = i;
  }
  p->fds.pop_back();
  p->data.pop_back();
}

ec_error ec_poller_wait(ec_poller* p, ec_poll_event* out, std::size_t max,
                        int timeout_ms, std::size_t* count, bool* woken) {
  *count = 0;
  *woken = false;
  if (max == 0) return from_errno(EINVAL);
  int n;
  for (;;) {
    n = poll(p->fds.data(), static_cast<nfds_t>(p->fds.size()), timeout_ms);
    if (n >= 0) break;
    if (errno != EINTR) return last_error();
  }
  if (n == 0) return ec_error();
  if (p->fds[0].revents != 0) {
    char buf[64];
    while (read(p->wake_r, buf, sizeof buf) > 0) {
    }
    p->wake_pending.store(false, std::memory_order_release);
    *woken = true;
  }
  std::size_t total = p->fds.size() - 1;
  std::size_t k = 0;
  if (p->rotate >= total) p->rotate = 0;
  for (std::size_t j = 0; j < total && k < max; ++j) {
    std::size_t i = 1 + (p->rotate + j) % total;
    short r = p->fds[i].revents;
    if (r == 0) continue;
    unsigned e = 0;
    if (r & POLLIN) e |= EC_POLL_IN;
    if (r & POLLOUT) e |= EC_POLL_OUT;
    if (r & (POLLERR | POLLNVAL)) e |= EC_POLL_ERR;
    if (r & POLLHUP) e |= EC_POLL_HUP;
    out[k].data = p->data[i];
    out[k].events = e;
    ++k;
  }
  p->rotate += 1;
  *count = k;
  return ec_error();
}

void ec_poller_wake(ec_poller* p) {
  if (p->wake_pending.exchange(true, std::memory_order_acq_rel)) return;
  char byte = 1;
  ssize_t rc = write(p->wake_w, &byte, 1);
  (void)rc;
}

#endif

namespace {
struct ThreadStart {
  ec_thread_fn fn;
  void* arg;
};

void* thread_main(void* p) {
  ThreadStart start = *static_cast<ThreadStart*>(p);
  delete static_cast<ThreadStart*>(p);
  start.fn(start.arg);
  return nullptr;
}
}  // namespace

ec_error ec_thread_create(ec_thread_t* t, ec_thread_fn fn, void* arg,
                          std::size_t stack_bytes) {
  ThreadStart* start = new (std::nothrow) ThreadStart{fn, arg};
  if (start == nullptr) return from_errno(ENOMEM);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  if (stack_bytes < static_cast<std::size_t>(PTHREAD_STACK_MIN))
    stack_bytes = PTHREAD_STACK_MIN;
  pthread_attr_setstacksize(&attr, stack_bytes);
  pthread_t tid;
  int rc = pthread_create(&tid, &attr, thread_main, start);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    delete start;
    return from_errno(rc);
  }
  t->handle = (std::uintptr_t)tid;
  return ec_error();
}

void ec_thread_join(ec_thread_t* t) {
  pthread_join((pthread_t)t->handle, nullptr);
  t->handle = 0;
}

static pthread_mutex_t* native(ec_mutex_t* m) {
  return reinterpret_cast<pthread_mutex_t*>(m->storage);
}
static pthread_cond_t* native(ec_cond_t* c) {
  return reinterpret_cast<pthread_cond_t*>(c->storage);
}

void ec_mutex_init(ec_mutex_t* m) { pthread_mutex_init(native(m), nullptr); }
void ec_mutex_destroy(ec_mutex_t* m) { pthread_mutex_destroy(native(m)); }
void ec_mutex_lock(ec_mutex_t* m) { pthread_mutex_lock(native(m)); }
void ec_mutex_unlock(ec_mutex_t* m) { pthread_mutex_unlock(native(m)); }

void ec_cond_init(ec_cond_t* c) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
#if !defined(__APPLE__)
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
  pthread_cond_init(native(c), &attr);
  pthread_condattr_destroy(&attr);
}
void ec_cond_destroy(ec_cond_t* c) { pthread_cond_destroy(native(c)); }
void ec_cond_wait(ec_cond_t* c, ec_mutex_t* m) {
  pthread_cond_wait(native(c), native(m));
}

bool ec_cond_timed_wait(ec_cond_t* c, ec_mutex_t* m, std::uint64_t timeout_ms) {
#if defined(__APPLE__)
  // macOS has no condattr clock; its relative wait is immune to clock jumps.
  timespec rel;
  rel.tv_sec = static_cast<time_t>(timeout_ms / 1000);
  rel.tv_nsec = static_cast<long>((timeout_ms % 1000) * 1000000);
  return pthread_cond_timedwait_relative_np(native(c), native(m), &rel) == 0;
#else
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += static_cast<time_t>(timeout_ms / 1000);
  ts.tv_nsec += static_cast<long>((timeout_ms % 1000) * 1000000);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec += 1;
    ts.tv_nsec -= 1000000000L;
  }
  return pthread_cond_timedwait(native(c), native(m), &ts) == 0;
#endif
}
void ec_cond_signal(ec_cond_t* c) { pthread_cond_signal(native(c)); }
void ec_cond_broadcast(ec_cond_t* c) { pthread_cond_broadcast(native(c)); }

std::uint64_t ec_now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000u +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000000u;
}

// ---------------------------------------------------------------------------
// Load generator support (native/bench): non-blocking connect and clocks.
// ---------------------------------------------------------------------------

ec_error ec_connect_start(const char* host, int port, ec_socket_t* out,
                          bool* pending, const char** syscall) {
  *out = EC_INVALID_SOCKET;
  *pending = false;
  addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  addrinfo* list = nullptr;
  *syscall = "getaddrinfo";
  int rc = getaddrinfo(host, service, &hints, &list);
  if (rc != 0) return from_gai(rc);
  *syscall = "socket";
  ec_error err = from_errno(EAFNOSUPPORT);
  int fd = -1;
  addrinfo* ai = list;
  for (; ai != nullptr; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd >= 0) break;
    err = last_error();
  }
  if (fd < 0) {
    freeaddrinfo(list);
    return err;
  }
  set_cloexec(fd);
  set_nonblocking(fd, true);
  no_sigpipe(fd);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  *syscall = "connect";
  int c;
  do {
    c = connect(fd, ai->ai_addr, ai->ai_addrlen);
  } while (c != 0 && errno == EINTR);
  int e = c == 0 ? 0 : errno;
  freeaddrinfo(list);
  if (c != 0 && e != EINPROGRESS && e != EAGAIN) {
    close(fd);
    return from_errno(e);
  }
  *pending = c != 0;
  *out = fd;
  return ec_error();
}

ec_error ec_connect_result(ec_socket_t s) {
  int e = 0;
  socklen_t len = sizeof e;
  if (getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &len) != 0) return last_error();
  if (e != 0) return from_errno(e);
  sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getpeername(s, reinterpret_cast<sockaddr*>(&ss), &sl) == 0) return ec_error();
  if (errno == ENOTCONN) return from_errno(EAGAIN);
  return last_error();
}

std::uint64_t ec_now_micros() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

std::uint64_t ec_thread_cpu_micros() {
  timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

// ---------------------------------------------------------------------------
// Sub-millisecond poller waits (engine_poll: send coalescing).
// ---------------------------------------------------------------------------
// Level-triggered readiness stays reported until it is consumed, so a short
// sleep on the poller (which takes nothing) followed by ec_poller_wait(0)
// reports exactly what a direct wait would have.

namespace {
// Whole milliseconds, rounded up (-1 stays -1).
int ceil_ms(std::int64_t timeout_us) {
  if (timeout_us < 0) return -1;
  std::int64_t ms = (timeout_us + 999) / 1000;
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}
}  // namespace

#if defined(EC_USE_EPOLL) && defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#define EC_HAVE_EPOLL_PWAIT2 1
namespace {
// 1: epoll_pwait2 works; -1: the kernel lacks it (ENOSYS); 0: not known yet.
std::atomic<int> g_pwait2{0};
}  // namespace
#endif

bool ec_poller_sub_ms(ec_poller* p) {
#if defined(EC_HAVE_EPOLL_PWAIT2)
  int known = g_pwait2.load(std::memory_order_relaxed);
  if (known == 0) {
    timespec zero = {0, 0};
    epoll_event ev;
    int rc = epoll_pwait2(p->ep, &ev, 1, &zero, nullptr);
    known = rc < 0 && errno == ENOSYS ? -1 : 1;
    g_pwait2.store(known, std::memory_order_relaxed);
  }
  return known > 0;
#elif defined(EC_USE_EPOLL)
  (void)p;
  return false;
#elif defined(__linux__) && !defined(EC_USE_EPOLL)
  (void)p;
  return true;  // ppoll.
#else
  (void)p;
  return false;
#endif
}

ec_error ec_poller_wait_us(ec_poller* p, ec_poll_event* out, std::size_t max,
                           std::int64_t timeout_us, std::size_t* count, bool* woken) {
  if (timeout_us <= 0 || timeout_us % 1000 == 0 || !ec_poller_sub_ms(p))
    return ec_poller_wait(p, out, max, ceil_ms(timeout_us), count, woken);
  *count = 0;
  *woken = false;
  timespec ts;
  ts.tv_sec = static_cast<time_t>(timeout_us / 1000000);
  ts.tv_nsec = static_cast<long>((timeout_us % 1000000) * 1000);
  int n;
#if defined(EC_HAVE_EPOLL_PWAIT2)
  epoll_event ev;
  n = epoll_pwait2(p->ep, &ev, 1, &ts, nullptr);
#elif defined(__linux__) && !defined(EC_USE_EPOLL)
  n = ppoll(p->fds.data(), static_cast<nfds_t>(p->fds.size()), &ts, nullptr);
#else
  n = -1;  // Not reached: ec_poller_sub_ms() is false here.
  errno = ENOSYS;
#endif
  // Interrupted: return early with nothing; the caller recomputes its
  // deadline and waits again.
  if (n < 0) return errno == EINTR ? ec_error() : last_error();
  if (n == 0) return ec_error();
  return ec_poller_wait(p, out, max, 0, count, woken);
}

bool ec_socket_set_rcvlowat(ec_socket_t s, std::size_t bytes) {
  int v = bytes > static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(bytes);
  if (v < 1) v = 1;
  return setsockopt(s, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) == 0;
}
