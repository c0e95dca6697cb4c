// listener.cc (Windows) — the blocking listener: the listening socket is
// tied to accept_event with WSAEventSelect (FD_ACCEPT), and wake_event is
// set by ec_listener_wake(); the accepting thread sleeps in
// WaitForMultipleObjects on both (at most kAcceptRecheckMs), so it can be
// woken without closing the socket under it.
#include <new>

#include "win32.h"

using namespace ec_internal;

namespace {

// How long the accepting thread sleeps before it tries accept() again even
// without an FD_ACCEPT signal (see ec_listener_accept).
constexpr DWORD kAcceptRecheckMs = 100;

}  // namespace

struct ec_listener {
  SOCKET sock = INVALID_SOCKET;
  WSAEVENT accept_event = WSA_INVALID_EVENT;
  HANDLE wake_event = nullptr;
};

ec_error ec_listen(const char* host, int port, int backlog, ec_listener** out,
                   ec_bound_address* bound, const char** syscall) {
  *out = nullptr;
  ec_socket_t s = EC_INVALID_SOCKET;
  ec_error err = listen_first(host, port, backlog, &s, bound, syscall);
  if (!err.ok()) return err;
  ec_listener* l = new (std::nothrow) ec_listener;
  if (l == nullptr) {
    ec_socket_close(s);
    *syscall = "listen";
    return make_error(EC_ENOMEM);
  }
  l->sock = sock(s);
  l->accept_event = WSACreateEvent();
  l->wake_event = CreateEventW(nullptr, TRUE, FALSE, nullptr);  // Manual reset.
  // WSAEventSelect also makes the socket non-blocking.
  if (l->accept_event == WSA_INVALID_EVENT || l->wake_event == nullptr ||
      WSAEventSelect(l->sock, l->accept_event, FD_ACCEPT) != 0) {
    err = last_error();
    if (err.ok()) err = last_windows_error();
    ec_listener_close(l);
    *syscall = "listen";
    return err;
  }
  *out = l;
  return ec_error();
}

ec_error ec_listener_accept(ec_listener* l, ec_socket_t* out, std::string* peer_address,
                            int* peer_port, ec_peer_address* peer_bytes) {
  for (;;) {
    if (WaitForSingleObject(l->wake_event, 0) == WAIT_OBJECT_0) {
      ec_error err;
      err.code = EC_ECANCELED;
      return err;
    }
    ec_error err = accept_socket(static_cast<ec_socket_t>(l->sock), true, out, peer_address,
                                 peer_port, peer_bytes);
    if (err.ok()) {
      // An accepted socket inherits the listener's event selection, which
      // must go before the socket can be made blocking again.
      WSAEventSelect(sock(*out), nullptr, 0);
      set_nonblocking(*out, false);
      return err;
    }
    if (err.code != EC_EAGAIN) return err;
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
      return last_windows_error();
    }
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
