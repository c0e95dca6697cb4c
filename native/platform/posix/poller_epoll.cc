// poller_epoll.cc (Linux) — the poller over epoll, level-triggered, with an
// eventfd registered under a null data pointer as the wake-up channel.
// Sub-millisecond waits use epoll_pwait2 where glibc and the kernel have it.
//
// The input gate (EC_POLL_GATED): gated input interest lives in a second
// epoll set, in_ep; the socket itself is in the main set, ep, with the rest
// of its interest (OUT, or nothing: errors and hang-ups only), with the
// wake-up channel and whatever is not gated (the listener). The main set is
// nested in in_ep under a marker data pointer. Gate open, the wait is on
// in_ep: client input comes straight from it, and only when the main set
// has something (a wake-up, a connection, a socket writable or failed) a
// zero-timeout wait on ep collects it, so the fast path (input, sends that
// do not block) costs one epoll_wait per turn as without the gate. Gate
// closed, the wait is on ep alone. Opening or closing the gate is no system
// call at all.
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
  int in_ep = -1;  // Gated input interest (see above).
  int wake_fd = -1;
  bool gate_open = true;
  std::atomic<bool> wake_pending{false};
  std::vector<epoll_event> events;
  std::vector<epoll_event> main_events;
  // What each registered descriptor asked for, and its data pointer
  // (indexed by fd; events 0 for none), so a modify touches only the set
  // whose part changed.
  struct Registration {
    unsigned events = 0;
    void* data = nullptr;
  };
  std::vector<Registration> regs;
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

ec_error control(int ep, int op, int fd, unsigned events, void* data) {
  epoll_event ev;  // Kernels before 2.6.9 want a non-null pointer for DEL too.
  memset(&ev, 0, sizeof ev);
  ev.events = to_epoll(events);
  ev.data.ptr = data;
  if (epoll_ctl(ep, op, fd, &ev) != 0) return last_error();
  return ec_error();
}

// The data pointer in_ep is reported with in the main set.
char g_in_marker;

// Whether an interest has gated input (in in_ep), and its part in the main set.
bool gated_in(unsigned events) {
  return (events & EC_POLL_GATED) != 0 && (events & EC_POLL_IN) != 0;
}
unsigned main_part(unsigned events) { return gated_in(events) ? (events & EC_POLL_OUT) : events; }

// Registered interests carry this bit so that "registered for nothing" (0
// asked: errors and hang-ups only) differs from "not registered".
constexpr unsigned kRegistered = 1u << 31;

ec_poller::Registration registered(const ec_poller* p, int fd) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= p->regs.size()) return ec_poller::Registration();
  return p->regs[static_cast<std::size_t>(fd)];
}

void remember(ec_poller* p, int fd, unsigned events, void* data) {
  if (fd < 0) return;
  std::size_t i = static_cast<std::size_t>(fd);
  if (i >= p->regs.size()) p->regs.resize(i + 1 + i / 2);
  p->regs[i].events = events;
  p->regs[i].data = data;
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
  if (p->ep >= 0) p->in_ep = epoll_create1(EPOLL_CLOEXEC);
  if (p->ep < 0 || p->in_ep < 0) {
    err = last_error();
  } else {
    p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->wake_fd < 0) err = last_error();
  }
  if (err.ok()) err = control(p->ep, EPOLL_CTL_ADD, p->wake_fd, EC_POLL_IN, nullptr);
  if (err.ok()) err = control(p->in_ep, EPOLL_CTL_ADD, p->ep, EC_POLL_IN, &g_in_marker);
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
  if (p->in_ep >= 0) close(p->in_ep);
  if (p->ep >= 0) close(p->ep);
  delete p;
}

ec_error ec_poller_add(ec_poller* p, ec_socket_t s, unsigned events, void* data) {
  ec_error err = control(p->ep, EPOLL_CTL_ADD, s, main_part(events), data);
  if (err.ok() && gated_in(events)) {
    err = control(p->in_ep, EPOLL_CTL_ADD, s, EC_POLL_IN, data);
    if (!err.ok()) control(p->ep, EPOLL_CTL_DEL, s, 0, nullptr);
  }
  if (err.ok()) remember(p, s, events | kRegistered, data);
  return err;
}

