/* echo_epoll.c — a minimal single-threaded epoll broadcast server, the C
 * baseline for echocast's benchmark (not part of the package).
 *
 * Line framing; each read's complete lines are appended to every client's
 * buffer (the sender included), and after each epoll_wait batch every client
 * with bytes gets one send() carrying the whole batch: the least a
 * single-threaded server does without adding latency. No limits, no replay, no
 * events: what is left is the floor a single thread on epoll can reach.
 * A client's unsent bytes wait in its own growing buffer (no limit) and go
 * out when the socket is writable again.
 *
 *   usage: echo_epoll [PORT]       (0 or nothing: any free port)
 *   prints "listening PORT" on stdout once it accepts; SIGINT/SIGTERM stop it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BYTES 65536
#define MAX_EVENTS 256

struct client {
  int fd;
  char *partial;
  size_t plen, pcap; /* incomplete line carried over */
  char *out;
  size_t olen, ocap; /* bytes waiting for EPOLLOUT */
  int index;         /* position in clients[] */
  int blocked;       /* waiting for EPOLLOUT */
};

static struct client **clients;
static int nclients, cap_clients;
static int ep;
/* Clients dropped during a batch of events are freed after it, since later
 * events of the batch may still point at them (fd is then -1). */
static struct client **dead;
static int ndead, cap_dead;

static void grow(char **buf, size_t *cap, size_t need) {
  if (need <= *cap) return;
  size_t n = *cap ? *cap : 4096;
  while (n < need) n *= 2;
  *buf = realloc(*buf, n);
  if (!*buf) {
    perror("realloc");
    exit(1);
  }
  *cap = n;
}

static void drop(struct client *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  struct client *last = clients[--nclients];
  clients[c->index] = last;
  last->index = c->index;
  if (ndead == cap_dead) {
    cap_dead = cap_dead ? cap_dead * 2 : 64;
    dead = realloc(dead, (size_t)cap_dead * sizeof *dead);
  }
  dead[ndead++] = c;
}

/* Appends data to c's buffer; it goes out at the end of the turn. */
static void deliver(struct client *c, const char *data, size_t len) {
  grow(&c->out, &c->ocap, c->olen + len);
  memcpy(c->out + c->olen, data, len);
  c->olen += len;
}

static int dirty; /* something was broadcast this turn */

static void broadcast(const char *data, size_t len) {
  for (int i = 0; i < nclients; i++) deliver(clients[i], data, len);
  dirty = 1;
}

/* Sends what c has; what the socket does not take waits for EPOLLOUT. */
static void flush(struct client *c) {
  ssize_t n = send(c->fd, c->out, c->olen, MSG_NOSIGNAL);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      drop(c);
      return;
    }
    n = 0;
  }
  memmove(c->out, c->out + n, c->olen - (size_t)n);
  c->olen -= (size_t)n;
  if (c->olen > 0 && !c->blocked) {
    c->blocked = 1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  } else if (c->olen == 0 && c->blocked) {
    c->blocked = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  }
}

static void on_readable(struct client *c, char *buf) {
  ssize_t n = recv(c->fd, buf, READ_BYTES, 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
    drop(c);
    return;
  }
  if (n < 0) return;
  char *nl = memrchr(buf, '\n', (size_t)n);
  size_t head = nl ? (size_t)(nl - buf) + 1 : 0;
  if (head > 0 && c->plen == 0) {
    broadcast(buf, head); /* the common case: whole lines, no copy */
  } else if (head > 0) {
    grow(&c->partial, &c->pcap, c->plen + head);
    memcpy(c->partial + c->plen, buf, head);
    size_t total = c->plen + head;
    c->plen = 0;
    broadcast(c->partial, total); /* c is only marked if dropped: safe */
  }
  if (c->fd >= 0 && (size_t)n > head) {
    grow(&c->partial, &c->pcap, c->plen + ((size_t)n - head));
    memcpy(c->partial + c->plen, buf + head, (size_t)n - head);
    c->plen += (size_t)n - head;
  }
}

static volatile sig_atomic_t stopping;
static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 511)) {
    perror("listen");
    return 1;
  }
  socklen_t al = sizeof addr;
  getsockname(lfd, (struct sockaddr *)&addr, &al);
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  printf("listening %d\n", ntohs(addr.sin_port));
  fflush(stdout);
  char *buf = malloc(READ_BYTES);
  struct epoll_event events[MAX_EVENTS];
  while (!stopping) {
    int n = epoll_wait(ep, events, MAX_EVENTS, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) {
        for (;;) {
          int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct client *c = calloc(1, sizeof *c);
          c->fd = fd;
          if (nclients == cap_clients) {
            cap_clients = cap_clients ? cap_clients * 2 : 64;
            clients = realloc(clients, (size_t)cap_clients * sizeof *clients);
          }
          c->index = nclients;
          clients[nclients++] = c;
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      struct client *c = events[i].data.ptr;
      if (c->fd >= 0 && (events[i].events & EPOLLOUT)) flush(c);
      if (c->fd >= 0 && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) on_readable(c, buf);
    }
    /* One send per client per turn carries everything the turn read. */
    if (dirty) {
      dirty = 0;
      for (int k = 0; k < nclients;) {
        struct client *c = clients[k];
        if (c->olen > 0 && !c->blocked) flush(c);
        if (c->fd >= 0) k++; /* a dropped client's slot now holds another */
      }
    }
    for (int k = 0; k < ndead; k++) {
      free(dead[k]->partial);
      free(dead[k]->out);
      free(dead[k]);
    }
    ndead = 0;
  }
  return 0;
}
