// common.cc — the platform code both OSes share, written once over the
// per-OS primitives of internal.h: error names and messages (from
// error_table.def), resolving and binding over getaddrinfo results, the
// listeners' and connects' address loops, send-all over iovecs, receives
// that report resets alike everywhere, and the thread trampoline.
#include <cstdio>
#include <cstring>
#include <new>

#include "bench.h"
#include "internal.h"
#include "testing.h"

namespace ec_internal {

const OsCode* find_row(const OsCode* rows, std::size_t count, int os) {
  for (std::size_t i = 0; i < count; ++i)
    if (rows[i].os == os) return &rows[i];
  return nullptr;
}

ec_error from_os(int code) {
  ec_error err;
  err.os_code = code;
  if (code == 0) return err;
  const OsCode* row = find_row(kOsCodes, kOsCodeCount, code);
  err.code = row ? row->code : EC_EUNKNOWN;
  return err;
}

ec_error make_error(ec_err code) {
  ec_error err;
  err.code = code;
  for (std::size_t i = 0; i < kOsCodeCount && err.os_code == 0; ++i)
    if (kOsCodes[i].code == code) err.os_code = kOsCodes[i].os;
  return err;
}

ec_error resolve(const char* host, int port, bool passive, addrinfo** list) {
  addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  char service[16];
  std::snprintf(service, sizeof service, "%d", port);
  *list = nullptr;
  int rc = getaddrinfo(host, service, &hints, list);
  return rc == 0 ? ec_error() : from_gai(rc);
}

void describe(const sockaddr_storage& ss, std::string* address, int* port, bool* ipv6,
              ec_peer_address* bytes) {
  char host[INET6_ADDRSTRLEN + 1] = {0};
  const void* raw;
  if (ss.ss_family == AF_INET6) {
    const sockaddr_in6* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    raw = &a->sin6_addr;
    *port = ntohs(a->sin6_port);
    if (bytes != nullptr) {
      bytes->family = 6;
      std::memcpy(bytes->bytes, &a->sin6_addr, 16);
    }
  } else {
    const sockaddr_in* a = reinterpret_cast<const sockaddr_in*>(&ss);
    raw = &a->sin_addr;
    *port = ntohs(a->sin_port);
    if (bytes != nullptr) {
      bytes->family = 4;
      std::memset(bytes->bytes, 0, 16);
      std::memcpy(bytes->bytes, &a->sin_addr, 4);
    }
  }
  // Some mingw headers take a non-const pointer here.
  inet_ntop(ss.ss_family, const_cast<void*>(raw), host, sizeof host);
  if (ipv6) *ipv6 = ss.ss_family == AF_INET6;
  *address = host;
}

ec_error listen_first(const char* host, int port, int backlog, ec_socket_t* out,
                      ec_bound_address* bound, const char** syscall) {
  *out = EC_INVALID_SOCKET;
  addrinfo* list = nullptr;
  ec_error err = resolve(host, port, true, &list);
  if (!err.ok()) {
    *syscall = "getaddrinfo";
    return err;
  }
  ec_error first_error;
  const char* first_syscall = "listen";
  ec_socket_t s = EC_INVALID_SOCKET;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    const char* step = "socket";
    ec_error e = open_socket(ai, &s);
    if (e.ok()) {
      prepare_listener(s, ai->ai_family);
      step = "bind";
      if (bind(s, ai->ai_addr, static_cast<socklen_t>(ai->ai_addrlen)) == 0) {
        step = "listen";
        if (listen(s, backlog) == 0) break;
      }
      e = last_error();
      ec_socket_close(s);
      s = EC_INVALID_SOCKET;
    }
    if (first_error.ok()) {
      first_error = e;
      first_syscall = step;
    }
  }
  freeaddrinfo(list);
  if (s == EC_INVALID_SOCKET) {
    *syscall = first_syscall;
    return first_error.ok() ? make_error(EC_EADDRNOTAVAIL) : first_error;
  }
  sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  std::memset(&ss, 0, sizeof ss);
  getsockname(s, reinterpret_cast<sockaddr*>(&ss), &sl);
  describe(ss, &bound->address, &bound->port, &bound->ipv6);
  *out = s;
  return ec_error();
}

std::size_t send_window(const ec_iovec* pieces, std::size_t count, const SendCursor& cur,
                        ec_iovec* window, std::size_t max) {
  std::size_t n = 0;
  for (std::size_t i = cur.index; i < count && n < max; ++i) {
    if (pieces[i].len == 0) continue;
    std::size_t skip = (i == cur.index) ? cur.offset : 0;
    window[n].base = static_cast<const char*>(pieces[i].base) + skip;
    window[n].len = pieces[i].len - skip;
    ++n;
  }
  return n;
}

void send_advance(const ec_iovec* pieces, std::size_t count, std::size_t sent, SendCursor* cur) {
  while (cur->index < count && sent > 0) {
    std::size_t rest = pieces[cur->index].len - cur->offset;
    if (sent >= rest) {
      sent -= rest;
      ++cur->index;
      cur->offset = 0;
    } else {
      cur->offset += sent;
      sent = 0;
    }
  }
  while (cur->index < count && pieces[cur->index].len == 0) ++cur->index;
}

ThreadStart* new_thread_start(ec_thread_fn fn, void* arg) {
  return new (std::nothrow) ThreadStart{fn, arg};
}

void run_thread_start(void* p) {
  ThreadStart start = *static_cast<ThreadStart*>(p);
  delete static_cast<ThreadStart*>(p);
  start.fn(start.arg);
}

