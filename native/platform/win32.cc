// win32.cc — platform.h on Windows: Winsock2 (WSAStartup once per process,
// WSACleanup after the last server), _beginthreadex threads with reserved
// small stacks, CRITICAL_SECTION and CONDITION_VARIABLE.
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0601  // Windows 7: inet_ntop, CancelIoEx, condvars.
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include "platform.h"

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <process.h>

#include <atomic>
#include <climits>
#include <cstdio>
#include <cstring>
#include <new>
#include <unordered_map>
#include <vector>

static_assert(sizeof(CRITICAL_SECTION) <= sizeof(ec_mutex_t::storage),
              "ec_mutex_t too small for CRITICAL_SECTION");
static_assert(sizeof(CONDITION_VARIABLE) <= sizeof(ec_cond_t::storage),
              "ec_cond_t too small for CONDITION_VARIABLE");
static_assert(sizeof(HANDLE) <= sizeof(std::uintptr_t),
              "HANDLE does not fit in ec_thread_t");
static_assert(sizeof(SOCKET) == sizeof(ec_socket_t), "SOCKET size");

namespace {

struct WsaName {
  int code;
  ec_err err;
  const char* name;
};

// Winsock codes echocast can meet, with what they mean for JS and their
// Windows names (for messages).
const WsaName kWsaNames[] = {
    {WSAEADDRINUSE, EC_EADDRINUSE, "WSAEADDRINUSE"},
    {WSAEADDRNOTAVAIL, EC_EADDRNOTAVAIL, "WSAEADDRNOTAVAIL"},
    {WSAEACCES, EC_EACCES, "WSAEACCES"},
    {WSAEAFNOSUPPORT, EC_EAFNOSUPPORT, "WSAEAFNOSUPPORT"},
    {WSAEWOULDBLOCK, EC_EAGAIN, "WSAEWOULDBLOCK"},
    {WSAEBADF, EC_EBADF, "WSAEBADF"},
    {WSAENOTSOCK, EC_ENOTSOCK, "WSAENOTSOCK"},
    {WSAECONNABORTED, EC_ECONNABORTED, "WSAECONNABORTED"},
    {WSAECONNREFUSED, EC_ECONNREFUSED, "WSAECONNREFUSED"},
    {WSAECONNRESET, EC_ECONNRESET, "WSAECONNRESET"},
    {WSAEHOSTUNREACH, EC_EHOSTUNREACH, "WSAEHOSTUNREACH"},
    {WSAEINTR, EC_ECANCELED, "WSAEINTR"},
    {WSAEINVAL, EC_EINVAL, "WSAEINVAL"},
    {WSAEMFILE, EC_EMFILE, "WSAEMFILE"},
    {WSAENETDOWN, EC_ENETDOWN, "WSAENETDOWN"},
    {WSAENETRESET, EC_ECONNRESET, "WSAENETRESET"},
    {WSAENETUNREACH, EC_ENETUNREACH, "WSAENETUNREACH"},
    {WSAENOBUFS, EC_ENOBUFS, "WSAENOBUFS"},
    {WSAENOTCONN, EC_ENOTCONN, "WSAENOTCONN"},
    {WSAESHUTDOWN, EC_ESHUTDOWN, "WSAESHUTDOWN"},
    {WSAETIMEDOUT, EC_ETIMEDOUT, "WSAETIMEDOUT"},
    {WSAHOST_NOT_FOUND, EC_ENOTFOUND, "WSAHOST_NOT_FOUND"},
    {WSANO_DATA, EC_ENOTFOUND, "WSANO_DATA"},
    {WSANO_RECOVERY, EC_ENOTFOUND, "WSANO_RECOVERY"},
    {WSATRY_AGAIN, EC_EAI_AGAIN, "WSATRY_AGAIN"},
    {WSA_NOT_ENOUGH_MEMORY, EC_ENOMEM, "WSA_NOT_ENOUGH_MEMORY"},
    {WSANOTINITIALISED, EC_EINVAL, "WSANOTINITIALISED"},
    {WSASYSNOTREADY, EC_ENETDOWN, "WSASYSNOTREADY"},
    {WSAVERNOTSUPPORTED, EC_EINVAL, "WSAVERNOTSUPPORTED"},
    {ERROR_OPERATION_ABORTED, EC_ECANCELED, "ERROR_OPERATION_ABORTED"},
    {ERROR_NOT_ENOUGH_MEMORY, EC_ENOMEM, "ERROR_NOT_ENOUGH_MEMORY"},
    {ERROR_ACCESS_DENIED, EC_EACCES, "ERROR_ACCESS_DENIED"},
};

const WsaName* find_wsa(int code) {
  for (const WsaName& n : kWsaNames)
    if (n.code == code) return &n;
  return nullptr;
}

ec_error from_wsa(int code) {
  ec_error err;
  const WsaName* n = find_wsa(code);
  err.code = n ? n->err : EC_EUNKNOWN;
  err.os_code = code;
  if (code == 0) err.code = EC_OK;
  return err;
}

ec_error last_wsa() { return from_wsa(WSAGetLastError()); }

// Reference count of ec_net_acquire(); SRWLOCK needs no initialisation call.
SRWLOCK g_net_lock = SRWLOCK_INIT;
int g_net_refs = 0;

void describe(const sockaddr_storage& ss, std::string* address, int* port,
              bool* ipv6) {
  char host[INET6_ADDRSTRLEN + 1] = {0};
  if (ss.ss_family == AF_INET6) {
    const sockaddr_in6* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, const_cast<IN6_ADDR*>(&a->sin6_addr), host, sizeof host);
    *port = ntohs(a->sin6_port);
    if (ipv6) *ipv6 = true;
  } else {
    const sockaddr_in* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, const_cast<IN_ADDR*>(&a->sin_addr), host, sizeof host);
    *port = ntohs(a->sin_port);
    if (ipv6) *ipv6 = false;
  }
  *address = host;
}

