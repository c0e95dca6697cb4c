// test_core.cc — the pure pieces of the native semantics core, with
// injected clocks: the poll engine's send coalescer, the stop sequence, the
// command inbox, the roster (ids, server-full, tallies) and the fanout's
// flow control and slow-consumer rule (docs/contract.md S7: pause past the
// limit, resume at half, cut at the deadline, at once with 0, at twice the
// limit always) and the finish of a closed peer (S11).
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

namespace {

FanoutOptions flow_opts(std::uint64_t limit, std::uint64_t slow_ms, bool echo = true) {
  FanoutOptions o;
  o.replay = 0;
  o.echo_to_sender = echo;
  o.max_backlog_bytes = limit;
  o.slow_consumer_ms = slow_ms;
  return o;
}

// Sends the member up to `bytes` of its backlog (whole frames) and records it.
void send_some(Fanout* f, FanoutMember* m, std::size_t bytes) {
  ec_iovec v[EC_MAX_IOV];
  FrameLog::Gathered g = f->gather(m, v, EC_MAX_IOV, bytes);
  f->advance(m, g.bytes, g.end);
}

bool contains(const std::vector<FanoutMember*>& v, const FanoutMember* m) {
  for (const FanoutMember* x : v)
    if (x == m) return true;
  return false;
}

// A clock that counts its readings (the fast path must not read it).
int g_clock_reads = 0;
std::uint64_t counting_clock() {
  ++g_clock_reads;
  return g_now;
}

}  // namespace

TEST(fanout_pause_starts_past_limit_and_ends_at_half_without_cut) {
  Fanout f(flow_opts(100, 2000));
  FanoutMember fast, slow;
  fast.id = 1;
  slow.id = 2;
  f.join(&fast);
  f.join(&slow);
  std::vector<FanoutMember*> cut;
  g_now = 10;
  g_clock_reads = 0;
  for (int i = 0; i < 10; ++i) put(&f, 0, 10);  // Backlog 100: at the limit.
  CHECK(f.input_open());
  Fanout::Review r = f.review(&counting_clock, &cut);
  CHECK(!r.paused);
  CHECK_EQ(g_clock_reads, 0);  // Nobody over: the clock was not read.
  put(&f, 0, 10);               // 110 > 100.
  CHECK(!f.input_open());       // The poll loop stops reading before the review.
  send_some(&f, &fast, 1 << 20);
  r = f.review(&counting_clock, &cut);
  CHECK(cut.empty());
  CHECK(r.paused);
  CHECK_EQ(r.deadline, 2010u);
  CHECK_EQ(f.read_pauses(), 1u);
  CHECK(!f.input_open());
  // The slow one reads 40 bytes: 70 > 50, still paused.
  g_now = 300;
  send_some(&f, &slow, 40);
  CHECK(!f.can_resume());
  r = f.review(&counting_clock, &cut);
  CHECK(r.paused);
  CHECK_EQ(f.read_paused_ms(g_now), 290u);  // A running episode counts to now.
  // 20 more: 50 = half the limit. advance() says so, the review resumes.
  send_some(&f, &slow, 20);
  CHECK(f.can_resume());
  g_now = 500;
  r = f.review(&counting_clock, &cut);
  CHECK(!r.paused);
  CHECK(cut.empty());
  CHECK(f.input_open());
  CHECK_EQ(f.read_pauses(), 1u);
  CHECK_EQ(f.read_paused_ms(g_now + 1000), 490u);  // Over: no longer counting.
  CHECK(!fast.closing && !slow.closing);
}

TEST(fanout_deadline_cuts_only_members_over_limit) {
  Fanout f(flow_opts(100, 50));
  FanoutMember stalled, lagging, fast;
  stalled.id = 1;
  lagging.id = 2;
  fast.id = 3;
  f.join(&stalled);
  f.join(&lagging);
  f.join(&fast);
  std::vector<FanoutMember*> cut;
  g_now = 1000;
  for (int i = 0; i < 12; ++i) put(&f, 0, 10);  // 120 each.
  send_some(&f, &lagging, 40);                  // 80: over half, under the limit.
  send_some(&f, &fast, 1 << 20);
  Fanout::Review r = f.review(&fake_clock, &cut);
  CHECK(r.paused);
  CHECK(cut.empty());
  g_now = 1049;
  r = f.review(&fake_clock, &cut);
  CHECK(r.paused);
  CHECK(cut.empty());
  g_now = 1050;  // The wait is over.
  r = f.review(&fake_clock, &cut);
  CHECK(!r.paused);
  CHECK_EQ(cut.size(), 1u);
  CHECK(cut[0] == &stalled);  // 80 <= 100: the lagging reader stays.
  CHECK_EQ(f.read_paused_ms(g_now), 50u);
  // The caller closes it; the log no longer waits for it.
  f.close(&stalled, Reason::SlowConsumer);
  cut.clear();
  r = f.review(&fake_clock, &cut);
  CHECK(!r.paused);
  CHECK(cut.empty());
  CHECK_EQ(f.log().bytes(), 80u);  // Held for the lagging reader only.
}

