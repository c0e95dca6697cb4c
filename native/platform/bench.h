// bench.h — the part of the platform layer only the load generator
// (native/bench) uses: a non-blocking connect, a per-thread CPU clock and
// SO_RCVLOWAT. The server never needs these, so they stay out of platform.h.
#ifndef ECHOCAST_PLATFORM_BENCH_H
#define ECHOCAST_PLATFORM_BENCH_H

#include <cstddef>
#include <cstdint>

#include "platform.h"

// Starts a TCP connection to host:port without blocking: resolves host (the
// first address that gives a socket is used), creates a non-blocking socket
// (TCP_NODELAY, not inherited, no SIGPIPE) and connects. EC_OK with
// *pending == false: connected already. EC_OK with *pending == true: wait for
// EC_POLL_OUT (or ERR/HUP) on it, then ask ec_connect_result(). On error
// nothing is left open and *syscall names the step ("getaddrinfo", "socket",
// "connect"). Needs ec_net_acquire() on Windows (getaddrinfo, socket).
// Note: WSAPoll on older Windows does not report a failed connect at all, so
// callers must also time out.
ec_error ec_connect_start(const char* host, int port, ec_socket_t* out, bool* pending,
                          const char** syscall);

// The outcome of a pending non-blocking connect (SO_ERROR): EC_OK once
// connected; EC_EAGAIN while still in progress.
ec_error ec_connect_result(ec_socket_t s);

// CPU time (user + system) the calling thread has used, in microseconds
// (CLOCK_THREAD_CPUTIME_ID / GetThreadTimes, whose resolution on Windows is
// the scheduler tick, about 15.6 ms).
std::uint64_t ec_thread_cpu_micros();

// Asks the poller to report the socket readable only once `bytes` are
// queued (SO_RCVLOWAT; 1 restores the default), so a client that only
// counts bytes is read in large chunks. A recv still returns what is there.
// False where unsupported (Windows: WSAPoll ignores it).
bool ec_socket_set_rcvlowat(ec_socket_t s, std::size_t bytes);

#endif  // ECHOCAST_PLATFORM_BENCH_H
