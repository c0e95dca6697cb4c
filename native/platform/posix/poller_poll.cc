// poller_poll.cc (POSIX systems without epoll) — the primitives under
// poller_dense.cc: poll() (ppoll on Linux, where this backend is built for
// testing, for waits under a millisecond) and a self-pipe as the wake-up
// channel.
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "posix.h"

namespace ec_internal {

short dense_events(unsigned interest) {
  short e = 0;
  if (interest & EC_POLL_IN) e |= POLLIN;
  if (interest & EC_POLL_OUT) e |= POLLOUT;
  return e;
}

// POLLHUP from poll() means what EC_POLL_HUP promises, as epoll's does.
unsigned dense_ready(const pollfd& f, unsigned, bool*) {
  unsigned e = 0;
  if (f.revents & POLLIN) e |= EC_POLL_IN;
  if (f.revents & POLLOUT) e |= EC_POLL_OUT;
  if (f.revents & (POLLERR | POLLNVAL)) e |= EC_POLL_ERR;
  if (f.revents & POLLHUP) e |= EC_POLL_HUP;
  return e;
}

int dense_poll(pollfd* fds, std::size_t n, std::int64_t timeout_us, ec_error* err) {
  int r;
#if defined(__linux__)
  if (timeout_us >= 0 && timeout_us % 1000 != 0) {
    timespec ts = timespec_from_us(timeout_us);
    r = ppoll(fds, static_cast<nfds_t>(n), &ts, nullptr);
  } else
#endif
  {
    r = poll(fds, static_cast<nfds_t>(n), ceil_ms(timeout_us));
  }
  if (r < 0) *err = last_error();
  return r;
}

bool dense_sub_ms() {
#if defined(__linux__)
  return true;
#else
  return false;
#endif
}

ec_error wake_open(ec_socket_t* r, ec_socket_t* w) {
  int fds[2];
  ec_error err = make_wake_pipe(fds);
  if (!err.ok()) return err;
  *r = fds[0];
  *w = fds[1];
  return ec_error();
}

void wake_close(ec_socket_t r, ec_socket_t w) {
  close(r);
  close(w);
}

void wake_poke(ec_socket_t w) { poke_wake_pipe(w); }

void wake_drain(ec_socket_t r) { drain_wake_pipe(r); }

}  // namespace ec_internal

const char* ec_poller_backend() { return "poll"; }
