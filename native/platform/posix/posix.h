// posix.h — helpers the POSIX implementation files share (file-descriptor
// flags and the self-pipe); never included outside native/platform/posix.
#ifndef ECHOCAST_PLATFORM_POSIX_H
#define ECHOCAST_PLATFORM_POSIX_H

#include <time.h>

#include "../internal.h"

namespace ec_internal {

// Sets FD_CLOEXEC, so child processes do not inherit the descriptor.
void set_cloexec(int fd);

// Sets O_NONBLOCK on or off.
void set_fd_nonblocking(int fd, bool on);

// Creates a pipe whose ends are close-on-exec and non-blocking: the wake-up
// channel of a blocking listener and of the poll() backend. Writing a byte
// to fds[1] makes fds[0] readable.
ec_error make_wake_pipe(int fds[2]);

// Writes one byte to a wake pipe. The pipe is non-blocking: if it is full,
// a wake-up is pending already.
void poke_wake_pipe(int fd);

// Reads a wake pipe empty.
void drain_wake_pipe(int fd);

// A timeout in microseconds (not negative) as a timespec (clock.cc).
timespec timespec_from_us(std::int64_t us);

}  // namespace ec_internal

#endif  // ECHOCAST_PLATFORM_POSIX_H