void no_inherit(SOCKET s) {
  SetHandleInformation(reinterpret_cast<HANDLE>(s), HANDLE_FLAG_INHERIT, 0);
}

// How long the accepting thread sleeps before it tries accept() again even
// without an FD_ACCEPT signal (see ec_listener_accept).
constexpr DWORD kAcceptRecheckMs = 100;

}  // namespace

// The listener: the socket is tied to accept_event with WSAEventSelect
// (FD_ACCEPT), and wake_event is set by ec_listener_wake(); the accepting
// thread sleeps in WaitForMultipleObjects on both (at most
// kAcceptRecheckMs), so it can be woken without closing the socket under it.
struct ec_listener {
  SOCKET sock = INVALID_SOCKET;
  WSAEVENT accept_event = WSA_INVALID_EVENT;
  HANDLE wake_event = nullptr;
};

const char* ec_platform_name() { return "win32"; }

std::string ec_error_message(const ec_error& err) {
  // libuv's wording where the code is known, the system's text otherwise,
  // and always the Winsock name, e.g. "address already in use (WSAEADDRINUSE)".
  std::string message;
  const char* fixed = ec_err_message(err.code);
  if (fixed != nullptr) {
    message = fixed;
  } else {
    char text[512] = {0};
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
                             nullptr, static_cast<DWORD>(err.os_code),
                             MAKELANGID(LANG_ENGLISH, SUBLANG_DEFAULT), text,
                             sizeof text, nullptr);
    while (n > 0 && (text[n - 1] == '\r' || text[n - 1] == '\n' ||
                     text[n - 1] == ' ' || text[n - 1] == '.')) {
      text[--n] = '\0';
    }
    message = n > 0 ? std::string(text) : std::string("unknown error");
  }
  if (err.os_code == 0) return message;
  const WsaName* name = find_wsa(err.os_code);
  char tail[64];
  if (name != nullptr) {
    std::snprintf(tail, sizeof tail, " (%s)", name->name);
  } else {
    std::snprintf(tail, sizeof tail, " (Windows error %d)", err.os_code);
  }
  return message + tail;
}

