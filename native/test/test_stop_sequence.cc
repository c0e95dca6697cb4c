// test_stop_sequence.cc — core/stop_sequence.h: a stop's flush, close and
// linger, on the clock readings it is given. See docs/architecture.md.
#include "../core/stop_sequence.h"
#include "unit.h"

using namespace echocast;

TEST(stop_sequence_flush_close_linger) {
  StopSequence s;
  CHECK_EQ(s.next_ms(), 0u);
  CHECK(s.begin(1000, 500));
  CHECK(!s.begin(1000, 500));  // Once.
  CHECK(s.stopping());
  CHECK_EQ(s.next_ms(), 1500u);
  CHECK(!s.close_now(1200, false));  // Not drained, before the deadline.
  CHECK(!s.done(1200, true));        // Not closing yet.
  CHECK(s.close_now(1300, true));    // Drained: close gracefully now.
  CHECK(s.closing());
  CHECK(!s.close_now(1300, true));
  // The linger runs to max(deadline, now + kLingerMs).
  CHECK_EQ(s.next_ms(), 1300u + StopSequence::kLingerMs);
  CHECK(!s.done(1400, false));
  CHECK(s.done(1400, true));  // Every client gone.
  CHECK(s.done(1300 + StopSequence::kLingerMs, false));

  StopSequence late;
  late.begin(0, 2000);
  CHECK(late.close_now(2000, false));  // The deadline passed undrained.
  CHECK_EQ(late.next_ms(), 2000u + StopSequence::kLingerMs);
  StopSequence zero;
  zero.begin(10, 0);
  CHECK(zero.close_now(10, false));
  CHECK_EQ(zero.next_ms(), 10u + StopSequence::kLingerMs);
}
