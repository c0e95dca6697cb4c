// platform.h — the operating-system surface that echocast's core may use.
//
// The core (hub, framer, engines) and the Node-API wrapper include only this
// header (the load generator adds bench.h, the C++ tests testing.h). It names
// neutral types and functions; the implementations live in posix/ and
// win32/, one file per subsystem, with what both share in common.cc, and the
// build files choose them per OS. No OS header (windows.h, winsock2.h,
// pthread.h, sys/socket.h, unistd.h, ...) is included here, so nothing from
// those headers leaks into the rest of the code base. What the OSes do
// differently (what a hang-up means, how a reset shows, what can wake a
// blocked thread) is settled inside the platform layer: the contracts below
// hold on every OS.
#ifndef ECHOCAST_PLATFORM_H
#define ECHOCAST_PLATFORM_H

#include <cstddef>
#include <cstdint>
#include <string>

#include "error_table.def"

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

// ---------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------

// Every OS error (errno, WSAGetLastError(), getaddrinfo's EAI_* codes) is
// translated into this one enum at the platform boundary, so raw Winsock or
// errno numbers never travel further. The names match Node's error codes;
// the codes, their names, messages and OS translations all come from the
// one table in error_table.def.
enum ec_err {
  EC_OK = 0,
#define EC_ERR_ENUM(code, message) EC_##code,
  EC_ERROR_TABLE(EC_ERR_ENUM, EC_ERROR_IGNORE, EC_ERROR_IGNORE, EC_ERROR_IGNORE)
#undef EC_ERR_ENUM
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

// True when the process this code runs in (the host: node, node.exe under
// any name, the unit tests) exports a function of that name. The TLS layer
// asks it about each OpenSSL function before the first call
// (native/core/tls/openssl_functions.def): dlsym(RTLD_DEFAULT) on POSIX;
// GetProcAddress on the executable's module on Windows, the module the
// delay-load hook binds the addon's node.exe imports to.
bool ec_process_exports(const char* name);

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
// Listening.
// ---------------------------------------------------------------------------

// What a listening socket ended up bound to, reported to JS by start().
struct ec_bound_address {
  std::string address;  // Numeric host, e.g. "127.0.0.1" or "::1".
  int port = 0;
  bool ipv6 = false;
};

// A peer's address as bytes, for the address lists (docs/contract.md S15):
// family 4 (the address in bytes[0..4)) or 6 (all 16 bytes, as received: an
// IPv4-mapped IPv6 address stays ::ffff:a.b.c.d); 0 when unknown.
struct ec_peer_address {
  int family = 0;
  std::uint8_t bytes[16] = {0};
};

// Both kinds of listener below resolve host with getaddrinfo (numeric IPv4,
// IPv6 literals and names such as "localhost"), then create, bind and listen
// on the first address that works ("::" also accepts IPv4, as in Node). On
// failure *syscall names the step that failed ("getaddrinfo", "socket",
// "bind" or "listen") so JS can build a Node-style error.

// A blocking listener, for a thread that sleeps in accept: the listening
// socket plus what it takes to wake that thread without closing the socket
// under it (a self-pipe on POSIX, an event object on Windows). Opaque.
struct ec_listener;

// Creates a blocking listener (see above for host, port and *syscall).
ec_error ec_listen(const char* host, int port, int backlog, ec_listener** out,
                   ec_bound_address* bound, const char** syscall);

// Waits for one connection and returns it as a blocking socket with
// TCP_NODELAY set, plus the peer's numeric address and port (and, with
// peer_bytes, its address as bytes). Sleeps without
// spinning. Returns EC_ECANCELED once ec_listener_wake() has been called, and
// transient errors (e.g. EC_ECONNABORTED, EC_EMFILE) as they come.
ec_error ec_listener_accept(ec_listener* l, ec_socket_t* out, std::string* peer_address,
                            int* peer_port, ec_peer_address* peer_bytes = nullptr);

// Makes every current and future ec_listener_accept() on this listener return
// EC_ECANCELED. Safe to call from any thread, any number of times.
void ec_listener_wake(ec_listener* l);

// Closes the listening socket and frees the listener. Call only after the
// thread that accepts on it has been joined.
void ec_listener_close(ec_listener* l);

// Creates a non-blocking listening socket (see above for host, port and
// *syscall), for a thread that watches it with an ec_poller (EC_POLL_IN: a
// connection is pending). It is a plain socket: close it with
// ec_socket_close().
ec_error ec_listen_nonblocking(const char* host, int port, int backlog, ec_socket_t* out,
                               ec_bound_address* bound, const char** syscall);

// Accepts one pending connection from a non-blocking listening socket
// without blocking: EC_EAGAIN when there is none. The socket returned is
// non-blocking, with TCP_NODELAY set, not inherited by child processes, and
// sends on it never raise SIGPIPE. peer_bytes as for ec_listener_accept.
ec_error ec_socket_try_accept(ec_socket_t listener, ec_socket_t* out, std::string* peer_address,
                              int* peer_port, ec_peer_address* peer_bytes = nullptr);

// ---------------------------------------------------------------------------
// Sockets.
// ---------------------------------------------------------------------------
// End of stream and resets read the same on every OS: a recv that returns
// EC_OK with *received == 0 means the peer shut its write side (it may still
// receive: a half-close), and a reset is always an error. (Under Wine the
// wine server consumes a socket's pending error when it polls, so recv
// returns 0 after a reset; the Windows implementation checks such an end of
// stream with a zero-byte send and reports the reset as the error it is.)

// One piece of a gathered send; the buffers are not copied.
struct ec_iovec {
  const void* base;
  std::size_t len;
};

// Receives up to len bytes on a blocking socket. *received == 0 with EC_OK
// is end of stream (see above). Blocks until data, end of stream or an error;
// ec_socket_interrupt() or ec_socket_end() from another thread makes it
// return.
ec_error ec_socket_recv(ec_socket_t s, void* buf, std::size_t len, std::size_t* received);

// Sends all the pieces, in order, as one stream on a blocking socket,
// carrying on after partial sends, with one system call per batch of up to
// EC_MAX_IOV pieces (sendmsg / WSASend). Never raises SIGPIPE: a peer that
// went away is an error (EC_EPIPE/EC_ECONNRESET), not a signal that kills
// the process. ec_socket_interrupt() makes it return.
ec_error ec_socket_send_all(ec_socket_t s, const ec_iovec* pieces, std::size_t count);

// Cuts a connection that other threads may be blocked on: every recv or send
// blocked on the socket returns at once and further traffic stops, but the
// handle stays valid (so it cannot be reused by a new connection under a
// thread still holding it) until ec_socket_close(), called after those
// threads have been joined. Treat it as abortive: the peer may lose data it
// has not read yet (on Windows a blocked recv can only be cancelled, which
// resets the connection).
void ec_socket_interrupt(ec_socket_t s);

// Begins a graceful close of a blocking socket: data already sent is still
// delivered, then the peer sees end of stream; nothing is reset. A recv
// blocked on the socket returns end of stream no later than when the peer
// answers with its own close (POSIX shuts both directions, so at once;
// Windows can only shut the send side). Follow it with a bounded wait and
// ec_socket_interrupt() for peers that never answer.
void ec_socket_end(ec_socket_t s);

// Releases the socket handle.
void ec_socket_close(ec_socket_t s);

// One recv on a non-blocking socket: EC_EAGAIN when nothing is there yet;
// *received == 0 with EC_OK is end of stream (see above).
ec_error ec_socket_try_recv(ec_socket_t s, void* buf, std::size_t len, std::size_t* received);

// One gathered send (sendmsg / WSASend) of the pieces, in order, on a
// non-blocking socket; the buffers are not copied. *sent says how many bytes
// went (possibly fewer than offered); EC_EAGAIN when none could. Never
// raises SIGPIPE. At most EC_MAX_IOV pieces are taken per call.
#define EC_MAX_IOV 64
ec_error ec_socket_try_send(ec_socket_t s, const ec_iovec* pieces, std::size_t count,
                            std::size_t* sent);

// Sends what a blocking socket takes at once, without blocking: *sent says
// how many of the len bytes went (possibly fewer, or none: EC_EAGAIN). For a
// few bytes (a WebSocket close frame) that must not hold up the thread that
// closes the connection, e.g. under a lock. POSIX: MSG_DONTWAIT; Windows:
// sent only when WSAPoll says the socket is writable now.
ec_error ec_socket_send_now(ec_socket_t s, const void* data, std::size_t len, std::size_t* sent);

// Shuts the send side only (shutdown SHUT_WR / SD_SEND): the peer reads
// what was sent, then end of stream; this side can still read its answer.
void ec_socket_shutdown_send(ec_socket_t s);

// ---------------------------------------------------------------------------
// The poller (one I/O thread over non-blocking sockets).
// ---------------------------------------------------------------------------

// Readiness a poller reports or is asked for. ERR and HUP are reported
// whatever was asked, and mean the same with every backend:
enum : unsigned {
  // Readable: data, end of stream, or a pending connection on a listener.
  EC_POLL_IN = 1u,
  // Writable.
  EC_POLL_OUT = 2u,
  // An error is pending on the socket (the next recv or send reports it).
  EC_POLL_ERR = 4u,
  // The connection is finished in both directions: the peer's end of stream
  // has arrived and nothing more can be sent (this side shut its send side,
  // or the connection was reset). A peer's end of stream alone is reported
  // as EC_POLL_IN, or not at all on a socket not watched for input: the
  // WSAPoll backend, whose POLLHUP means a FIN alone, checks which it is and
  // stops watching such a socket until ec_poller_modify() asks for something
  // again, so that a half-closed peer does not make every wait return.
  // Level-triggered like the rest: reported until the socket leaves the
  // poller.
  EC_POLL_HUP = 8u,
  // Asked for with EC_POLL_IN only: that input interest obeys the poller's
  // input gate (ec_poller_gate_input). While the gate is closed such a
  // socket is neither watched nor reported for input; its EC_POLL_OUT, ERR
  // and HUP are, and so is the input of sockets registered without it (a
  // listener keeps accepting). Never reported.
  EC_POLL_GATED = 16u,
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

// Registers a socket for `events` (EC_POLL_IN / EC_POLL_OUT, or 0 for
// errors and hang-ups only; EC_POLL_GATED puts the input under the gate),
// reported with `data`.
ec_error ec_poller_add(ec_poller* p, ec_socket_t s, unsigned events, void* data);

// Changes what a registered socket is watched for.
ec_error ec_poller_modify(ec_poller* p, ec_socket_t s, unsigned events, void* data);

// Unregisters a socket; call before closing it.
void ec_poller_remove(ec_poller* p, ec_socket_t s);

// Sleeps until a registered socket is ready, ec_poller_wake() is called, or
// timeout_ms passes (-1: no limit); then writes up to `max` events to `out`
// and their number to *count, and sets *woken when a wake-up was consumed.
// EINTR is retried inside. When more sockets are ready than `max`, the
// poll() and WSAPoll backends start reporting at a different socket on each
// call, so none is starved. A socket may appear in two events of one wait
// (epoll with gated input: its input and its output are watched by two
// sets); take them in turn.
ec_error ec_poller_wait(ec_poller* p, ec_poll_event* out, std::size_t max, int timeout_ms,
                        std::size_t* count, bool* woken);

// ec_poller_wait() with the timeout in microseconds (-1: no limit). An
// interrupted sleep returns early with nothing; callers recompute their
// deadline and wait again.
ec_error ec_poller_wait_us(ec_poller* p, ec_poll_event* out, std::size_t max,
                           std::int64_t timeout_us, std::size_t* count, bool* woken);

// Whether this poller honors ec_poller_wait_us() timeouts under a
// millisecond: true with epoll_pwait2 (Linux 5.11+) or ppoll (Linux poll
// backend); false elsewhere (WSAPoll, plain poll), where the timeout is
// rounded up to whole milliseconds and callers should not rely on short waits.
bool ec_poller_sub_ms(ec_poller* p);

// Opens or closes the input gate (see EC_POLL_GATED; a new poller's gate is
// open). This is how an engine stops reading from every client at once
// (docs/contract.md S7) at a cost that does not grow with the number of
// clients where the OS allows it: no system call on epoll (the gated input
// interest lives in an epoll set of its own, in which the main set is
// nested: waits sleep on it while the gate is open, on the main set alone
// while it is closed), none on the poll() and WSAPoll backends either (the
// in-memory array is rewritten). Registering or modifying sockets while the gate is
// closed is fine: the gate applies to them at once. Level-triggered as ever:
// input that arrived while the gate was closed is reported once it opens.
void ec_poller_gate_input(ec_poller* p, bool open);

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
ec_error ec_thread_create(ec_thread_t* t, ec_thread_fn fn, void* arg, std::size_t stack_bytes);

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

// The same with the timeout in microseconds, for waits under a millisecond
// where ec_cond_fine_waits() says the system keeps them (POSIX); elsewhere
// (Windows: whole milliseconds, at the system timer's resolution, often
// 15.6 ms) the timeout is rounded up.
bool ec_cond_timed_wait_us(ec_cond_t* c, ec_mutex_t* m, std::uint64_t timeout_us);
// Whether a timed wait of a millisecond or two ends about on time.
bool ec_cond_fine_waits();

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
// deadlines (stop, back-off).
std::uint64_t ec_now_ms();

// Microseconds from an arbitrary fixed point, never going backwards
// (CLOCK_MONOTONIC / QueryPerformanceCounter); used for short windows (send
// coalescing) and latency measurement.
std::uint64_t ec_now_micros();

#endif  // ECHOCAST_PLATFORM_H
