// platform.h — the whole operating-system surface that echocast's core may use.
//
// The core (hub, framer, engines) and the Node-API wrapper include only this
// header. It names neutral types and functions; the two implementations,
// posix.cc and win32.cc, are chosen per OS by the build files. No OS header
// (windows.h, winsock2.h, pthread.h, sys/socket.h, unistd.h, ...) is included
// here, so nothing from those headers leaks into the rest of the code base.
#ifndef ECHOCAST_PLATFORM_H
#define ECHOCAST_PLATFORM_H

#include <cstddef>
#include <cstdint>
#include <string>

// ---------------------------------------------------------------------------
// Neutral handle types.
// ---------------------------------------------------------------------------

// A socket handle. Winsock's SOCKET is an unsigned pointer-sized integer and
// POSIX uses a small int; the core only copies and compares these values, so
// the one #ifdef below is all it needs to know about the difference.
#ifdef _WIN32
typedef std::uintptr_t ec_socket_t;
#define EC_INVALID_SOCKET (~static_cast<std::uintptr_t>(0))
#else
typedef int ec_socket_t;
#define EC_INVALID_SOCKET (-1)
#endif

// A joinable thread. pthread_t (Linux, macOS) and a Windows HANDLE both fit in
// a pointer-sized integer; the implementations static_assert this.
struct ec_thread_t {
  std::uintptr_t handle = 0;
};

// A non-recursive mutex (pthread_mutex_t / CRITICAL_SECTION). The storage is
// opaque and sized for the largest of them (macOS: 64 bytes) so the core can
// embed locks in its own objects without an allocation and without seeing the
// OS types. Each implementation static_asserts that its type fits.
struct ec_mutex_t {
  alignas(16) unsigned char storage[64];
};

// A condition variable (pthread_cond_t with CLOCK_MONOTONIC /
// CONDITION_VARIABLE), opaque for the same reason as ec_mutex_t.
struct ec_cond_t {
  alignas(16) unsigned char storage[64];
};

// A listening socket together with what it takes to wake a thread blocked in
// ec_listener_accept(): a self-pipe on POSIX (close() does not wake accept()
// on Linux), an event object on Windows. Opaque; created by ec_listen().
struct ec_listener;

// ---------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------

// Every OS error (errno, WSAGetLastError(), getaddrinfo's EAI_* codes) is
// translated into this one enum at the platform boundary, so raw Winsock or
// errno numbers never travel further. The names match Node's error codes.
enum ec_err {
  EC_OK = 0,
  EC_EADDRINUSE,
  EC_EADDRNOTAVAIL,
  EC_EACCES,
  EC_EAFNOSUPPORT,
  EC_EAGAIN,
  EC_EBADF,
  EC_ECANCELED,     // An operation was interrupted on purpose (listener woken).
  EC_ECONNABORTED,
  EC_ECONNREFUSED,
  EC_ECONNRESET,
  EC_EHOSTUNREACH,
  EC_EINTR,
  EC_EINVAL,
  EC_EMFILE,
  EC_ENETDOWN,
  EC_ENETUNREACH,
  EC_ENFILE,
  EC_ENOBUFS,
  EC_ENOMEM,
  EC_ENOTCONN,
  EC_ENOTFOUND,     // getaddrinfo could not resolve the host name.
  EC_ENOTSOCK,
  EC_EPIPE,
  EC_ESHUTDOWN,
  EC_ETIMEDOUT,
  EC_EAI_AGAIN,     // getaddrinfo: temporary resolver failure.
  EC_EUNKNOWN
};

// An error as it left the OS: the translated code plus the original number,
// kept only so that the message can name it (e.g. "WSAEADDRINUSE").
struct ec_error {
  ec_err code = EC_OK;
  int os_code = 0;
  bool ok() const { return code == EC_OK; }
};

// The short name of a code, e.g. "EADDRINUSE"; what JS sees as error.code.
const char* ec_err_name(ec_err code);

// The fixed English message for a code, in libuv's wording (what node:net
// shows), e.g. "address already in use"; nullptr for EC_EUNKNOWN.
const char* ec_err_message(ec_err code);

// A human-readable message for an error, e.g. "address already in use". On
// Windows it names the Winsock code as well, e.g.
// "address already in use (WSAEADDRINUSE)", so a Windows report can be
// matched to Microsoft's documentation.
std::string ec_error_message(const ec_error& err);

// ---------------------------------------------------------------------------
// Identity.
// ---------------------------------------------------------------------------

// Which implementation this build carries: "posix" or "win32". JS shows it
// as addon.platform so a report can say which socket layer ran.
const char* ec_platform_name();

// ---------------------------------------------------------------------------
// Process-wide initialisation.
// ---------------------------------------------------------------------------