ec_error ec_net_acquire() {
  AcquireSRWLockExclusive(&g_net_lock);
  ec_error err;
  if (g_net_refs == 0) {
    WSADATA data;
    int rc = WSAStartup(MAKEWORD(2, 2), &data);
    if (rc != 0) err = from_wsa(rc);
  }
  if (err.ok()) ++g_net_refs;
  ReleaseSRWLockExclusive(&g_net_lock);
  return err;
}

void ec_net_release() {
  AcquireSRWLockExclusive(&g_net_lock);
  if (g_net_refs > 0 && --g_net_refs == 0) WSACleanup();
  ReleaseSRWLockExclusive(&g_net_lock);
}

ec_error ec_listen(const char* host, int port, int backlog, ec_listener** out,
                   ec_bound_address* bound, const char** syscall) {
  *out = nullptr;
  addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  char service[16];
  std::snprintf(service, sizeof service, "%d", port);
  addrinfo* list = nullptr;
  int rc = getaddrinfo(host, service, &hints, &list);
  if (rc != 0) {
    *syscall = "getaddrinfo";
    return from_wsa(rc);
  }
  ec_error first_error;
  const char* first_syscall = "listen";
  SOCKET s = INVALID_SOCKET;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    const char* step = "socket";
    s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (s != INVALID_SOCKET) {
      no_inherit(s);
      // Windows lets another socket steal a port bound with SO_REUSEADDR;
      // SO_EXCLUSIVEADDRUSE gives the POSIX meaning of "in use".
      BOOL one = TRUE;
      setsockopt(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE,
                 reinterpret_cast<const char*>(&one), sizeof one);
      if (ai->ai_family == AF_INET6) {
        DWORD zero = 0;
        setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY,
                   reinterpret_cast<const char*>(&zero), sizeof zero);
      }
      step = "bind";
      if (bind(s, ai->ai_addr, static_cast<int>(ai->ai_addrlen)) == 0) {
        step = "listen";
        if (listen(s, backlog) == 0) break;
      }
    }
    if (first_error.ok()) {
      first_error = last_wsa();
      first_syscall = step;
    }
    if (s != INVALID_SOCKET) closesocket(s);
    s = INVALID_SOCKET;
  }
  freeaddrinfo(list);
  if (s == INVALID_SOCKET) {
    *syscall = first_syscall;
    if (first_error.ok()) first_error = from_wsa(WSAEADDRNOTAVAIL);
    return first_error;
  }
  ec_listener* l = new (std::nothrow) ec_listener;
  if (l == nullptr) {
    closesocket(s);
    *syscall = "listen";
    return from_wsa(WSA_NOT_ENOUGH_MEMORY);
  }
  l->sock = s;
  l->accept_event = WSACreateEvent();
  l->wake_event = CreateEventW(nullptr, TRUE, FALSE, nullptr);  // Manual reset.
  if (l->accept_event == WSA_INVALID_EVENT || l->wake_event == nullptr ||
      WSAEventSelect(s, l->accept_event, FD_ACCEPT) != 0) {
    ec_error err = last_wsa();
    if (err.ok()) err = from_wsa(static_cast<int>(GetLastError()));
    ec_listener_close(l);
    *syscall = "listen";
    return err;
  }
  sockaddr_storage ss;
  int sl = sizeof ss;
  std::memset(&ss, 0, sizeof ss);
  getsockname(s, reinterpret_cast<sockaddr*>(&ss), &sl);
  describe(ss, &bound->address, &bound->port, &bound->ipv6);
  *out = l;
  return ec_error();
}

