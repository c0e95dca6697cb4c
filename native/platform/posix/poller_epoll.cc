// poller_epoll.cc (Linux) — the poller over epoll, level-triggered, with an
// eventfd registered under a null data pointer as the wake-up channel.
// Sub-millisecond waits use epoll_pwait2 where glibc and the kernel have it.
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <new>
#include <vector>

#include "posix.h"

using namespace ec_internal;

struct ec_poller {
  int ep = -1;
  int wake_fd = -1;
  std::atomic<bool> wake_pending{false};
  std::vector<epoll_event> events;
};

namespace {

// epoll's EPOLLHUP already means what EC_POLL_HUP promises (both directions
// finished: SHUTDOWN_MASK or a closed connection), so the bits map directly.
std::uint32_t to_epoll(unsigned events) {
  std::uint32_t e = 0;
  if (events & EC_POLL_IN) e |= EPOLLIN;
  if (events & EC_POLL_OUT) e |= EPOLLOUT;
  return e;
}

unsigned from_epoll(std::uint32_t r) {
  unsigned e = 0;
  if (r & EPOLLIN) e |= EC_POLL_IN;
  if (r & EPOLLOUT) e |= EC_POLL_OUT;
  if (r & EPOLLERR) e |= EC_POLL_ERR;
  if (r & EPOLLHUP) e |= EC_POLL_HUP;
  return e;
}

ec_error control(ec_poller* p, int op, int fd, unsigned events, void* data) {
  epoll_event ev;  // Kernels before 2.6.9 want a non-null pointer for DEL too.
  memset(&ev, 0, sizeof ev);
  ev.events = to_epoll(events);
  ev.data.ptr = data;
  if (epoll_ctl(p->ep, op, fd, &ev) != 0) return last_error();
  return ec_error();
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#define EC_HAVE_EPOLL_PWAIT2 1
// 1: epoll_pwait2 works; -1: the kernel lacks it (ENOSYS); 0: not known yet.
std::atomic<int> g_pwait2{0};
#endif

}  // namespace

const char* ec_poller_backend() { return "epoll"; }

ec_error ec_poller_create(ec_poller** out) {
  *out = nullptr;
  ec_poller* p = new (std::nothrow) ec_poller;
  if (p == nullptr) return make_error(EC_ENOMEM);
  ec_error err;
  p->ep = epoll_create1(EPOLL_CLOEXEC);
  if (p->ep < 0) {
    err = last_error();
  } else {
    p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->wake_fd < 0) err = last_error();
  }
  if (err.ok()) err = control(p, EPOLL_CTL_ADD, p->wake_fd, EC_POLL_IN, nullptr);
  if (!err.ok()) {
    ec_poller_destroy(p);
    return err;
  }
  *out = p;
  return ec_error();
}

void ec_poller_destroy(ec_poller* p) {
  if (p == nullptr) return;
  if (p->wake_fd >= 0) close(p->wake_fd);
  if (p->ep >= 0) close(p->ep);
  delete p;
}

ec_error ec_poller_add(ec_poller* p, ec_socket_t s, unsigned events, void* data) {
  return control(p, EPOLL_CTL_ADD, s, events, data);
}

ec_error ec_poller_modify(ec_poller* p, ec_socket_t s, unsigned events, void* data) {
  return control(p, EPOLL_CTL_MOD, s, events, data);
}

void ec_poller_remove(ec_poller* p, ec_socket_t s) { control(p, EPOLL_CTL_DEL, s, 0, nullptr); }

ec_error ec_poller_wait(ec_poller* p, ec_poll_event* out, std::size_t max, int timeout_ms,
                        std::size_t* count, bool* woken) {
  *count = 0;
  *woken = false;
  if (max == 0) return make_error(EC_EINVAL);
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
    out[k].data = ev.data.ptr;
    out[k].events = from_epoll(ev.events);
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
#else
  (void)p;
  return false;
#endif
}

// Level-triggered readiness stays reported until it is consumed, so a short
// sleep on the poller (which takes nothing) followed by ec_poller_wait(0)
// reports exactly what a direct wait would have.
ec_error ec_poller_wait_us(ec_poller* p, ec_poll_event* out, std::size_t max,
                           std::int64_t timeout_us, std::size_t* count, bool* woken) {
  if (timeout_us <= 0 || timeout_us % 1000 == 0 || !ec_poller_sub_ms(p))
    return ec_poller_wait(p, out, max, ceil_ms(timeout_us), count, woken);
#if defined(EC_HAVE_EPOLL_PWAIT2)
  *count = 0;
  *woken = false;
  timespec ts = timespec_from_us(timeout_us);
  epoll_event ev;
  int n = epoll_pwait2(p->ep, &ev, 1, &ts, nullptr);
  if (n < 0) return errno == EINTR ? ec_error() : last_error();
  if (n == 0) return ec_error();
#endif
  return ec_poller_wait(p, out, max, 0, count, woken);
}
