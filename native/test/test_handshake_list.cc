// test_handshake_list.cc — the WebSocket connections awaiting their upgrade
// (core/handshake_list.h): the bound, removal in any order, expiry on an
// injected clock (each connection reported once), and the next deadline.
#include <vector>

#include "../core/connection.h"
#include "../core/handshake_list.h"
#include "unit.h"

using namespace echocast;

namespace {

struct Conns {
  std::vector<Connection*> all;
  explicit Conns(int n) {
    for (int i = 0; i < n; ++i) all.push_back(new Connection(Framing::Line, 64));
  }
  ~Conns() {
    for (Connection* c : all) delete c;
  }
  Connection* operator[](int i) { return all[static_cast<std::size_t>(i)]; }
};

}  // namespace

TEST(handshake_list_is_bounded) {
  Conns c(3);
  HandshakeList list(2, 100);
  CHECK(list.empty());
  CHECK(list.add(c[0], 1000));
  CHECK(!list.add(c[0], 1000));  // Listed once.
  CHECK(list.add(c[1], 1000));
  CHECK(list.full());
  CHECK(!list.add(c[2], 1000));
  CHECK(!list.listed(c[2]));
  list.remove(c[0]);
  CHECK(!list.full());
  CHECK(list.add(c[2], 1000));
  CHECK_EQ(list.size(), 2u);
}

TEST(handshake_list_removes_in_any_order) {
  Conns c(4);
  HandshakeList list(8, 100);
  for (int i = 0; i < 4; ++i) CHECK(list.add(c[i], 1000 + static_cast<std::uint64_t>(i)));
  list.remove(c[1]);
  list.remove(c[1]);  // Not listed any more: nothing.
  CHECK(!list.listed(c[1]));
  CHECK(list.listed(c[0]) && list.listed(c[2]) && list.listed(c[3]));
  list.remove(c[3]);
  list.remove(c[0]);
  CHECK_EQ(list.size(), 1u);
  CHECK(list.connections()[0] == c[2]);
  list.remove(c[2]);
  CHECK(list.empty());
  CHECK_EQ(list.next_deadline(), 0u);  // None left.
}

TEST(handshake_list_next_deadline_is_the_earliest) {
  Conns c(3);
  HandshakeList list(8, 100);
  CHECK_EQ(list.next_deadline(), 0u);
  list.add(c[0], 1050);
  CHECK_EQ(list.next_deadline(), 1150u);
  list.add(c[1], 1000);
  CHECK_EQ(list.next_deadline(), 1100u);
  list.add(c[2], 1200);
  CHECK_EQ(list.next_deadline(), 1100u);
}

TEST(handshake_list_expires_each_connection_once) {
  Conns c(3);
  HandshakeList list(8, 100);
  list.add(c[0], 1000);  // Due 1100.
  list.add(c[1], 1030);  // Due 1130.
  list.add(c[2], 1060);  // Due 1160.
  std::vector<Connection*> expired;
  CHECK_EQ(list.expire(1099, &expired), 1100u);
  CHECK(expired.empty());
  CHECK_EQ(list.expire(1130, &expired), 1160u);
  CHECK_EQ(expired.size(), 2u);
  CHECK(expired[0] == c[0] && expired[1] == c[1]);
  // Still listed until their owner removes them, but reported only once.
  CHECK_EQ(list.size(), 3u);
  expired.clear();
  CHECK_EQ(list.expire(1140, &expired), 1160u);
  CHECK(expired.empty());
  list.remove(c[0]);
  list.remove(c[1]);
  CHECK_EQ(list.expire(2000, &expired), 0u);
  CHECK_EQ(expired.size(), 1u);
  CHECK(expired[0] == c[2]);
}

TEST(handshake_list_bound_follows_the_options) {
  EngineOptions o;
  o.max_clients = 10;
  CHECK_EQ(max_handshakes(o), kMinHandshakes);
  o.max_clients = 1000;
  CHECK_EQ(max_handshakes(o), 1000u);
}

TEST(handshake_list_holding_counts_waiting_connections) {
  // docs/contract.md S15: connections waiting to be authorized hold client
  // slots until they leave the list; their deadline can move.
  Conns c(3);
  HandshakeList list(8, 100);
  CHECK(list.add(c[0], 1000));
  CHECK(list.add(c[1], 1000, 50));
  CHECK_EQ(list.next_deadline(), 1050u);
  CHECK_EQ(list.holding(), 0u);
  list.hold(c[0], 1500);
  list.hold(c[0], 1500);  // Once.
  list.hold(c[2], 1500);  // Not listed: nothing.
  CHECK_EQ(list.holding(), 1u);
  CHECK(c[0]->holds_slot() && !c[1]->holds_slot());
  std::vector<Connection*> expired;
  list.expire(1100, &expired);
  CHECK_EQ(expired.size(), 1u);
  CHECK(expired[0] == c[1] && c[1]->deadline_passed() && !c[0]->deadline_passed());
  CHECK_EQ(list.next_deadline(), 1500u);
  list.extend(c[1], 1200);  // A refused one's last moments.
  CHECK(!c[1]->deadline_passed());
  CHECK_EQ(list.next_deadline(), 1200u);
  list.remove(c[0]);
  CHECK_EQ(list.holding(), 0u);
  CHECK(!c[0]->holds_slot());
}