ec_error ec_listener_accept(ec_listener* l, ec_socket_t* out,
                            std::string* peer_address, int* peer_port) {
  for (;;) {
    if (WaitForSingleObject(l->wake_event, 0) == WAIT_OBJECT_0) {
      ec_error err;
      err.code = EC_ECANCELED;
      return err;
    }
    sockaddr_storage ss;
    int sl = sizeof ss;
    std::memset(&ss, 0, sizeof ss);
    SOCKET s = accept(l->sock, reinterpret_cast<sockaddr*>(&ss), &sl);
    if (s == INVALID_SOCKET) {
      int e = WSAGetLastError();
      if (e != WSAEWOULDBLOCK) return from_wsa(e);
      // Nothing pending: sleep until a connection or a wake-up. Never for
      // long: under Wine an FD_ACCEPT that lands between the failed accept()
      // and this wait is sometimes not signalled, and the thread slept with
      // connections queued (seen in test:windows: a newcomer never served,
      // server-full never sent). A lost signal now costs at most 100 ms.
      HANDLE handles[2] = {l->wake_event, l->accept_event};
      DWORD w = WaitForMultipleObjects(2, handles, FALSE, kAcceptRecheckMs);
      if (w == WAIT_OBJECT_0 + 1) {
        WSANETWORKEVENTS ne;
        WSAEnumNetworkEvents(l->sock, l->accept_event, &ne);  // Resets it.
      } else if (w == WAIT_FAILED) {
        return from_wsa(static_cast<int>(GetLastError()));
      }
      continue;
    }
    no_inherit(s);
    // An accepted socket inherits the listener's event selection and
    // non-blocking mode; the engine wants a plain blocking socket.
    WSAEventSelect(s, nullptr, 0);
    u_long blocking = 0;
    ioctlsocket(s, FIONBIO, &blocking);
    BOOL one = TRUE;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof one);
    describe(ss, peer_address, peer_port, nullptr);
    *out = static_cast<ec_socket_t>(s);
    return ec_error();
  }
}

void ec_listener_wake(ec_listener* l) { SetEvent(l->wake_event); }

void ec_listener_close(ec_listener* l) {
  if (l == nullptr) return;
  if (l->sock != INVALID_SOCKET) closesocket(l->sock);
  if (l->accept_event != WSA_INVALID_EVENT) WSACloseEvent(l->accept_event);
  if (l->wake_event != nullptr) CloseHandle(l->wake_event);
  delete l;
}

ec_error ec_connect(const char* host, int port, ec_socket_t* out) {
  addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV;
  char service[16];
  std::snprintf(service, sizeof service, "%d", port);
  addrinfo* list = nullptr;
  int rc = getaddrinfo(host, service, &hints, &list);
  if (rc != 0) return from_wsa(rc);
  ec_error err = from_wsa(WSAECONNREFUSED);
  SOCKET s = INVALID_SOCKET;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (s == INVALID_SOCKET) {
      err = last_wsa();
      continue;
    }
    if (connect(s, ai->ai_addr, static_cast<int>(ai->ai_addrlen)) == 0) break;
    err = last_wsa();
    closesocket(s);
    s = INVALID_SOCKET;
  }
  freeaddrinfo(list);
  if (s == INVALID_SOCKET) return err;
  no_inherit(s);
  BOOL one = TRUE;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof one);
  *out = static_cast<ec_socket_t>(s);
  return ec_error();
}

ec_error ec_socket_recv(ec_socket_t s, void* buf, std::size_t len,
                        std::size_t* received) {
  int want = len > static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(len);
  int n = recv(static_cast<SOCKET>(s), static_cast<char*>(buf), want, 0);
  if (n == SOCKET_ERROR) {
    *received = 0;
    return last_wsa();
  }
  *received = static_cast<std::size_t>(n);
  return ec_error();
}

