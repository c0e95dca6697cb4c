// listening.h — what both native engines do with their listening socket:
// open it (with the network stack, e.g. WSAStartup), close it, and tell
// accept errors apart.
#ifndef ECHOCAST_CORE_LISTENING_H
#define ECHOCAST_CORE_LISTENING_H

#include <cstdint>
#include <string>

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

// The same for a non-blocking listening socket, which a poller watches.
bool open_listener(const EngineOptions& options, ec_socket_t* out, ListenResult* result);
void close_listener(ec_socket_t* listener);

// Opens the TCP listener and, when the options ask for one, the WebSocket
// listener (docs/contract.md §6) on its own host and port, by the same rules,
// for either kind of listener. If the second fails the first is closed again
// and *result describes the WebSocket listener's failure (ws_failed set).
template <typename Listener>
bool open_listeners(const EngineOptions& options, Listener* tcp, Listener* ws,
                    ListenResult* result) {
  if (!open_listener(options, tcp, result)) return false;
  if (!options.has_ws()) return true;
  EngineOptions wo = options;
  wo.host = options.ws_host;
  wo.port = options.ws_port;
  ListenResult wr;
  if (!open_listener(wo, ws, &wr)) {
    close_listener(tcp);
    wr.ws_failed = true;
    *result = wr;
    return false;
  }
  result->ws_bound = wr.bound;
  return true;
}

// A connection just accepted, and its peer.
struct Accepted {
  ec_socket_t sock = EC_INVALID_SOCKET;
  std::string address;
  int port = 0;
  ec_peer_address peer;  // The address as bytes, for the address lists.
};

// What the accepting loop does after an accept error.
enum class AcceptStep {
  Retry,  // That connection failed; keep accepting.
  Pause,  // Out of descriptors or memory: pause kAcceptBackoffMs, then retry.
  Stop,   // A hard error: stop accepting.
};

// The accept-error rules: which errors are transient, and that a shortage
// is reported once per episode (not once per failed accept) while a hard
// error is always reported.
class AcceptErrors {
 public:
  // Reports `err` through the sink if it should be, and says what next.
  AcceptStep on_error(const ec_error& err, EventSink* sink);
  // A connection was accepted: a shortage episode, if any, is over.
  void accepted() { reported_shortage_ = false; }

 private:
  bool reported_shortage_ = false;
};

}  // namespace echocast

#endif  // ECHOCAST_CORE_LISTENING_H
