// roster.h — who may be a client: ids, admission against max_clients, how
// many clients left for each reason (stats().disconnects), and how many of
// those connected are WebSocket clients (stats().wsClients).
//
// Both native engines admit through one Roster, so ids (1, 2, ...), the
// server-full rule and the tallies cannot drift apart. The id and admission
// calls are made by one thread at a time (the accept thread, or the poll
// loop); the tallies and the WebSocket count are atomic because stats()
// reads them from any thread.
#ifndef ECHOCAST_CORE_ROSTER_H
#define ECHOCAST_CORE_ROSTER_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "reasons.h"

namespace echocast {

class Roster {
 public:
  explicit Roster(std::uint32_t max_clients) : max_clients_(max_clients) {}
  Roster(const Roster&) = delete;
  Roster& operator=(const Roster&) = delete;

  // Gives the next connection its id. Returns false when `clients` (those
  // connected now) already fill max_clients: the connection is refused with
  // server-full, which is tallied here (the caller closes the socket and
  // reports the disconnect).
  bool admit(std::size_t clients, std::uint64_t* id) {
    *id = ++next_id_;
    if (clients < max_clients_) return true;
    tally(Reason::ServerFull);
    return false;
  }

  // docs/contract.md S15: whether a connection waiting to be authorized
  // may still take a slot (`clients`: those connected and those waiting).
  bool has_room(std::size_t clients) const { return clients < max_clients_; }
  // Refuses such a connection as admit() refuses one beyond max_clients:
  // an id for its disconnect event, server-full tallied.
  void refuse(std::uint64_t* id) {
    *id = ++next_id_;
    tally(Reason::ServerFull);
  }

  // Counts one client gone with reason `r`.
  void tally(Reason r) {
    tallies_[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }

  // A client joins the broadcast or leaves it (once each): the WebSocket ones
  // are counted here, for stats().wsClients (docs/contract.md S18).
  void joined(bool ws) {
    if (ws) ws_clients_.fetch_add(1, std::memory_order_relaxed);
  }
  void left(bool ws) {
    if (ws) ws_clients_.fetch_sub(1, std::memory_order_relaxed);
  }
  std::uint64_t ws_clients() const { return ws_clients_.load(std::memory_order_relaxed); }

  // The tallies by reason name, only those that happened (stats()).
  std::map<std::string, std::uint64_t> tallies() const {
    std::map<std::string, std::uint64_t> out;
    for (std::size_t i = 0; i < kReasonCount; ++i) {
      std::uint64_t n = tallies_[i].load(std::memory_order_relaxed);
      if (n != 0) out[reason_name(static_cast<Reason>(i))] = n;
    }
    return out;
  }

 private:
  std::uint32_t max_clients_;
  std::uint64_t next_id_ = 0;
  std::atomic<std::uint64_t> tallies_[kReasonCount] = {};
  std::atomic<std::uint64_t> ws_clients_{0};
};

}  // namespace echocast

#endif  // ECHOCAST_CORE_ROSTER_H