ec_error ec_socket_send_all(ec_socket_t s, const ec_iovec* pieces,
                            std::size_t count) {
  constexpr std::size_t kMax = 64;
  WSABUF bufs[kMax];
  std::size_t index = 0;
  std::size_t offset = 0;
  while (index < count) {
    DWORD n = 0;
    for (std::size_t i = index; i < count && n < kMax; ++i) {
      if (pieces[i].len == 0) continue;
      std::size_t skip = (i == index) ? offset : 0;
      std::size_t rest = pieces[i].len - skip;
      bufs[n].buf = const_cast<char*>(static_cast<const char*>(pieces[i].base) + skip);
      bufs[n].len = rest > 0x7fffffffu ? 0x7fffffffu : static_cast<ULONG>(rest);
      ++n;
      if (rest > 0x7fffffffu) break;
    }
    if (n == 0) break;
    DWORD sent = 0;
    if (WSASend(static_cast<SOCKET>(s), bufs, n, &sent, 0, nullptr, nullptr) != 0)
      return last_wsa();
    std::size_t left = sent;
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

void ec_socket_interrupt(ec_socket_t s) {
  // shutdown stops the traffic but does not complete a pending recv;
  // CancelIoEx cancels a recv or send blocked in another thread (blocking
  // Winsock calls are overlapped I/O underneath), resetting the connection.
  shutdown(static_cast<SOCKET>(s), SD_BOTH);
  CancelIoEx(reinterpret_cast<HANDLE>(static_cast<SOCKET>(s)), nullptr);
}

void ec_socket_end(ec_socket_t s) { shutdown(static_cast<SOCKET>(s), SD_SEND); }

void ec_socket_close(ec_socket_t s) { closesocket(static_cast<SOCKET>(s)); }

// ---------------------------------------------------------------------------
// Non-blocking sockets.
// ---------------------------------------------------------------------------

ec_socket_t ec_listener_socket(ec_listener* l) { return static_cast<ec_socket_t>(l->sock); }

ec_error ec_listener_try_accept(ec_listener* l, ec_socket_t* out,
                                std::string* peer_address, int* peer_port) {
  sockaddr_storage ss;
  int sl = sizeof ss;
  std::memset(&ss, 0, sizeof ss);
  SOCKET s = accept(l->sock, reinterpret_cast<sockaddr*>(&ss), &sl);
  if (s == INVALID_SOCKET) return last_wsa();  // WSAEWOULDBLOCK -> EC_EAGAIN.
  no_inherit(s);
  // The accepted socket inherits the listener's event selection; drop it
  // (WSAPoll does the watching) and keep the socket non-blocking.
  WSAEventSelect(s, nullptr, 0);
  u_long nonblocking = 1;
  ioctlsocket(s, FIONBIO, &nonblocking);
  BOOL one = TRUE;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof one);
  describe(ss, peer_address, peer_port, nullptr);
  *out = static_cast<ec_socket_t>(s);
  return ec_error();
}

ec_error ec_socket_try_recv(ec_socket_t s, void* buf, std::size_t len,
                            std::size_t* received) {
  int want = len > static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(len);
  int n = recv(static_cast<SOCKET>(s), static_cast<char*>(buf), want, 0);
  if (n == SOCKET_ERROR) {
    *received = 0;
    return last_wsa();
  }
  *received = static_cast<std::size_t>(n);
  return ec_error();
}

ec_error ec_socket_try_send(ec_socket_t s, const ec_iovec* pieces,
                            std::size_t count, std::size_t* sent) {
  WSABUF bufs[EC_MAX_IOV];
  DWORD n = 0;
  for (std::size_t i = 0; i < count && n < EC_MAX_IOV; ++i) {
    if (pieces[i].len == 0) continue;
    std::size_t len = pieces[i].len;
    bufs[n].buf = const_cast<char*>(static_cast<const char*>(pieces[i].base));
    bufs[n].len = len > 0x7fffffffu ? 0x7fffffffu : static_cast<ULONG>(len);
    ++n;
    if (len > 0x7fffffffu) break;
  }
  *sent = 0;
  if (n == 0) return ec_error();
  DWORD done = 0;
  if (WSASend(static_cast<SOCKET>(s), bufs, n, &done, 0, nullptr, nullptr) != 0)
    return last_wsa();
  *sent = done;
  return ec_error();
}

void ec_socket_shutdown_send(ec_socket_t s) { shutdown(static_cast<SOCKET>(s), SD_SEND); }

void ec_socket_reset(ec_socket_t s) {
  LINGER l;
  l.l_onoff = 1;
  l.l_linger = 0;
  setsockopt(static_cast<SOCKET>(s), SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&l),
             sizeof l);
  closesocket(static_cast<SOCKET>(s));
}

bool ec_socket_gone(ec_socket_t s) {
  char none = 0;
  if (send(static_cast<SOCKET>(s), &none, 0, 0) != SOCKET_ERROR) return false;
  return WSAGetLastError() != WSAEWOULDBLOCK;
}

// ---------------------------------------------------------------------------
// The poller: WSAPoll over a dense array (removal swaps the last entry in),
// with one end of a loopback TCP socket pair at index 0 as the wake-up
// channel (WSAPoll watches sockets only, so no pipe or event will do).
// ---------------------------------------------------------------------------