// Takes a reference on the socket library. On Windows the first reference
// calls WSAStartup; POSIX needs nothing. Every server calls this before it
// listens and ec_net_release() after its last socket is closed.
ec_error ec_net_acquire();

// Drops a reference taken by ec_net_acquire(). On Windows the last reference
// calls WSACleanup, so a process that closes all its servers leaves Winsock
// as it found it.
void ec_net_release();

// ---------------------------------------------------------------------------
// Sockets.
// ---------------------------------------------------------------------------

// What a listener ended up bound to, reported to JS by start().
struct ec_bound_address {
  std::string address;  // Numeric host, e.g. "127.0.0.1" or "::1".
  int port = 0;
  bool ipv6 = false;
};

// Resolves host with getaddrinfo (numeric IPv4, IPv6 literals and names such
// as "localhost"), then creates, binds and listens on the first address that
// works. On failure *syscall names the step that failed ("getaddrinfo",
// "socket", "bind" or "listen") so JS can build a Node-style error. The
// listener is non-blocking internally; ec_listener_accept() hides that.
ec_error ec_listen(const char* host, int port, int backlog, ec_listener** out,
                   ec_bound_address* bound, const char** syscall);

// Waits for one connection and returns it as a blocking socket with
// TCP_NODELAY set, plus the peer's numeric address and port. Blocks without
// polling in a loop. Returns EC_ECANCELED once ec_listener_wake() has been
// called, and transient errors (e.g. EC_ECONNABORTED, EC_EMFILE) as they come.
ec_error ec_listener_accept(ec_listener* l, ec_socket_t* out,
                            std::string* peer_address, int* peer_port);

// Makes every current and future ec_listener_accept() on this listener return
// EC_ECANCELED. Safe to call from any thread, any number of times.
void ec_listener_wake(ec_listener* l);

// Closes the listening socket and frees the listener. Call only after the
// thread that accepts on it has been joined.
void ec_listener_close(ec_listener* l);

// Opens a blocking TCP connection to host:port (TCP_NODELAY set). The
// server never needs it; the C++ tests use it to talk to a listener through
// real sockets, and tools may.
ec_error ec_connect(const char* host, int port, ec_socket_t* out);

// Receives up to len bytes. *received == 0 with EC_OK means the peer shut its
// write side (end of stream). Blocks until data, end of stream or an error;
// ec_socket_interrupt() from another thread makes it return.
ec_error ec_socket_recv(ec_socket_t s, void* buf, std::size_t len,
                        std::size_t* received);

// One piece of a gathered send; the buffers are not copied.
struct ec_iovec {
  const void* base;
  std::size_t len;
};

// Sends all the pieces, in order, as one stream, retrying partial sends, with
// one system call per batch where the OS allows it (sendmsg / WSASend). Never
// raises SIGPIPE: a peer that went away is an error (EC_EPIPE/EC_ECONNRESET),
// not a signal that kills the process. ec_socket_interrupt() makes it return.
ec_error ec_socket_send_all(ec_socket_t s, const ec_iovec* pieces,
                            std::size_t count);

// Wakes any thread blocked in recv or send on this socket at once, and stops
// further traffic, without releasing the handle: the handle stays valid (so
// it cannot be reused by a new connection under a thread still holding it)
// until ec_socket_close(), which is called after those threads have been
// joined. May be abortive: on Windows a pending recv can only be cancelled
// (CancelIoEx), and that resets the connection, so the peer can lose data it
// has not read yet. Used to cut a client.
void ec_socket_interrupt(ec_socket_t s);

// Begins a graceful close: data already sent is still delivered, then the
// peer sees end of stream. It wakes what it can without resetting the
// connection. POSIX: shutdown(SHUT_RDWR), which also makes a blocked recv
// return end of stream. Windows: shutdown(SD_SEND) only, because a pending
// recv there ends only when the peer closes its side in answer (or by
// ec_socket_interrupt). Used when the server stops.
void ec_socket_end(ec_socket_t s);

// Releases the socket handle.
void ec_socket_close(ec_socket_t s);

// ---------------------------------------------------------------------------
// Non-blocking sockets and the poller (Server 2.0: one I/O thread).
// ---------------------------------------------------------------------------

// The listening socket itself, to register it with a poller.
ec_socket_t ec_listener_socket(ec_listener* l);

// Accepts one pending connection without blocking: EC_EAGAIN when there is
// none. The socket returned is non-blocking, with TCP_NODELAY set and (on
// POSIX) close-on-exec and no SIGPIPE.
ec_error ec_listener_try_accept(ec_listener* l, ec_socket_t* out,
                                std::string* peer_address, int* peer_port);

// One recv on a non-blocking socket: EC_EAGAIN when nothing is there yet;
// *received == 0 with EC_OK means end of stream.
ec_error ec_socket_try_recv(ec_socket_t s, void* buf, std::size_t len,
                            std::size_t* received);

