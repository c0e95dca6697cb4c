// handshake_list.h — the connections not yet admitted, as both native
// engines keep them: WebSocket connections awaiting their upgrade
// (docs/contract.md §6), and connections waiting to be authorized (a TCP
// client's first frame, the authorize hook's answer: docs/contract.md S15).
// Bounded (each holds a socket and up to a request head or a frame), each
// with a deadline, found again in O(1) to be taken off the list. Those
// waiting to be authorized hold a client slot (holding()): admission counts
// them against max_clients.
// docs/architecture.md says which file owns which rule.
//
// Pure: no I/O, no lock, no clock of its own (callers pass the time, so
// tests inject it). The poll engine uses it from its loop thread; the
// threads engine under its mutex.
#ifndef ECHOCAST_CORE_HANDSHAKE_LIST_H
#define ECHOCAST_CORE_HANDSHAKE_LIST_H

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine.h"

namespace echocast {

class Connection;

// How many WebSocket handshakes may be in progress at once: max_clients,
// but never fewer than this, so that a few connections that say nothing
// cannot keep a small server's WebSocket clients out (they hold no slot).
constexpr std::size_t kMinHandshakes = 64;
inline std::size_t max_handshakes(const EngineOptions& o) {
  return o.max_clients > kMinHandshakes ? o.max_clients : kMinHandshakes;
}

class HandshakeList {
 public:
  // timeout_ms: how long a WebSocket connection may take to complete its
  // opening handshake before it is dropped (EngineOptions::handshake_timeout_ms).
  HandshakeList(std::size_t max, std::uint64_t timeout_ms) : max_(max), timeout_ms_(timeout_ms) {}
  HandshakeList(const HandshakeList&) = delete;
  HandshakeList& operator=(const HandshakeList&) = delete;

  std::size_t size() const { return list_.size(); }
  bool empty() const { return list_.empty(); }
  bool full() const { return list_.size() >= max_; }
  const std::vector<Connection*>& connections() const { return list_; }

  // Lists `c`, due at now_ms + the timeout (or `timeout_ms`). False (not
  // listed) when full.
  bool add(Connection* c, std::uint64_t now_ms);
  bool add(Connection* c, std::uint64_t now_ms, std::uint64_t timeout_ms);
  // A listed connection now waits to be authorized: it holds a client slot
  // until it is removed, and is due at due_ms.
  void hold(Connection* c, std::uint64_t due_ms);
  // Listed connections holding a client slot.
  std::size_t holding() const { return holding_; }
  // A listed connection's new deadline (e.g. a refused one's last moments).
  void extend(Connection* c, std::uint64_t due_ms);
  // Takes `c` off the list; nothing when it is not listed.
  void remove(Connection* c);
  bool listed(const Connection* c) const;

  // Puts each listed connection whose deadline has passed into *expired,
  // once: it stays listed until remove(), since only its owner knows when
  // it is gone (the poll loop drops it at once; the threads engine
  // interrupts its socket and its reader ends it). Returns next_deadline().
  std::uint64_t expire(std::uint64_t now_ms, std::vector<Connection*>* expired);
  // The earliest deadline of a connection not yet expired, or earlier (0:
  // none): a wait bounded by it never oversleeps one.
  std::uint64_t next_deadline() const { return next_; }

 private:
  std::size_t max_;
  std::uint64_t timeout_ms_;
  std::vector<Connection*> list_;
  std::uint64_t next_ = 0;
  std::size_t holding_ = 0;
};

}  // namespace echocast

#endif  // ECHOCAST_CORE_HANDSHAKE_LIST_H