struct ec_poller {
  SOCKET wake_r = INVALID_SOCKET;
  SOCKET wake_w = INVALID_SOCKET;
  std::atomic<bool> wake_pending{false};
  std::vector<WSAPOLLFD> fds;
  std::vector<void*> data;
  std::unordered_map<SOCKET, std::size_t> index;
  std::size_t rotate = 0;
};

namespace {
SHORT to_wsapoll(unsigned events) {
  SHORT e = 0;
  if (events & EC_POLL_IN) e |= POLLRDNORM;
  if (events & EC_POLL_OUT) e |= POLLWRNORM;
  return e;
}

// A connected pair of loopback sockets: listen on 127.0.0.1:0, connect,
// accept, close the listener.
ec_error socket_pair(SOCKET* a, SOCKET* b) {
  *a = *b = INVALID_SOCKET;
  SOCKET l = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  if (l == INVALID_SOCKET) return last_wsa();
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
    err = last_wsa();
  } else {
    c = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (c == INVALID_SOCKET || connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      err = last_wsa();
    } else {
      d = accept(l, nullptr, nullptr);
      if (d == INVALID_SOCKET) err = last_wsa();
    }
  }
  closesocket(l);
  if (!err.ok()) {
    if (c != INVALID_SOCKET) closesocket(c);
    return err;
  }
  for (SOCKET x : {c, d}) {
    no_inherit(x);
    u_long nonblocking = 1;
    ioctlsocket(x, FIONBIO, &nonblocking);
    BOOL one = TRUE;
    setsockopt(x, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof one);
  }
  *a = d;
  *b = c;
  return ec_error();
}
}  // namespace

const char* ec_poller_backend() { return "WSAPoll"; }

ec_error ec_poller_create(ec_poller** out) {
  *out = nullptr;
  ec_poller* p = new (std::nothrow) ec_poller;
  if (p == nullptr) return from_wsa(WSA_NOT_ENOUGH_MEMORY);
  ec_error err = socket_pair(&p->wake_r, &p->wake_w);
  if (!err.ok()) {
    delete p;
    return err;
  }
  WSAPOLLFD w;
  w.fd = p->wake_r;
  w.events = POLLRDNORM;
  w.revents = 0;
  p->fds.push_back(w);
  p->data.push_back(nullptr);
  *out = p;
  return ec_error();
}

void ec_poller_destroy(ec_poller* p) {
  if (p == nullptr) return;
  closesocket(p->wake_r);
  closesocket(p->wake_w);
  delete p;
}

ec_error ec_poller_add(ec_poller* p, ec_socket_t s, unsigned events, void* data) {
  SOCKET sock = static_cast<SOCKET>(s);
  if (p->index.count(sock) != 0) return from_wsa(WSAEINVAL);
  WSAPOLLFD f;
  f.fd = sock;
  f.events = to_wsapoll(events);
  f.revents = 0;
  p->index[sock] = p->fds.size();
  p->fds.push_back(f);
  p->data.push_back(data);
  return ec_error();
}

ec_error ec_poller_modify(ec_poller* p, ec_socket_t s, unsigned events, void* data) {
  auto it = p->index.find(static_cast<SOCKET>(s));
  if (it == p->index.end()) return from_wsa(WSAENOTSOCK);
  p->fds[it->second].events = to_wsapoll(events);
  p->data[it->second] = data;
  return ec_error();
}

