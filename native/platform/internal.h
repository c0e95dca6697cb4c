// internal.h — what the platform implementation files share; never included
// outside native/platform. It brings in the OS socket headers (the one
// #ifdef _WIN32 of the implementation), declares the small per-OS primitives
// that common.cc builds on, and holds what both OSes do alike: resolving and
// binding over getaddrinfo results, describing addresses, the bookkeeping of
// a send-all over iovecs, the thread trampoline, and the primitives under the
// poller that the poll() and WSAPoll backends share (poller_dense.cc).
#ifndef ECHOCAST_PLATFORM_INTERNAL_H
#define ECHOCAST_PLATFORM_INTERNAL_H

#ifdef _WIN32
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0601  // Windows 7: inet_ntop, CancelIoEx, condvars.
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
// One entry of the array the poll()-style backends hand to the OS.
typedef WSAPOLLFD ec_pollfd;
#else
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
typedef pollfd ec_pollfd;
#endif

#include <cstddef>
#include <cstdint>
#include <string>

#include "platform.h"

namespace ec_internal {

// ---- Errors ------------------------------------------------------------------

// One OS row of error_table.def: an OS error number, the code it translates
// to and its OS name (for messages).
struct OsCode {
  int os;
  ec_err code;
  const char* name;
};

// This OS's rows of error_table.def, in table order (posix/errors.cc,
// win32/errors.cc define them with EC_OS_ROW).
extern const OsCode kOsCodes[];
extern const std::size_t kOsCodeCount;
#define EC_OS_ROW(os, code) {os, EC_##code, #os},

// The first of count rows for OS number os, or null (common.cc).
const OsCode* find_row(const OsCode* rows, std::size_t count, int os);

// Translates an OS error number (errno; a Winsock or Windows error) through
// this OS's rows, keeping the number for the message (common.cc).
ec_error from_os(int code);

// An error the platform reports on its own account (e.g. no address worked),
// carrying the OS number of the code's first row in error_table.def so the
// message reads as if the OS had said it (common.cc).
ec_error make_error(ec_err code);

// The calling thread's last socket error (errno / WSAGetLastError()).
ec_error last_error();

// Translates a getaddrinfo() result.
ec_error from_gai(int rc);

// ---- Socket primitives (posix/socket.cc, win32/socket.cc) ------------------

// Creates a socket for one getaddrinfo result that child processes do not
// inherit and whose sends never raise SIGPIPE.
ec_error open_socket(const addrinfo* ai, ec_socket_t* out);

// The options a listening socket gets before bind: the POSIX meaning of
// "address in use" (SO_REUSEADDR there, SO_EXCLUSIVEADDRUSE on Windows) and,
// for IPv6, dual stack.
void prepare_listener(ec_socket_t s, int family);

// Sets TCP_NODELAY.
void set_nodelay(ec_socket_t s);

// Switches a socket between blocking and non-blocking mode.
void set_nonblocking(ec_socket_t s, bool on);

// One gathered send of up to EC_MAX_IOV pieces, none empty (sendmsg /
// WSASend), retried on EINTR; *sent is what went.
ec_error send_pieces(ec_socket_t s, const ec_iovec* pieces, std::size_t count, std::size_t* sent);

// One recv, retried on EINTR, as the OS reports it.
ec_error recv_some(ec_socket_t s, void* buf, std::size_t len, std::size_t* received);

// Whether a socket whose recv just returned end of stream was in fact reset
// or is gone: the error of a zero-byte send, or EC_OK. Only Windows probes
// (Wine reports a reset as end of stream); POSIX kernels report a reset from
// recv itself, and a probe there would misread a peer that closed gracefully
// and then had its unread data answered with RST.
ec_error probe_gone(ec_socket_t s);

// connect() on a socket from open_socket(), retried on EINTR. With
// nonblocking, an attempt in progress is EC_OK with *pending set.
ec_error connect_to(ec_socket_t s, const addrinfo* ai, bool nonblocking, bool* pending);

// accept() of one connection: the new socket is not inherited, has
// TCP_NODELAY and never raises SIGPIPE, and is blocking or not as asked.
// EC_EAGAIN when none is pending on a non-blocking listener.
ec_error accept_socket(ec_socket_t listener, bool nonblocking, ec_socket_t* out,
                       std::string* peer_address, int* peer_port, ec_peer_address* peer_bytes);

// ---- Shared by both OSes (common.cc) ----------------------------------------

// getaddrinfo for TCP on host:port (passive: for bind).
ec_error resolve(const char* host, int port, bool passive, addrinfo** list);

// Creates, binds and listens on the first result for host:port that works,
// as ec_listen() and ec_listen_nonblocking() describe; the socket is left
// blocking, and bound says where it landed.
ec_error listen_first(const char* host, int port, int backlog, ec_socket_t* out,
                      ec_bound_address* bound, const char** syscall);

// Writes the numeric form of a socket address (ipv6 and bytes may be null).
void describe(const sockaddr_storage& ss, std::string* address, int* port, bool* ipv6,
              ec_peer_address* bytes = nullptr);

// Where a send-all has got to: the first piece not fully sent and how much
// of it went already.
struct SendCursor {
  std::size_t index = 0;
  std::size_t offset = 0;
};

// Writes the unsent rest of pieces, from cur, as at most max non-empty
// pieces to window; returns how many.
std::size_t send_window(const ec_iovec* pieces, std::size_t count, const SendCursor& cur,
                        ec_iovec* window, std::size_t max);

// Moves cur past `sent` bytes (and any empty pieces after them).
void send_advance(const ec_iovec* pieces, std::size_t count, std::size_t sent, SendCursor* cur);

// A thread's function and argument, handed through the OS's thread entry
// point: new_thread_start() allocates it, run_thread_start() (called first
// by the new thread) frees it and runs the function.
struct ThreadStart {
  ec_thread_fn fn;
  void* arg;
};
ThreadStart* new_thread_start(ec_thread_fn fn, void* arg);
void run_thread_start(void* start);

// What each OS's thread.cc keeps in the opaque ec_mutex_t, ec_cond_t and
// ec_thread_t must fit there; instantiated (`::value`) by each with its own
// mutex, condition variable and thread handle types.
template <typename Mutex, typename Cond, typename Thread>
struct FitsOpaqueStorage {
  static_assert(sizeof(Mutex) <= sizeof(ec_mutex_t::storage),
                "ec_mutex_t too small for the OS mutex");
  static_assert(sizeof(Cond) <= sizeof(ec_cond_t::storage),
                "ec_cond_t too small for the OS condition variable");
  static_assert(sizeof(Thread) <= sizeof(std::uintptr_t),
                "the OS thread handle does not fit in ec_thread_t");
  static constexpr bool value = true;
};

// Whole milliseconds, rounded up (-1 stays -1), for poll-style timeouts.
int ceil_ms(std::int64_t timeout_us);

// ---- The poll() and WSAPoll backends -----------------------------------------
// poller_dense.cc implements the poller once for both, over a dense array of
// ec_pollfd, with these primitives from posix/poller_poll.cc or
// win32/poller_wsapoll.cc.

// The OS event bits for an EC_POLL_* interest.
short dense_events(unsigned interest);

// The EC_POLL_* events of an entry the OS reported ready (see EC_POLL_HUP),
// given what it was registered for as the input gate leaves it (gated input
// taken out while the gate is closed); sets *park when the entry should leave
// the array until it is registered again, because the OS would otherwise
// report it on every wait with nothing to say.
unsigned dense_ready(const ec_pollfd& entry, unsigned interest, bool* park);

// One poll() / WSAPoll over n entries for up to timeout_us (-1: no limit),
// rounded up to whole milliseconds unless dense_sub_ms(). Returns how many
// entries are ready, or -1 with *err set (EC_EINTR when interrupted).
int dense_poll(ec_pollfd* fds, std::size_t n, std::int64_t timeout_us, ec_error* err);

// Whether dense_poll() honors timeouts under a millisecond (ppoll).
bool dense_sub_ms();

// The wake-up channel: a connected pair whose read end r becomes readable
// when a byte is written to w (a pipe on POSIX, loopback sockets on Windows,
// since WSAPoll watches sockets only). Both ends are non-blocking.
ec_error wake_open(ec_socket_t* r, ec_socket_t* w);
void wake_close(ec_socket_t r, ec_socket_t w);
void wake_poke(ec_socket_t w);
void wake_drain(ec_socket_t r);

}  // namespace ec_internal

#endif  // ECHOCAST_PLATFORM_INTERNAL_H
