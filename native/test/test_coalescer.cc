// test_coalescer.cc — core/coalescer.h, the poll engine's send coalescer,
// with an injected clock: a quiet gap, the window and byte limits, urgent
// sends, and the coalescer turned off. See docs/architecture.md.
#include <cstdint>

#include "../core/poll/coalescer.h"
#include "unit.h"

using namespace echocast;

namespace {

// The tests' clock, in whatever unit the piece under test reads.
std::uint64_t g_now = 0;
std::uint64_t fake_clock() { return g_now; }

}  // namespace

TEST(coalescer_waits_for_a_quiet_gap) {
  g_now = 1000;
  Coalescer c(&fake_clock, true);
  CHECK(!c.due(100, false));  // First frames: a window opens.
  CHECK_EQ(c.wait_us(), static_cast<std::int64_t>(Coalescer::kGapUs));
  g_now += 30;
  CHECK(!c.due(200, false));  // More input 30 us later: the gap starts again.
  CHECK_EQ(c.wait_us(), static_cast<std::int64_t>(Coalescer::kGapUs));
  g_now += 49;
  CHECK(!c.due(200, false));
  g_now += 1;
  CHECK(c.due(200, false));  // 50 us of quiet.
  c.flushed(200);
  CHECK_EQ(c.wait_us(), -1);  // Nothing held.
}

TEST(coalescer_window_and_byte_limits) {
  g_now = 5000;
  Coalescer c(&fake_clock, true);
  std::uint64_t head = 0;
  CHECK(!c.due(head += 10, false));
  // Input every 40 us never leaves a 50 us gap; the window ends it at 300 us.
  bool sent = false;
  while (!sent && g_now < 5000 + 400) {
    g_now += 40;
    sent = c.due(head += 10, false);
  }
  CHECK(sent);
  CHECK(g_now >= 5000 + Coalescer::kWindowUs);
  CHECK(g_now < 5000 + Coalescer::kWindowUs + 40);
  c.flushed(head);
  // kBytes piled up since the last flush: at once.
  CHECK(c.due(head + Coalescer::kBytes, false));
  // Urgent (a replay, a writable client, stop): at once.
  c.flushed(head + Coalescer::kBytes);
  CHECK(c.due(head + Coalescer::kBytes + 1, true));
}

TEST(coalescer_disabled_sends_every_turn) {
  g_now = 0;
  Coalescer c(&fake_clock, false);
  CHECK(c.due(1, false));
  CHECK(!c.enabled());
  CHECK_EQ(c.wait_us(), -1);
}
