// test_fanout.cc — core/fanout: flow control and the slow-consumer rule
// (docs/contract.md S7: pause past the limit, resume at half, cut at the
// deadline, at once with 0, at twice the limit always), the finish of a
// closed peer (S11), and trimming with replay. Injected clocks. See
// docs/architecture.md.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "../core/fanout.h"
#include "unit.h"

using namespace echocast;

namespace {

// The tests' clock, in whatever unit the piece under test reads.
std::uint64_t g_now = 0;
std::uint64_t fake_clock() { return g_now; }

// What a 10-byte frame counts in a backlog (docs/contract.md S16): the
// limits below are in such frames.
constexpr std::uint64_t kTen = 10 + FrameLog::kFrameOverhead;

void put(Fanout* f, std::uint64_t sender, std::size_t size) {
  std::string s(size, 'x');
  f->append(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), sender);
}

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

// At `now`, appends `frames` frames of 10 bytes from nobody, then reviews.
Fanout::Review fill_and_review(Fanout* f, int frames, std::uint64_t now,
                               std::vector<FanoutMember*>* cut) {
  g_now = now;
  for (int i = 0; i < frames; ++i) put(f, 0, 10);
  return f->review(&fake_clock, cut);
}

// Gives the members the ids 1, 2, ... in order, and joins them.
void join_all(Fanout* f, std::initializer_list<FanoutMember*> members) {
  std::uint64_t id = 0;
  for (FanoutMember* m : members) {
    m->id = ++id;
    f->join(m);
  }
}

}  // namespace

TEST(fanout_pause_starts_past_limit_and_ends_at_half_without_cut) {
  Fanout f(flow_opts(10 * kTen, 2000));
  FanoutMember fast, slow;
  join_all(&f, {&fast, &slow});
  std::vector<FanoutMember*> cut;
  g_now = 10;
  g_clock_reads = 0;
  for (int i = 0; i < 10; ++i) put(&f, 0, 10);  // A backlog of 10 frames: at the limit.
  CHECK(f.input_open());
  Fanout::Review r = f.review(&counting_clock, &cut);
  CHECK(!r.paused);
  CHECK_EQ(g_clock_reads, 0);  // Nobody over: the clock was not read.
  put(&f, 0, 10);              // 11 frames: over it.
  CHECK(!f.input_open());      // The poll loop stops reading before the review.
  send_some(&f, &fast, 1 << 20);
  r = f.review(&counting_clock, &cut);
  CHECK(cut.empty());
  CHECK(r.paused);
  CHECK_EQ(r.deadline, 2010u);
  CHECK_EQ(f.read_pauses(), 1u);
  CHECK(!f.input_open());
  // The slow one reads 4 frames: 7 > 5, still paused.
  g_now = 300;
  send_some(&f, &slow, 40);
  CHECK(!f.can_resume());
  r = f.review(&counting_clock, &cut);
  CHECK(r.paused);
  CHECK_EQ(f.read_paused_ms(g_now), 290u);  // A running episode counts to now.
  // 2 more: 5 = half the limit. advance() says so, the review resumes.
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
  Fanout f(flow_opts(10 * kTen, 50));
  FanoutMember stalled, lagging, fast;
  join_all(&f, {&stalled, &lagging, &fast});
  std::vector<FanoutMember*> cut;
  g_now = 1000;
  for (int i = 0; i < 12; ++i) put(&f, 0, 10);  // 12 frames each.
  send_some(&f, &lagging, 40);                  // 8: over half, under the limit.
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
  CHECK(cut[0] == &stalled);  // 8 <= 10: the lagging reader stays.
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
  Fanout f(flow_opts(10 * kTen, 0));
  FanoutMember a, b;
  join_all(&f, {&a, &b});
  std::vector<FanoutMember*> cut;
  fill_and_review(&f, 10, 5, &cut);
  CHECK(cut.empty());  // At the limit.
  put(&f, 0, 1);
  send_some(&f, &b, 1 << 20);
  Fanout::Review r = f.review(&fake_clock, &cut);
  CHECK(!r.paused);
  CHECK_EQ(cut.size(), 1u);
  CHECK(cut[0] == &a);
  CHECK_EQ(f.read_pauses(), 0u);
  // The cut member does not hold the trim (the caller closes it next).
  CHECK_EQ(f.log().frames(), 0u);
}

TEST(fanout_twice_the_limit_is_cut_at_once_even_while_paused) {
  Fanout f(flow_opts(10 * kTen, 10000));
  FanoutMember stalled, other;
  join_all(&f, {&stalled, &other});
  std::vector<FanoutMember*> cut;
  Fanout::Review r = fill_and_review(&f, 11, 1, &cut);
  CHECK(r.paused);
  // Frames TCP cannot pace (broadcast, cluster input) keep coming.
  for (int i = 0; i < 8; ++i) put(&f, 0, 10);  // 19 frames: not yet.
  r = f.review(&fake_clock, &cut);
  CHECK(cut.empty());
  put(&f, 0, 10);  // 20 = 2x the limit.
  r = f.review(&fake_clock, &cut);
  CHECK_EQ(cut.size(), 2u);  // Both: memory stays bounded, the deadline is far.
  CHECK(contains(cut, &stalled) && contains(cut, &other));
  CHECK(!r.paused);  // Nobody left over the limit.
}