void ec_poller_remove(ec_poller* p, ec_socket_t s) {
  auto it = p->index.find(static_cast<SOCKET>(s));
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
  if (max == 0) return from_wsa(WSAEINVAL);
  int n = WSAPoll(p->fds.data(), static_cast<ULONG>(p->fds.size()), timeout_ms);
  if (n == SOCKET_ERROR) {
    int e = WSAGetLastError();
    if (e == WSAEINTR) return ec_error();
    return from_wsa(e);
  }
  if (n == 0) return ec_error();
  if (p->fds[0].revents != 0) {
    char buf[64];
    while (recv(p->wake_r, buf, sizeof buf, 0) > 0) {
    }
    p->wake_pending.store(false, std::memory_order_release);
    *woken = true;
  }
  std::size_t total = p->fds.size() - 1;
  std::size_t k = 0;
  if (p->rotate >= total) p->rotate = 0;
  for (std::size_t j = 0; j < total && k < max; ++j) {
    std::size_t i = 1 + (p->rotate + j) % total;
    SHORT r = p->fds[i].revents;
    if (r == 0) continue;
    unsigned e = 0;
    if (r & (POLLRDNORM | POLLRDBAND)) e |= EC_POLL_IN;
    if (r & POLLWRNORM) e |= EC_POLL_OUT;
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
  send(p->wake_w, &byte, 1, 0);
}

namespace {
struct ThreadStart {
  ec_thread_fn fn;
  void* arg;
};

unsigned __stdcall thread_main(void* p) {
  ThreadStart start = *static_cast<ThreadStart*>(p);
  delete static_cast<ThreadStart*>(p);
  start.fn(start.arg);
  return 0;
}
}  // namespace

ec_error ec_thread_create(ec_thread_t* t, ec_thread_fn fn, void* arg,
                          std::size_t stack_bytes) {
  ThreadStart* start = new (std::nothrow) ThreadStart{fn, arg};
  if (start == nullptr) return from_wsa(ERROR_NOT_ENOUGH_MEMORY);
  // _beginthreadex (not CreateThread) so the C runtime is set up for the
  // thread; the stack size is a reservation, committed as it is used.
  std::uintptr_t h = _beginthreadex(nullptr, static_cast<unsigned>(stack_bytes),
                                    thread_main, start,
                                    STACK_SIZE_PARAM_IS_A_RESERVATION, nullptr);
  if (h == 0) {
    delete start;
    return from_wsa(static_cast<int>(GetLastError()));
  }
  t->handle = h;
  return ec_error();
}

void ec_thread_join(ec_thread_t* t) {
  HANDLE h = reinterpret_cast<HANDLE>(t->handle);
  WaitForSingleObject(h, INFINITE);
  CloseHandle(h);
  t->handle = 0;
}

static CRITICAL_SECTION* native(ec_mutex_t* m) {
  return reinterpret_cast<CRITICAL_SECTION*>(m->storage);
}
static CONDITION_VARIABLE* native(ec_cond_t* c) {
  return reinterpret_cast<CONDITION_VARIABLE*>(c->storage);
}

void ec_mutex_init(ec_mutex_t* m) { InitializeCriticalSection(native(m)); }
void ec_mutex_destroy(ec_mutex_t* m) { DeleteCriticalSection(native(m)); }
void ec_mutex_lock(ec_mutex_t* m) { EnterCriticalSection(native(m)); }
void ec_mutex_unlock(ec_mutex_t* m) { LeaveCriticalSection(native(m)); }

void ec_cond_init(ec_cond_t* c) { InitializeConditionVariable(native(c)); }
void ec_cond_destroy(ec_cond_t*) {}  // CONDITION_VARIABLE needs no cleanup.
void ec_cond_wait(ec_cond_t* c, ec_mutex_t* m) {
  SleepConditionVariableCS(native(c), native(m), INFINITE);
}
bool ec_cond_timed_wait(ec_cond_t* c, ec_mutex_t* m, std::uint64_t timeout_ms) {
  DWORD ms = timeout_ms >= 0xFFFFFFFEu ? 0xFFFFFFFEu : static_cast<DWORD>(timeout_ms);
  return SleepConditionVariableCS(native(c), native(m), ms) != 0;
}
void ec_cond_signal(ec_cond_t* c) { WakeConditionVariable(native(c)); }
void ec_cond_broadcast(ec_cond_t* c) { WakeAllConditionVariable(native(c)); }

std::uint64_t ec_now_ms() { return GetTickCount64(); }

// ---------------------------------------------------------------------------
// Load generator support (native/bench): non-blocking connect and clocks.
// ---------------------------------------------------------------------------

ec_error ec_connect_start(const char* host, int port, ec_socket_t* out,
                          bool* pending, const char** syscall) {
  *out = EC_INVALID_SOCKET;
  *pending = false;
  addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV;
  char service[16];
  std::snprintf(service, sizeof service, "%d", port);
  addrinfo* list = nullptr;
  *syscall = "getaddrinfo";
  int rc = getaddrinfo(host, service, &hints, &list);
  if (rc != 0) return from_wsa(rc);
  *syscall = "socket";
  ec_error err = from_wsa(WSAEAFNOSUPPORT);
  SOCKET s = INVALID_SOCKET;
  addrinfo* ai = list;
  for (; ai != nullptr; ai = ai->ai_next) {
    s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (s != INVALID_SOCKET) break;
    err = last_wsa();
  }
  if (s == INVALID_SOCKET) {
    freeaddrinfo(list);
    return err;
  }
  no_inherit(s);
  u_long nonblocking = 1;
  ioctlsocket(s, FIONBIO, &nonblocking);
  BOOL one = TRUE;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof one);
  *syscall = "connect";
  int c = connect(s, ai->ai_addr, static_cast<int>(ai->ai_addrlen));
  int e = c == 0 ? 0 : WSAGetLastError();
  freeaddrinfo(list);
  if (c != 0 && e != WSAEWOULDBLOCK && e != WSAEINPROGRESS) {
    closesocket(s);
    return from_wsa(e);
  }
  *pending = c != 0;
  *out = static_cast<ec_socket_t>(s);
  return ec_error();
}

