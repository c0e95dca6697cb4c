// listening.h — what both native engines do with their listening socket:
// open it (with the network stack, e.g. WSAStartup), close it, and tell
// accept errors apart.
#ifndef ECHOCAST_CORE_LISTENING_H
#define ECHOCAST_CORE_LISTENING_H

#include <cstdint>

#include "engine.h"

namespace echocast {

// Pending connections the kernel may queue.
constexpr int kListenBacklog = 511;
// Out of descriptors or memory: how long accepting pauses.
constexpr std::uint64_t kAcceptBackoffMs = 100;

// Acquires the network and listens on the options' host and port. On
// failure everything is released again and *result says what failed.
bool open_listener(const EngineOptions& options, ec_listener** out, ListenResult* result);

// Closes the listener (if any) and releases the network once more: the
// undo of a successful open_listener().
void close_listener(ec_listener** listener);

// What an accept error means for the accepting loop.
enum class AcceptError {
  Transient,  // That connection failed; keep accepting.
  Shortage,   // Out of descriptors or memory: report once, pause, retry.
  Fatal,      // Report it and stop accepting.
};
AcceptError classify_accept_error(ec_err code);

}  // namespace echocast

#endif  // ECHOCAST_CORE_LISTENING_H