TEST(fanout_over_half_counting_via_advance_and_close) {
  Fanout f(flow_opts(10 * kTen, 1000));
  FanoutMember a, b, c;
  join_all(&f, {&a, &b, &c});
  std::vector<FanoutMember*> cut;
  Fanout::Review r = fill_and_review(&f, 11, 1, &cut);  // 11 frames each: all over half.
  CHECK(r.paused);
  CHECK(a.over_half && b.over_half && c.over_half);
  send_some(&f, &a, 50);  // 6: still over half.
  CHECK(a.over_half);
  send_some(&f, &a, 10);  // 5.
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
    join_all(&f, {&quiet, &busy, &other});
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
  Fanout f(flow_opts(10 * kTen, 0));
  FanoutMember a;
  join_all(&f, {&a});
  for (int i = 0; i < 11; ++i) put(&f, 0, 10);
  CHECK(!f.finish(&a));
  std::vector<FanoutMember*> cut;
  f.review(&fake_clock, &cut);
  CHECK_EQ(cut.size(), 1u);
}

TEST(fanout_trim_keeps_replay_and_counts_deliveries) {
  // Room for one 80-byte frame and its entry, not two.
  FanoutOptions o = flow_opts(100 + FrameLog::kFrameOverhead, 50);
  o.replay = 1;
  Fanout f(o);
  FanoutMember a;
  join_all(&f, {&a});
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

TEST(fanout_smallest_frames_are_paced_and_cut_at_what_they_cost) {
  // docs/contract.md S16: a backlog counts each frame's entry beside its
  // bytes, so 1-byte frames pause reading, and are cut, at the memory they
  // take: a limit of 1000 is about 30 of them, not 1000.
  const std::uint64_t one = 1 + FrameLog::kFrameOverhead;
  Fanout f(flow_opts(1000, 2000));
  FanoutMember stalled, reader;
  join_all(&f, {&stalled, &reader});
  std::vector<FanoutMember*> cut;
  g_now = 1;
  int frames = 0;
  while (f.input_open() && frames < 5000) {
    put(&f, 0, 1);
    ++frames;
  }
  CHECK_EQ(static_cast<std::uint64_t>(frames), 1000 / one + 1);
  // An entry is at least a pointer, a size, a sender and a position: 24
  // bytes or more beside each 1-byte frame.
  CHECK(frames <= 1000 / 25 + 1);
  CHECK_EQ(f.log().backlog(stalled.cursor), frames * one);
  CHECK_EQ(f.log().cost(), frames * one);
  send_some(&f, &reader, 1 << 20);
  Fanout::Review r = f.review(&fake_clock, &cut);
  CHECK(r.paused);
  CHECK(cut.empty());
  // Frames TCP cannot pace: cut at twice the limit, in frames' cost too.
  while (cut.empty() && frames < 5000) {
    put(&f, 0, 1);
    ++frames;
    send_some(&f, &reader, 1 << 20);
    f.review(&fake_clock, &cut);
  }
  CHECK_EQ(cut.size(), 1u);
  CHECK(cut[0] == &stalled);
  CHECK_EQ(static_cast<std::uint64_t>(frames), (2000 + one - 1) / one);
  CHECK(!reader.over_half);
  // Empty frames (length framing's 4-byte prefix, nothing after it) alike.
  Fanout g(flow_opts(1000, 2000));
  FanoutMember idle;
  join_all(&g, {&idle});
  frames = 0;
  while (g.input_open() && frames < 5000) {
    put(&g, 0, 4);
    ++frames;
  }
  CHECK_EQ(static_cast<std::uint64_t>(frames), 1000 / (4 + FrameLog::kFrameOverhead) + 1);
}

TEST(fanout_one_read_cannot_take_a_backlog_at_the_limit_to_twice_it) {
  // docs/contract.md S7, S16: a read's frames may cost 1 + kFrameOverhead a
  // byte (one '\n' each); a read is capped so that they stay within the
  // limit, and so a reader at the limit is paused, not cut, by one read.
  const std::uint64_t limit = 256 * 1024;
  Fanout f(flow_opts(limit, 2000));
  std::size_t n = f.read_bytes(256 * 1024);
  CHECK(n * (1 + FrameLog::kFrameOverhead) <= limit);
  CHECK_EQ(n, limit / (1 + FrameLog::kFrameOverhead));
  CHECK_EQ(Fanout(flow_opts(64u << 20, 2000)).read_bytes(256 * 1024), 256u * 1024);
  CHECK_EQ(Fanout(flow_opts(100, 2000)).read_bytes(256 * 1024), Fanout::kMinReadBytes);
  FanoutOptions ws = flow_opts(1u << 20, 2000);
  ws.ws = true;
  CHECK_EQ(Fanout(ws).read_bytes(256 * 1024), (1u << 20) / (1 + FrameLog::kWsFrameOverhead));
  // A read of that many 1-byte frames from a backlog at the limit: paused, not cut.
  FanoutMember stalled;
  join_all(&f, {&stalled});
  std::vector<FanoutMember*> cut;
  g_now = 1;
  while (f.log().backlog(stalled.cursor) + 1 + FrameLog::kFrameOverhead <= limit) put(&f, 0, 1);
  CHECK(f.input_open());
  for (std::size_t i = 0; i < n; ++i) put(&f, 0, 1);
  Fanout::Review r = f.review(&fake_clock, &cut);
  CHECK(r.paused);
  CHECK(cut.empty());
}
