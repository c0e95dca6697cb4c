// socket.cc (Windows) — the socket primitives of internal.h over Winsock2,
// WSAStartup / WSACleanup by reference count, and the socket calls of
// platform.h, bench.h and testing.h that differ per OS.
#include <climits>
#include <cstring>

#include "../bench.h"
#include "../testing.h"
#include "win32.h"

namespace ec_internal {
namespace {

// Reference count of ec_net_acquire(); SRWLOCK needs no initialisation call.
SRWLOCK g_net_lock = SRWLOCK_INIT;
int g_net_refs = 0;

}  // namespace

void no_inherit(SOCKET s) {
  SetHandleInformation(reinterpret_cast<HANDLE>(s), HANDLE_FLAG_INHERIT, 0);
}

ec_error open_socket(const addrinfo* ai, ec_socket_t* out) {
  SOCKET s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
  if (s == INVALID_SOCKET) return last_error();
  no_inherit(s);
  *out = static_cast<ec_socket_t>(s);
  return ec_error();
}

void prepare_listener(ec_socket_t s, int family) {
  // Windows lets another socket steal a port bound with SO_REUSEADDR;
  // SO_EXCLUSIVEADDRUSE gives the POSIX meaning of "in use".
  BOOL one = TRUE;
  setsockopt(sock(s), SOL_SOCKET, SO_EXCLUSIVEADDRUSE, reinterpret_cast<const char*>(&one),
             sizeof one);
  if (family == AF_INET6) {
    DWORD zero = 0;
    setsockopt(sock(s), IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<const char*>(&zero),
               sizeof zero);
  }
}

void set_nodelay(ec_socket_t s) {
  BOOL one = TRUE;
  setsockopt(sock(s), IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof one);
}

void set_nonblocking(ec_socket_t s, bool on) {
  u_long mode = on ? 1 : 0;
  ioctlsocket(sock(s), FIONBIO, &mode);
}

ec_error send_pieces(ec_socket_t s, const ec_iovec* pieces, std::size_t count, std::size_t* sent) {
  // WSABUF lengths are 32-bit: a larger piece goes in part, and last.
  WSABUF bufs[EC_MAX_IOV];
  DWORD n = 0;
  for (std::size_t i = 0; i < count && n < EC_MAX_IOV; ++i) {
    std::size_t len = pieces[i].len;
    bufs[n].buf = const_cast<char*>(static_cast<const char*>(pieces[i].base));
    bufs[n].len = len > 0x7fffffffu ? 0x7fffffffu : static_cast<ULONG>(len);
    ++n;
    if (len > 0x7fffffffu) break;
  }
  DWORD done = 0;
  if (WSASend(sock(s), bufs, n, &done, 0, nullptr, nullptr) != 0) return last_error();
  *sent = done;
  return ec_error();
}

ec_error recv_some(ec_socket_t s, void* buf, std::size_t len, std::size_t* received) {
  int want = len > static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(len);
  int n = recv(sock(s), static_cast<char*>(buf), want, 0);
  if (n == SOCKET_ERROR) {
    *received = 0;
    return last_error();
  }
  *received = static_cast<std::size_t>(n);
  return ec_error();
}

// Under Wine the wine server consumes a socket's pending error when it
// polls, so recv after a reset returns 0; a send of zero bytes still fails.
ec_error probe_gone(ec_socket_t s) {
  char none = 0;
  if (send(sock(s), &none, 0, 0) != SOCKET_ERROR) return ec_error();
  int e = WSAGetLastError();
  return e == WSAEWOULDBLOCK ? ec_error() : from_os(e);
}

ec_error connect_to(ec_socket_t s, const addrinfo* ai, bool nonblocking, bool* pending) {
  if (connect(sock(s), ai->ai_addr, static_cast<int>(ai->ai_addrlen)) == 0) {
    if (pending) *pending = false;
    return ec_error();
  }
  int e = WSAGetLastError();
  if (nonblocking && (e == WSAEWOULDBLOCK || e == WSAEINPROGRESS)) {
    *pending = true;
    return ec_error();
  }
  return from_os(e);
}

ec_error accept_socket(ec_socket_t listener, bool nonblocking, ec_socket_t* out,
                       std::string* peer_address, int* peer_port, ec_peer_address* peer_bytes) {
  sockaddr_storage ss;
  int sl = sizeof ss;
  std::memset(&ss, 0, sizeof ss);
  SOCKET s = accept(sock(listener), reinterpret_cast<sockaddr*>(&ss), &sl);
  if (s == INVALID_SOCKET) return last_error();  // WSAEWOULDBLOCK: EC_EAGAIN.
  no_inherit(s);
  set_nonblocking(static_cast<ec_socket_t>(s), nonblocking);
  set_nodelay(static_cast<ec_socket_t>(s));
  describe(ss, peer_address, peer_port, nullptr, peer_bytes);
  *out = static_cast<ec_socket_t>(s);
  return ec_error();
}

}  // namespace ec_internal