int ceil_ms(std::int64_t timeout_us) {
  if (timeout_us < 0) return -1;
  std::int64_t ms = (timeout_us + 999) / 1000;
  return ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms);
}

namespace {

// A recv as platform.h promises it: an end of stream that was in fact a
// reset (Wine) becomes the error it is.
ec_error recv_checked(ec_socket_t s, void* buf, std::size_t len, std::size_t* received) {
  ec_error err = recv_some(s, buf, len, received);
  if (err.ok() && *received == 0) return probe_gone(s);
  return err;
}

}  // namespace
}  // namespace ec_internal

using namespace ec_internal;

// ---- Errors -----------------------------------------------------------------

const char* ec_err_name(ec_err code) {
#define EC_ERR_NAME(name, message) \
  case EC_##name:                  \
    return #name;
  switch (code) {
    case EC_OK:
      return "OK";
      EC_ERROR_TABLE(EC_ERR_NAME, EC_ERROR_IGNORE, EC_ERROR_IGNORE, EC_ERROR_IGNORE)
    case EC_EUNKNOWN:
      return "UNKNOWN";
  }
#undef EC_ERR_NAME
  return "UNKNOWN";
}

const char* ec_err_message(ec_err code) {
#define EC_ERR_MESSAGE(name, message) \
  case EC_##name:                     \
    return message;
  switch (code) {
    case EC_OK:
      return "success";
      EC_ERROR_TABLE(EC_ERR_MESSAGE, EC_ERROR_IGNORE, EC_ERROR_IGNORE, EC_ERROR_IGNORE)
    case EC_EUNKNOWN:
      return nullptr;
  }
#undef EC_ERR_MESSAGE
  return nullptr;
}

// ---- Listening ---------------------------------------------------------------

ec_error ec_listen_nonblocking(const char* host, int port, int backlog, ec_socket_t* out,
                               ec_bound_address* bound, const char** syscall) {
  ec_error err = listen_first(host, port, backlog, out, bound, syscall);
  if (err.ok()) set_nonblocking(*out, true);
  return err;
}

ec_error ec_socket_try_accept(ec_socket_t listener, ec_socket_t* out, std::string* peer_address,
                              int* peer_port, ec_peer_address* peer_bytes) {
  return accept_socket(listener, true, out, peer_address, peer_port, peer_bytes);
}

// ---- Sockets ------------------------------------------------------------------

ec_error ec_socket_recv(ec_socket_t s, void* buf, std::size_t len, std::size_t* received) {
  return recv_checked(s, buf, len, received);
}

ec_error ec_socket_try_recv(ec_socket_t s, void* buf, std::size_t len, std::size_t* received) {
  return recv_checked(s, buf, len, received);
}

ec_error ec_socket_send_all(ec_socket_t s, const ec_iovec* pieces, std::size_t count) {
  ec_iovec window[EC_MAX_IOV];
  SendCursor cur;
  for (;;) {
    std::size_t n = send_window(pieces, count, cur, window, EC_MAX_IOV);
    if (n == 0) return ec_error();
    std::size_t sent = 0;
    ec_error err = send_pieces(s, window, n, &sent);
    if (!err.ok()) return err;
    send_advance(pieces, count, sent, &cur);
  }
}

ec_error ec_socket_try_send(ec_socket_t s, const ec_iovec* pieces, std::size_t count,
                            std::size_t* sent) {
  ec_iovec window[EC_MAX_IOV];
  *sent = 0;
  std::size_t n = send_window(pieces, count, SendCursor(), window, EC_MAX_IOV);
  if (n == 0) return ec_error();
  return send_pieces(s, window, n, sent);
}

// ---- Connecting (bench.h, testing.h) ------------------------------------------

ec_error ec_connect(const char* host, int port, ec_socket_t* out) {
  addrinfo* list = nullptr;
  ec_error err = resolve(host, port, false, &list);
  if (!err.ok()) return err;
  err = make_error(EC_ECONNREFUSED);
  ec_socket_t s = EC_INVALID_SOCKET;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    err = open_socket(ai, &s);
    if (!err.ok()) continue;
    err = connect_to(s, ai, false, nullptr);
    if (err.ok()) break;
    ec_socket_close(s);
    s = EC_INVALID_SOCKET;
  }
  freeaddrinfo(list);
  if (s == EC_INVALID_SOCKET) return err;
  set_nodelay(s);
  *out = s;
  return ec_error();
}

ec_error ec_connect_start(const char* host, int port, ec_socket_t* out, bool* pending,
                          const char** syscall) {
  *out = EC_INVALID_SOCKET;
  *pending = false;
  addrinfo* list = nullptr;
  *syscall = "getaddrinfo";
  ec_error err = resolve(host, port, false, &list);
  if (!err.ok()) return err;
  *syscall = "socket";
  err = make_error(EC_EAFNOSUPPORT);
  ec_socket_t s = EC_INVALID_SOCKET;
  addrinfo* ai = list;
  for (; ai != nullptr; ai = ai->ai_next) {
    err = open_socket(ai, &s);
    if (err.ok()) break;
  }
  if (s == EC_INVALID_SOCKET) {
    freeaddrinfo(list);
    return err;
  }
  set_nonblocking(s, true);
  set_nodelay(s);
  *syscall = "connect";
  err = connect_to(s, ai, true, pending);
  freeaddrinfo(list);
  if (!err.ok()) {
    ec_socket_close(s);
    return err;
  }
  *out = s;
  return ec_error();
}

// ---- Threads --------------------------------------------------------------------

// ec_thread_create() is per OS; it hands the function over with
// new_thread_start() / run_thread_start() above.