// Usually one epoll_ctl, as without the gate: only the set whose part of
// the interest changed is touched (a new data pointer touches both).
ec_error ec_poller_modify(ec_poller* p, ec_socket_t s, unsigned events, void* data) {
  ec_poller::Registration old = registered(p, s);
  if (old.events == 0) return control(p->ep, EPOLL_CTL_MOD, s, events, data);  // EBADF/ENOENT.
  ec_error err;
  bool same_data = old.data == data;
  bool was_in = gated_in(old.events), now_in = gated_in(events);
  if (was_in != now_in) {
    err = control(p->in_ep, now_in ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, s, EC_POLL_IN, data);
  } else if (now_in && !same_data) {
    err = control(p->in_ep, EPOLL_CTL_MOD, s, EC_POLL_IN, data);
  }
  if (err.ok() && (to_epoll(main_part(old.events)) != to_epoll(main_part(events)) || !same_data))
    err = control(p->ep, EPOLL_CTL_MOD, s, main_part(events), data);
  if (err.ok()) remember(p, s, events | kRegistered, data);
  return err;
}

void ec_poller_remove(ec_poller* p, ec_socket_t s) {
  if (gated_in(registered(p, s).events)) control(p->in_ep, EPOLL_CTL_DEL, s, 0, nullptr);
  control(p->ep, EPOLL_CTL_DEL, s, 0, nullptr);
  remember(p, s, 0, nullptr);
}

void ec_poller_gate_input(ec_poller* p, bool open) { p->gate_open = open; }

namespace {

// The set a wait sleeps on (see the top of this file).
int top_set(const ec_poller* p) { return p->gate_open ? p->in_ep : p->ep; }

// One event of the main set into out[*k] (the wake-up channel sets *woken).
// False when out is full.
bool take_main(ec_poller* p, const epoll_event& ev, ec_poll_event* out, std::size_t max,
               std::size_t* k, bool* woken) {
  if (ev.data.ptr == nullptr) {
    std::uint64_t value;
    ssize_t rc = read(p->wake_fd, &value, sizeof value);
    (void)rc;
    p->wake_pending.store(false, std::memory_order_release);
    *woken = true;
    return true;
  }
  if (*k == max) return false;  // Level-triggered: the rest is reported next time.
  out[*k].data = ev.data.ptr;
  out[*k].events = from_epoll(ev.events);
  ++*k;
  return true;
}

}  // namespace

ec_error ec_poller_wait(ec_poller* p, ec_poll_event* out, std::size_t max, int timeout_ms,
                        std::size_t* count, bool* woken) {
  *count = 0;
  *woken = false;
  if (max == 0) return make_error(EC_EINVAL);
  if (p->events.size() < max + 1) p->events.resize(max + 1);
  const int top = top_set(p);
  int n;
  for (;;) {
    n = epoll_wait(top, p->events.data(), static_cast<int>(max + 1), timeout_ms);
    if (n >= 0) break;
    if (errno != EINTR) return last_error();
  }
  std::size_t k = 0;
  bool main_ready = false;
  for (int i = 0; i < n; ++i) {
    const epoll_event& ev = p->events[static_cast<std::size_t>(i)];
    if (top == p->ep) {
      if (!take_main(p, ev, out, max, &k, woken)) break;
      continue;
    }
    if (ev.data.ptr == &g_in_marker) {
      main_ready = true;
      continue;
    }
    // Gated input. Errors and hang-ups are the main set's to report (every
    // socket is there), so only EPOLLIN is taken from here.
    if ((ev.events & EPOLLIN) == 0) continue;
    if (k == max) break;
    out[k].data = ev.data.ptr;
    out[k].events = EC_POLL_IN;
    ++k;
  }
  if (main_ready) {
    // A socket ready both ways shows up twice (once per set): two events
    // for one data pointer, which callers take one after the other.
    if (p->main_events.size() < max + 1) p->main_events.resize(max + 1);
    int m;
    do {
      m = epoll_wait(p->ep, p->main_events.data(), static_cast<int>(max - k + 1), 0);
    } while (m < 0 && errno == EINTR);
    for (int i = 0; i < m; ++i)
      if (!take_main(p, p->main_events[static_cast<std::size_t>(i)], out, max, &k, woken)) break;
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
  int n = epoll_pwait2(top_set(p), &ev, 1, &ts, nullptr);
  if (n < 0) return errno == EINTR ? ec_error() : last_error();
  if (n == 0) return ec_error();
#endif
  return ec_poller_wait(p, out, max, 0, count, woken);
}