using namespace ec_internal;

ec_error ec_net_acquire() {
  AcquireSRWLockExclusive(&g_net_lock);
  ec_error err;
  if (g_net_refs == 0) {
    WSADATA data;
    int rc = WSAStartup(MAKEWORD(2, 2), &data);
    if (rc != 0) err = from_os(rc);
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

void ec_socket_interrupt(ec_socket_t s) {
  // shutdown stops the traffic but does not complete a pending recv;
  // CancelIoEx cancels a recv or send blocked in another thread (blocking
  // Winsock calls are overlapped I/O underneath), resetting the connection.
  shutdown(sock(s), SD_BOTH);
  CancelIoEx(reinterpret_cast<HANDLE>(sock(s)), nullptr);
}

// A pending recv ends only when the peer answers with its own close (or by
// ec_socket_interrupt): SD_BOTH would not wake it and SD_RECEIVE could reset.
void ec_socket_end(ec_socket_t s) { shutdown(sock(s), SD_SEND); }

void ec_socket_close(ec_socket_t s) { closesocket(sock(s)); }

void ec_socket_shutdown_send(ec_socket_t s) { shutdown(sock(s), SD_SEND); }

ec_error ec_socket_send_now(ec_socket_t s, const void* data, std::size_t len, std::size_t* sent) {
  *sent = 0;
  // A blocking socket has no per-call non-blocking flag, and switching it
  // to non-blocking is refused while event selection is on: send only when
  // it is writable now, so the send takes the bytes without waiting.
  WSAPOLLFD fd;
  fd.fd = sock(s);
  fd.events = POLLWRNORM;
  fd.revents = 0;
  int r = WSAPoll(&fd, 1, 0);
  if (r == SOCKET_ERROR) return last_error();
  if (r == 0 || !(fd.revents & POLLWRNORM)) return make_error(EC_EAGAIN);
  int want = len > static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(len);
  int n = send(sock(s), static_cast<const char*>(data), want, 0);
  if (n == SOCKET_ERROR) return last_error();
  *sent = static_cast<std::size_t>(n);
  return ec_error();
}

void ec_socket_reset(ec_socket_t s) {
  LINGER l;
  l.l_onoff = 1;
  l.l_linger = 0;
  setsockopt(sock(s), SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&l), sizeof l);
  closesocket(sock(s));
}

ec_error ec_connect_result(ec_socket_t s) {
  int e = 0;
  int len = sizeof e;
  if (getsockopt(sock(s), SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&e), &len) != 0)
    return last_error();
  if (e != 0) return from_os(e);
  sockaddr_storage ss;
  int sl = sizeof ss;
  if (getpeername(sock(s), reinterpret_cast<sockaddr*>(&ss), &sl) == 0) return ec_error();
  int g = WSAGetLastError();
  return from_os(g == WSAENOTCONN ? WSAEWOULDBLOCK : g);
}

bool ec_socket_set_rcvlowat(ec_socket_t, std::size_t) {
  return false;  // Winsock does not support SO_RCVLOWAT.
}