// One gathered send (sendmsg / WSASend) of the pieces, in order, on a
// non-blocking socket; the buffers are not copied. *sent says how many bytes
// went (possibly fewer than offered); EC_EAGAIN when none could. Never
// raises SIGPIPE. At most EC_MAX_IOV pieces are taken per call.
#define EC_MAX_IOV 64
ec_error ec_socket_try_send(ec_socket_t s, const ec_iovec* pieces,
                            std::size_t count, std::size_t* sent);

// Shuts the send side only (shutdown SHUT_WR / SD_SEND): the peer reads
// what was sent, then end of stream; this side can still read its answer.
void ec_socket_shutdown_send(ec_socket_t s);

// Closes the socket abortively (SO_LINGER 0): the peer gets a reset, not
// an end of stream. Used by tests that play a client that resets.
void ec_socket_reset(ec_socket_t s);

// After a recv returned end of stream: whether the connection was in fact
// reset or is gone altogether (a send of zero bytes fails), as opposed to
// the peer having only shut its write side (half-close: it still receives).
// Needed where the reset itself is not reported to recv (Wine: the wine
// server consumes the socket's pending error when it polls, and recv then
// returns 0). Always false on POSIX, whose recv reports a reset itself: there
// a probe would misread a peer that closed gracefully and then had its unread
// data answered with RST.
bool ec_socket_gone(ec_socket_t s);

// Readiness a poller reports or is asked for. ERR and HUP are always
// reported, whatever was asked.
enum : unsigned {
  EC_POLL_IN = 1u,   // Readable (data, end of stream, a pending connection).
  EC_POLL_OUT = 2u,  // Writable.
  EC_POLL_ERR = 4u,  // An error is pending on the socket.
  EC_POLL_HUP = 8u,  // Hang-up (what it means varies: see engine_poll.cc).
};

// One ready socket: the data pointer it was registered with and what it is
// ready for.
struct ec_poll_event {
  void* data;
  unsigned events;
};

// A level-triggered readiness poller over sockets, with its own wake-up
// channel: epoll + eventfd on Linux, poll() + a pipe on other POSIX systems,
// WSAPoll + a loopback socket pair on Windows. Opaque. Only ec_poller_wake()
// may be called from another thread than the one that waits.
struct ec_poller;

// Creates a poller (and its wake-up channel).
ec_error ec_poller_create(ec_poller** out);

// Closes the wake-up channel and frees the poller (the sockets registered
// are not closed).
void ec_poller_destroy(ec_poller* p);

// Registers a socket for `events` (EC_POLL_IN / EC_POLL_OUT), reported
// with `data`.
ec_error ec_poller_add(ec_poller* p, ec_socket_t s, unsigned events, void* data);

// Changes what a registered socket is watched for.
ec_error ec_poller_modify(ec_poller* p, ec_socket_t s, unsigned events, void* data);

// Unregisters a socket; call before closing it.
void ec_poller_remove(ec_poller* p, ec_socket_t s);

// Sleeps until a registered socket is ready, ec_poller_wake() is called, or
// timeout_ms passes (-1: no limit); then writes up to `max` events to `out`
// and their number to *count, and sets *woken when a wake-up was consumed.
// EINTR is retried inside.
ec_error ec_poller_wait(ec_poller* p, ec_poll_event* out, std::size_t max,
                        int timeout_ms, std::size_t* count, bool* woken);

// Makes the current or next ec_poller_wait() return with *woken set. Safe
// from any thread; several calls before a wait coalesce into one wake-up.
void ec_poller_wake(ec_poller* p);

// Which mechanism this build's poller uses: "epoll", "poll" or "WSAPoll".
const char* ec_poller_backend();

// ---------------------------------------------------------------------------
// Threads.
// ---------------------------------------------------------------------------

// The body of a thread.
typedef void (*ec_thread_fn)(void* arg);

// The stack size echocast asks for: two threads per client would cost 16 MiB
// of address space each with the default 8 MiB stacks, so they get 128 KiB,
// which is plenty for code that keeps its buffers on the heap. Sanitizer
// builds need larger frames and get more.
#if defined(__SANITIZE_ADDRESS__)
#define EC_THREAD_STACK_BYTES (512 * 1024)
#else
#define EC_THREAD_STACK_BYTES (128 * 1024)
#endif

// Starts a thread running fn(arg) with a stack of about stack_bytes (on
// Windows a reservation, STACK_SIZE_PARAM_IS_A_RESERVATION, so memory is only
// committed as used).
ec_error ec_thread_create(ec_thread_t* t, ec_thread_fn fn, void* arg,
                          std::size_t stack_bytes);

// Waits for the thread to finish and releases it. Every thread echocast
// starts is joined exactly once.
void ec_thread_join(ec_thread_t* t);

