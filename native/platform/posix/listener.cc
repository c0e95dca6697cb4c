// listener.cc (POSIX) — the blocking listener: a listening socket and a
// self-pipe. The accepting thread sleeps in poll() on both, because close()
// on the listening socket does not reliably wake a thread blocked in
// accept() (Linux leaves it blocked); one byte written to the pipe does.
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <new>

#include "posix.h"

using namespace ec_internal;

struct ec_listener {
  int fd = -1;
  int wake_r = -1;
  int wake_w = -1;
};

ec_error ec_listen(const char* host, int port, int backlog, ec_listener** out,
                   ec_bound_address* bound, const char** syscall) {
  *out = nullptr;
  int fd = -1;
  ec_error err = listen_first(host, port, backlog, &fd, bound, syscall);
  if (!err.ok()) return err;
  int pipefd[2];
  err = make_wake_pipe(pipefd);
  if (!err.ok()) {
    close(fd);
    *syscall = "pipe";
    return err;
  }
  // Non-blocking, so that a connection that goes away between poll() and
  // accept() sends the thread back to sleep instead of blocking it.
  set_fd_nonblocking(fd, true);
  ec_listener* l = new (std::nothrow) ec_listener;
  if (l == nullptr) {
    close(fd);
    close(pipefd[0]);
    close(pipefd[1]);
    *syscall = "listen";
    return make_error(EC_ENOMEM);
  }
  l->fd = fd;
  l->wake_r = pipefd[0];
  l->wake_w = pipefd[1];
  *out = l;
  return ec_error();
}

ec_error ec_listener_accept(ec_listener* l, ec_socket_t* out, std::string* peer_address,
                            int* peer_port, ec_peer_address* peer_bytes) {
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
    ec_error err = accept_socket(l->fd, false, out, peer_address, peer_port, peer_bytes);
    // The connection went away between poll and accept: wait again.
    if (err.code == EC_EAGAIN) continue;
    return err;
  }
}

void ec_listener_wake(ec_listener* l) { poke_wake_pipe(l->wake_w); }

void ec_listener_close(ec_listener* l) {
  if (l == nullptr) return;
  close(l->fd);
  close(l->wake_r);
  close(l->wake_w);
  delete l;
}
