// test_roster.cc — core/roster.h: client ids, server-full refusals and the
// tallies of disconnect reasons. See docs/architecture.md.
#include <cstdint>
#include <map>
#include <string>

#include "../core/roster.h"
#include "unit.h"

using namespace echocast;

TEST(roster_ids_server_full_and_tallies) {
  Roster r(2);
  std::uint64_t id = 0;
  CHECK(r.admit(0, &id));
  CHECK_EQ(id, 1u);
  CHECK(r.admit(1, &id));
  CHECK_EQ(id, 2u);
  CHECK(!r.admit(2, &id));  // Full: refused, but the id is used up.
  CHECK_EQ(id, 3u);
  r.tally(Reason::ClientClosed);
  r.tally(Reason::ClientClosed);
  std::map<std::string, std::uint64_t> t = r.tallies();
  CHECK_EQ(t.size(), 2u);
  CHECK_EQ(t["server-full"], 1u);
  CHECK_EQ(t["client-closed"], 2u);
}

TEST(roster_counts_websocket_clients_as_they_join_and_leave) {
  Roster r(8);
  r.joined(false);
  r.joined(true);
  r.joined(true);
  CHECK_EQ(r.ws_clients(), 2u);
  r.left(false);
  r.left(true);
  CHECK_EQ(r.ws_clients(), 1u);
}