// ---------------------------------------------------------------------------
// Locks and condition variables.
// ---------------------------------------------------------------------------

// Initialises / destroys a mutex. Initialisation cannot fail on the supported
// systems for the default attributes, so these return nothing.
void ec_mutex_init(ec_mutex_t* m);
void ec_mutex_destroy(ec_mutex_t* m);

// Takes / releases the mutex. Not recursive.
void ec_mutex_lock(ec_mutex_t* m);
void ec_mutex_unlock(ec_mutex_t* m);

// Initialises / destroys a condition variable. On POSIX it measures timeouts
// with CLOCK_MONOTONIC (where available) so wall-clock changes do not shorten
// or stretch a timed wait.
void ec_cond_init(ec_cond_t* c);
void ec_cond_destroy(ec_cond_t* c);

// Atomically releases m and sleeps until signalled; m is held again on
// return. Spurious wake-ups are possible, so callers loop on their condition.
void ec_cond_wait(ec_cond_t* c, ec_mutex_t* m);

// Like ec_cond_wait, but gives up after timeout_ms. Returns false on timeout.
bool ec_cond_timed_wait(ec_cond_t* c, ec_mutex_t* m, std::uint64_t timeout_ms);

// Wakes one / all threads waiting on the condition variable.
void ec_cond_signal(ec_cond_t* c);
void ec_cond_broadcast(ec_cond_t* c);

// A scoped lock for ec_mutex_t, so early returns cannot leave a lock held.
class ec_lock_guard {
 public:
  explicit ec_lock_guard(ec_mutex_t* m) : m_(m) { ec_mutex_lock(m_); }
  ~ec_lock_guard() { ec_mutex_unlock(m_); }
  ec_lock_guard(const ec_lock_guard&) = delete;
  ec_lock_guard& operator=(const ec_lock_guard&) = delete;

 private:
  ec_mutex_t* m_;
};

// ---------------------------------------------------------------------------
// Time.
// ---------------------------------------------------------------------------

// Milliseconds from an arbitrary fixed point, never going backwards; used for
// the stop deadline.
std::uint64_t ec_now_ms();

// ---------------------------------------------------------------------------
// Load generator support (native/bench): non-blocking connect and clocks.
// ---------------------------------------------------------------------------

// Starts a TCP connection to host:port without blocking: resolves host (the
// first address that gives a socket is used), creates a non-blocking socket
// (TCP_NODELAY, close-on-exec, no SIGPIPE) and connects. EC_OK with
// *pending == false: connected already. EC_OK with *pending == true: wait for
// EC_POLL_OUT (or ERR/HUP) on it, then ask ec_connect_result(). On error
// nothing is left open and *syscall names the step ("getaddrinfo", "socket",
// "connect"). Needs ec_net_acquire() on Windows (getaddrinfo, socket).
// Note: WSAPoll on older Windows does not report a failed connect at all, so
// callers must also time out.
ec_error ec_connect_start(const char* host, int port, ec_socket_t* out,
                          bool* pending, const char** syscall);

// The outcome of a pending non-blocking connect (SO_ERROR): EC_OK once
// connected; EC_EAGAIN while still in progress.
ec_error ec_connect_result(ec_socket_t s);

// Microseconds from an arbitrary fixed point, never going backwards
// (CLOCK_MONOTONIC / QueryPerformanceCounter).
std::uint64_t ec_now_micros();

// CPU time (user + system) the calling thread has used, in microseconds
// (CLOCK_THREAD_CPUTIME_ID / GetThreadTimes, whose resolution on Windows is
// the scheduler tick, about 15.6 ms).
std::uint64_t ec_thread_cpu_micros();

// Asks the poller to report the socket readable only once `bytes` are
// queued (SO_RCVLOWAT; 1 restores the default), so a client that only
// counts bytes is read in large chunks. A recv still returns what is there.
// False where unsupported (Windows: WSAPoll ignores it).
bool ec_socket_set_rcvlowat(ec_socket_t s, std::size_t bytes);


// ---------------------------------------------------------------------------
// Sub-millisecond poller waits (engine_poll: send coalescing).
// ---------------------------------------------------------------------------

// Whether this poller honors ec_poller_wait_us() timeouts under a
// millisecond: true with epoll_pwait2 (Linux 5.11+) or ppoll (Linux poll
// backend); false elsewhere (WSAPoll, plain poll), where the timeout is
// rounded up to whole milliseconds and callers should not rely on short waits.
bool ec_poller_sub_ms(ec_poller* p);

// ec_poller_wait() with the timeout in microseconds (-1: no limit).
ec_error ec_poller_wait_us(ec_poller* p, ec_poll_event* out, std::size_t max,
                           std::int64_t timeout_us, std::size_t* count, bool* woken);

#endif  // ECHOCAST_PLATFORM_H