TEST(fanout_slow_consumer_ms_zero_cuts_at_once_and_never_pauses) {
  Fanout f(flow_opts(100, 0));
  FanoutMember a, b;
  a.id = 1;
  b.id = 2;
  f.join(&a);
  f.join(&b);
  std::vector<FanoutMember*> cut;
  g_now = 5;
  for (int i = 0; i < 10; ++i) put(&f, 0, 10);
  Fanout::Review r = f.review(&fake_clock, &cut);
  CHECK(cut.empty());  // At the limit.
  put(&f, 0, 1);
  send_some(&f, &b, 1 << 20);
  r = f.review(&fake_clock, &cut);
  CHECK(!r.paused);
  CHECK_EQ(cut.size(), 1u);
  CHECK(cut[0] == &a);
  CHECK_EQ(f.read_pauses(), 0u);
  // The cut member does not hold the trim (the caller closes it next).
  CHECK_EQ(f.log().frames(), 0u);
}

TEST(fanout_twice_the_limit_is_cut_at_once_even_while_paused) {
  Fanout f(flow_opts(100, 10000));
  FanoutMember stalled, other;
  stalled.id = 1;
  other.id = 2;
  f.join(&stalled);
  f.join(&other);
  std::vector<FanoutMember*> cut;
  g_now = 1;
  for (int i = 0; i < 11; ++i) put(&f, 0, 10);
  Fanout::Review r = f.review(&fake_clock, &cut);
  CHECK(r.paused);
  // Frames TCP cannot pace (broadcast, cluster input) keep coming.
  for (int i = 0; i < 8; ++i) put(&f, 0, 10);  // 190: not yet.
  r = f.review(&fake_clock, &cut);
  CHECK(cut.empty());
  put(&f, 0, 10);  // 200 = 2x the limit.
  r = f.review(&fake_clock, &cut);
  CHECK_EQ(cut.size(), 2u);  // Both: memory stays bounded, the deadline is far.
  CHECK(contains(cut, &stalled) && contains(cut, &other));
  CHECK(!r.paused);  // Nobody left over the limit.
}

TEST(fanout_over_half_counting_via_advance_and_close) {
  Fanout f(flow_opts(100, 1000));
  FanoutMember a, b, c;
  a.id = 1;
  b.id = 2;
  c.id = 3;
  f.join(&a);
  f.join(&b);
  f.join(&c);
  std::vector<FanoutMember*> cut;
  g_now = 1;
  for (int i = 0; i < 11; ++i) put(&f, 0, 10);  // 110 each: all over half.
  Fanout::Review r = f.review(&fake_clock, &cut);
  CHECK(r.paused);
  CHECK(a.over_half && b.over_half && c.over_half);
  send_some(&f, &a, 50);  // 60: still over half.
  CHECK(a.over_half);
  send_some(&f, &a, 10);  // 50.
  CHECK(!a.over_half);
  send_some(&f, &b, 1 << 20);
  CHECK(!f.can_resume());
  f.close(&c, Reason::ClientError);  // A closing member holds nobody back.
  CHECK(f.can_resume());
  r = f.review(&fake_clock, &cut);
  CHECK(!r.paused);
  CHECK(cut.empty());
  f.leave(&c);
}

TEST(fanout_finish_sends_what_was_queued_then_finished) {
  for (bool echo : {true, false}) {
    Fanout f(flow_opts(1 << 20, 2000, echo));
    FanoutMember quiet, busy, other;
    quiet.id = 1;
    busy.id = 2;
    other.id = 3;
    f.join(&quiet);
    f.join(&busy);
    f.join(&other);
    CHECK(f.finish(&quiet));  // Nothing queued: done at once.
    put(&f, 3, 10);
    put(&f, 2, 10);           // Busy's own frame.
    CHECK(!f.finish(&busy));  // 20 bytes queued (10 to send without echo).
    put(&f, 3, 10);           // After the FIN: not owed.
    ec_iovec v[4];
    FrameLog::Gathered g = f.gather(&busy, v, 4, 5);  // Part of the first frame.
    f.advance(&busy, 5, g.end);
    CHECK(!f.finished(&busy));
    f.advance(&busy, g.bytes - 5, g.end);
    // With echo the own frame is owed; without, it is passed over.
    CHECK_EQ(f.finished(&busy), !echo);
    if (echo) {
      g = f.gather(&busy, v, 4, 10);
      f.advance(&busy, g.bytes, g.end);
      CHECK(f.finished(&busy));
    }
    CHECK(!f.finished(&other));  // Not finishing.
    // A sender whose only queued frames are its own is finished at once
    // without echo.
    FanoutMember own;
    own.id = 4;
    f.join(&own);
    put(&f, 4, 10);
    CHECK_EQ(f.finish(&own), !echo);
  }
}

TEST(fanout_finishing_member_is_still_a_slow_consumer) {
  Fanout f(flow_opts(100, 0));
  FanoutMember a;
  a.id = 1;
  f.join(&a);
  for (int i = 0; i < 11; ++i) put(&f, 0, 10);
  CHECK(!f.finish(&a));
  std::vector<FanoutMember*> cut;
  f.review(&fake_clock, &cut);
  CHECK_EQ(cut.size(), 1u);
}

TEST(fanout_trim_keeps_replay_and_counts_deliveries) {
  FanoutOptions o = flow_opts(100, 50);
  o.replay = 1;
  Fanout f(o);
  FanoutMember a;
  a.id = 1;
  f.join(&a);
  put(&f, 0, 80);
  put(&f, 0, 80);
  std::vector<FanoutMember*> cut;
  g_now = 1;
  ec_iovec v[4];
  FrameLog::Gathered g = f.gather(&a, v, 4, 80);  // The first frame only.
  CHECK_EQ(g.bytes, 80u);
  f.advance(&a, g.bytes, g.end);
  f.review(&fake_clock, &cut);
  CHECK(cut.empty());
  CHECK(!f.paused());
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
