// test_core.cc — the pure pieces of the native semantics core, with
// injected clocks: the poll engine's send coalescer, the stop sequence, the
// command inbox, the roster (ids, server-full, tallies) and the fanout's
// slow-consumer rule with and without a grace.
#include <string>
#include <vector>

#include "../core/coalescer.h"
#include "../core/fanout.h"
#include "../core/inbox.h"
#include "../core/roster.h"
#include "../core/stop_sequence.h"
#include "unit.h"

using namespace echocast;

namespace {

// The tests' clock, in whatever unit the piece under test reads.
std::uint64_t g_now = 0;
std::uint64_t fake_clock() { return g_now; }

class CountingWaker : public Inbox::Waker {
 public:
  void wake() override { ++wakes; }
  int wakes = 0;
};

FrameBatch frames_of(Framing framing, const std::string& wire) {
  FrameBatch b;
  split_into(framing, reinterpret_cast<const std::uint8_t*>(wire.data()), wire.size(), &b);
  return b;
}

void put(Fanout* f, std::uint64_t sender, std::size_t size) {
  std::string s(size, 'x');
  f->append(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), sender);
}

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

TEST(inbox_keeps_order_wakes_and_closes_on_stop) {
  Inbox inbox;
  CountingWaker waker;
  CHECK(!inbox.post_frames(frames_of(Framing::Line, "partial"), 0));  // No frame.
  inbox.attach(&waker);
  CHECK(inbox.post_frames(frames_of(Framing::Line, "a\nb\n"), 7));
  inbox.post_disconnect(3, Reason::ClusterUnavailable);
  inbox.post_forward(true);
  CHECK_EQ(waker.wakes, 3);
  CHECK(inbox.pending());
  std::vector<Command> got;
  inbox.take(&got);
  CHECK(!inbox.pending());
  CHECK_EQ(got.size(), 3u);
  CHECK(got[0].type == Command::Frames);
  CHECK_EQ(got[0].id, 7u);
  CHECK_EQ(got[0].frames.frames.size(), 2u);
  CHECK_EQ(std::string(got[0].frames.bytes.begin(), got[0].frames.bytes.end()),
           std::string("a\nb\n"));
  CHECK_EQ(got[0].frames.frames[1].payload_size, 1u);
  CHECK(got[1].type == Command::Disconnect);
  CHECK(got[1].reason == Reason::ClusterUnavailable);
  CHECK(got[2].type == Command::Forward && got[2].on);
  inbox.post_stop(250);
  CHECK(!inbox.post_frames(frames_of(Framing::Raw, "late"), 0));  // Input closed.
  inbox.take(&got);
  CHECK_EQ(got.size(), 1u);
  CHECK(got[0].type == Command::Stop);
  CHECK_EQ(got[0].deadline_ms, 250u);
  inbox.attach(nullptr);
  inbox.wake();  // Detached: nobody to wake, no crash.
  CHECK_EQ(waker.wakes, 4);
  std::uint64_t t0 = ec_now_ms();
  inbox.wait(20);  // Nothing queued: times out.
  CHECK(ec_now_ms() - t0 < 5000);
}

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

TEST(fanout_slow_rule_grace_is_one_parameter) {
  for (std::uint64_t grace : {std::uint64_t{0}, std::uint64_t{200}}) {
    FanoutOptions o;
    o.replay = 0;
    o.max_backlog_bytes = 100;
    o.slow_grace_ms = grace;
    Fanout f(o);
    FanoutMember a;
    a.id = 1;
    f.join(&a);
    put(&f, 0, 100);
    std::vector<FanoutMember*> cut;
    g_now = 10;
    Fanout::SlowCheck s = f.slow_consumers(&fake_clock, 0, &cut);
    CHECK(cut.empty());  // At the limit: not over.
    CHECK_EQ(s.now_ms, 0u);  // The clock was not even read.
    s = f.slow_consumers(&fake_clock, 1, &cut);  // One more byte would pass it.
    if (grace == 0) {
      CHECK_EQ(cut.size(), 1u);  // The poll engine: cut at once.
      continue;
    }
    CHECK(cut.empty());
    CHECK_EQ(s.wait_until, 10u + grace);
    g_now = 10 + grace - 1;
    s = f.slow_consumers(&fake_clock, 1, &cut);
    CHECK(cut.empty());
    g_now = 10 + grace;
    f.slow_consumers(&fake_clock, 1, &cut);
    CHECK_EQ(cut.size(), 1u);  // The threads engine: cut when the grace ends.
  }
}

TEST(fanout_progress_ends_the_grace_and_trim_keeps_replay) {
  FanoutOptions o;
  o.replay = 1;
  o.max_backlog_bytes = 100;
  o.slow_grace_ms = 50;
  Fanout f(o);
  FanoutMember a;
  a.id = 1;
  f.join(&a);
  put(&f, 0, 80);
  put(&f, 0, 80);
  std::vector<FanoutMember*> cut;
  g_now = 1;
  f.slow_consumers(&fake_clock, 0, &cut);
  CHECK(a.over);
  ec_iovec v[4];
  FrameLog::Gathered g = f.gather(&a, v, 4, 80);  // The first frame only.
  CHECK_EQ(g.bytes, 80u);
  f.advance(&a, g.bytes, g.end);
  CHECK(!a.over);  // Back under the limit: the grace is over.
  g_now = 1000;
  f.slow_consumers(&fake_clock, 0, &cut);
  CHECK(cut.empty());
  f.trim();
  CHECK_EQ(f.log().frames(), 1u);
  CHECK(!f.drained());
  g = f.gather(&a, v, 4, 1 << 20);
  f.advance(&a, g.bytes, g.end);
  CHECK(f.drained());
  CHECK_EQ(f.counters().frames_out, 2u);
  f.close(&a, Reason::ServerClosed);
  CHECK(!f.close(&a, Reason::ClientError));
  CHECK(a.reason == Reason::ServerClosed);
  f.leave(&a);
  CHECK(f.members().empty());
}