ec_error ec_connect_result(ec_socket_t s) {
  int e = 0;
  int len = sizeof e;
  if (getsockopt(static_cast<SOCKET>(s), SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&e),
                 &len) != 0)
    return last_wsa();
  if (e != 0) return from_wsa(e);
  sockaddr_storage ss;
  int sl = sizeof ss;
  if (getpeername(static_cast<SOCKET>(s), reinterpret_cast<sockaddr*>(&ss), &sl) == 0)
    return ec_error();
  int g = WSAGetLastError();
  if (g == WSAENOTCONN) return from_wsa(WSAEWOULDBLOCK);
  return from_wsa(g);
}

std::uint64_t ec_now_micros() {
  static const std::uint64_t freq = [] {
    LARGE_INTEGER f;
    QueryPerformanceFrequency(&f);
    return static_cast<std::uint64_t>(f.QuadPart);
  }();
  LARGE_INTEGER c;
  QueryPerformanceCounter(&c);
  std::uint64_t t = static_cast<std::uint64_t>(c.QuadPart);
  return (t / freq) * 1000000u + (t % freq) * 1000000u / freq;
}

std::uint64_t ec_thread_cpu_micros() {
  FILETIME created, exited, kernel, user;
  if (!GetThreadTimes(GetCurrentThread(), &created, &exited, &kernel, &user)) return 0;
  std::uint64_t k = (static_cast<std::uint64_t>(kernel.dwHighDateTime) << 32) | kernel.dwLowDateTime;
  std::uint64_t u = (static_cast<std::uint64_t>(user.dwHighDateTime) << 32) | user.dwLowDateTime;
  return (k + u) / 10u;  // 100 ns units.
}

// ---------------------------------------------------------------------------
// Sub-millisecond poller waits (engine_poll: send coalescing).
// ---------------------------------------------------------------------------
// WSAPoll counts whole milliseconds (and sleeps to the scheduler tick), so
// short waits are not offered: the engine then sends without coalescing.

bool ec_poller_sub_ms(ec_poller* p) {
  (void)p;
  return false;
}

ec_error ec_poller_wait_us(ec_poller* p, ec_poll_event* out, std::size_t max,
                           std::int64_t timeout_us, std::size_t* count, bool* woken) {
  int ms = -1;
  if (timeout_us >= 0) {
    std::int64_t whole = (timeout_us + 999) / 1000;
    ms = whole > 0x7fffffff ? 0x7fffffff : static_cast<int>(whole);
  }
  return ec_poller_wait(p, out, max, ms, count, woken);
}

bool ec_socket_set_rcvlowat(ec_socket_t, std::size_t) {
  return false;  // Winsock does not support SO_RCVLOWAT.
}
