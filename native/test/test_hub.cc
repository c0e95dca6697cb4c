// test_hub.cc — the threads engine's hub: replay, total order, echoToSender,
// flow control (appenders wait while reading is paused) and the
// slow-consumer rule, the finish of a closed peer, trimming (bounded
// memory), drain,
// and writer threads sleeping on their condition variables while they send
// gathered bytes outside the lock.
#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "../core/threads/hub.h"
#include "unit.h"

using namespace echocast;

namespace {

void append(Hub& hub, std::uint64_t sender, const std::string& s, bool may_wait = false) {
  FrameBatch b;
  b.add(FrameView{reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), 0, s.size()});
  std::vector<HubMember*> wake;
  hub.append(b, sender, may_wait, &wake);
}

// Appends frames "0,", "1,", ... "n-1,"; returns them as one string.
std::string append_counting(Hub& hub, int n) {
  std::string all;
  for (int i = 0; i < n; ++i) {
    append(hub, 0, std::to_string(i) + ",");
    all += std::to_string(i) + ",";
  }
  return all;
}

// One writer turn: records the previous batch as sent, gathers the next one
// (sleeping for it if `block`) and appends its bytes to *got. False once the
// member is closing, or (not blocking) when nothing is pending.
bool writer_turn(Hub& hub, HubMember* m, std::size_t max_bytes, bool block, std::string* got) {
  ec_iovec v[EC_MAX_IOV];
  std::size_t n = 0;
  if (hub.next_batch(m, v, EC_MAX_IOV, max_bytes, &n, block) == BatchResult::Closed) return false;
  for (std::size_t i = 0; i < n; ++i) got->append(static_cast<const char*>(v[i].base), v[i].len);
  return n > 0;
}

// Takes everything pending (non-blocking) and marks it sent.
std::string drain(Hub& hub, HubMember* m) {
  std::string out;
  while (writer_turn(hub, m, 1 << 20, false, &out)) {
  }
  return out;
}

std::string reason_of(Hub& hub, HubMember* m) {
  Reason r;
  return hub.reason(m, &r) ? reason_name(r) : "";
}

// What a 10-byte frame counts in a backlog (docs/contract.md S16): the
// limits below are in such frames.
constexpr std::uint64_t kTen = 10 + FrameLog::kFrameOverhead;

// slow_ms 0 (cut at once) unless a test is about pausing.
FanoutOptions opts(std::uint32_t replay, bool echo = true, std::uint64_t backlog = 1 << 20,
                   std::uint64_t slow_ms = 0) {
  FanoutOptions o;
  o.replay = replay;
  o.echo_to_sender = echo;
  o.max_backlog_bytes = backlog;
  o.slow_consumer_ms = slow_ms;
  return o;
}

// Members with ids 1..n, joined to a hub on creation and left at the end.
class Joined {
 public:
  Joined(Hub* hub, int n) : hub_(hub), members_(static_cast<std::size_t>(n)) {
    for (int i = 0; i < n; ++i) {
      members_[i].id = static_cast<std::uint64_t>(i + 1);
      hub->join(&members_[i]);
    }
  }
  ~Joined() {
    for (HubMember& m : members_) hub_->leave(&m);
  }
  HubMember* operator[](int i) { return &members_[static_cast<std::size_t>(i)]; }

 private:
  Hub* hub_;
  std::vector<HubMember> members_;
};

// A writer thread: sleeps for batches until its member closes, after an
// optional first pause (as if waiting for a CPU).
struct WriterCtx {
  Hub* hub;
  HubMember* m;
  std::size_t max_bytes;
  std::uint64_t pause_ms;
  std::string got;
  bool closed = false;
  bool drained = false;  // with_writer: everything was sent before the close.
};
void writer(void* arg) {
  WriterCtx* w = static_cast<WriterCtx*>(arg);
  if (w->pause_ms > 0) {
    ec_mutex_t mu;
    ec_cond_t cv;
    ec_mutex_init(&mu);
    ec_cond_init(&cv);
    ec_mutex_lock(&mu);
    ec_cond_timed_wait(&cv, &mu, w->pause_ms);
    ec_mutex_unlock(&mu);
    ec_cond_destroy(&cv);
    ec_mutex_destroy(&mu);
  }
  for (;;) {
    ec_iovec v[EC_MAX_IOV];
    std::size_t n = 0;
    if (w->hub->next_batch(w->m, v, EC_MAX_IOV, w->max_bytes, &n) == BatchResult::Closed) break;
    for (std::size_t i = 0; i < n; ++i)
      w->got.append(static_cast<const char*>(v[i].base), v[i].len);
  }
  w->closed = true;
}

// Sleeps about `us` microseconds.
void nap_us(std::uint64_t us) {
  ec_mutex_t mu;
  ec_cond_t cv;
  ec_mutex_init(&mu);
  ec_cond_init(&cv);
  ec_mutex_lock(&mu);
  std::uint64_t end = ec_now_micros() + us;
  for (std::uint64_t now = ec_now_micros(); now < end; now = ec_now_micros())
    ec_cond_timed_wait_us(&cv, &mu, end - now);
  ec_mutex_unlock(&mu);
  ec_cond_destroy(&cv);
  ec_mutex_destroy(&mu);
}

// Runs a writer thread over `m` while `body` appends, then drains, closes
// and joins it.
template <typename Body>
WriterCtx with_writer(Hub& hub, HubMember* m, std::size_t max_bytes, std::uint64_t pause_ms,
                      Body body) {
  WriterCtx ctx{&hub, m, max_bytes, pause_ms, std::string(), false, false};
  ec_thread_t t;
  if (!ec_thread_create(&t, writer, &ctx, EC_THREAD_STACK_BYTES).ok()) return ctx;
  body();
  hub.close_input();
  ctx.drained = hub.wait_drained(ec_now_ms() + 5000);
  hub.close_member(m, Reason::ServerClosed);
  ec_thread_join(&t);
  return ctx;
}

}  // namespace

TEST(hub_seed_example) {
  Hub hub(opts(1));
  HubMember a, b;
  a.id = 1;
  b.id = 2;
  hub.join(&a);
  append(hub, 1, "Hello\n");
  append(hub, 1, "World\n");
  CHECK_EQ(drain(hub, &a), std::string("Hello\nWorld\n"));
  hub.join(&b);
  append(hub, 2, "Wow\n");
  append(hub, 1, "That is so cool!\n");
  CHECK_EQ(drain(hub, &b), std::string("World\nWow\nThat is so cool!\n"));
  CHECK_EQ(drain(hub, &a), std::string("Wow\nThat is so cool!\n"));
  FanoutCounters c = hub.counters();
  CHECK_EQ(c.frames_in, 4u);
  CHECK_EQ(c.frames_out, 7u);
  hub.leave(&a);
  hub.leave(&b);
}

TEST(hub_replay_zero_and_many) {
  Hub hub(opts(0));
  append(hub, 0, "x");
  CHECK_EQ(drain(hub, Joined(&hub, 1)[0]), std::string(""));

  Hub hub3(opts(3));
  append(hub3, 0, "a");
  append(hub3, 0, "b");
  Joined early(&hub3, 1);
  CHECK_EQ(drain(hub3, early[0]), std::string("ab"));  // Fewer than 3 exist.
  for (const char* f : {"c", "d", "e"}) append(hub3, 0, f);
  CHECK_EQ(drain(hub3, Joined(&hub3, 1)[0]), std::string("cde"));
}

TEST(hub_echo_to_sender_false_skips_own) {
  Hub hub(opts(1, false));
  Joined m(&hub, 2);
  append(hub, 1, "from a;");
  append(hub, 2, "from b;");
  append(hub, 0, "server;");
  append(hub, 1, "a again;");
  CHECK_EQ(drain(hub, m[0]), std::string("from b;server;"));
  CHECK_EQ(drain(hub, m[1]), std::string("from a;server;a again;"));
  CHECK_EQ(hub.counters().frames_out, 5u);
}

TEST(hub_slow_consumer_is_cut_others_continue) {
  Hub hub(opts(1, true, 10 * kTen));
  Joined m(&hub, 2);
  HubMember* fast = m[0];
  HubMember* slow = m[1];
  std::string ten(10, 'x');
  for (int i = 0; i < 10; ++i) append(hub, 0, ten);  // A backlog of 10 frames: at the limit.
  CHECK_EQ(reason_of(hub, slow), std::string(""));
  CHECK_EQ(drain(hub, fast).size(), 100u);
  append(hub, 0, ten);  // Slow's backlog: 11 frames, over it.
  CHECK_EQ(reason_of(hub, slow), std::string("slow-consumer"));
  CHECK_EQ(reason_of(hub, fast), std::string(""));
  CHECK_EQ(drain(hub, fast).size(), 10u);
  // The cut member no longer pins the log: only the replay frame is kept.
  append(hub, 0, ten);
  CHECK_EQ(drain(hub, fast).size(), 10u);
  CHECK_EQ(hub.log_frames(), 1u);
  ec_iovec v[4];
  std::size_t n = 0;
  CHECK(hub.next_batch(slow, v, 4, 1024, &n) == BatchResult::Closed);
}

TEST(hub_memory_bounded_by_limits) {
  Hub hub(opts(2, true, 1000));
  {
    Joined idle(&hub, 1);
    for (int i = 0; i < 10000; ++i) append(hub, 0, std::string(50, 'y'));
    CHECK(hub.log_bytes() <= 1000u + 100u);
    CHECK(hub.log_frames() <= 22u);
  }
  for (int i = 0; i < 100; ++i) append(hub, 0, std::string(50, 'z'));
  CHECK_EQ(hub.log_frames(), 2u);  // No members: only the replay frames.
}

TEST(hub_memory_bounded_by_limits_whatever_the_frame_size) {
  // docs/contract.md S16: 1-byte frames are cut at what they cost (their
  // entries), not at their bytes: a limit of 1000 holds about 30 of them,
  // not 2000.
  Hub hub(opts(0, true, 1000));
  Joined idle(&hub, 1);
  std::size_t most = 0;
  for (int i = 0; i < 10000; ++i) {
    append(hub, 0, "\n");
    most = std::max(most, hub.log_frames());
  }
  CHECK_EQ(reason_of(hub, idle[0]), std::string("slow-consumer"));
  // Cut as soon as its backlog passed the limit (slow_ms 0): by one frame.
  CHECK(most * (1 + FrameLog::kFrameOverhead) <= 1000u + 1 + FrameLog::kFrameOverhead);
  CHECK(most <= 1000 / 25 + 1);  // 24 bytes of entry or more beside each byte.
}

TEST(hub_batches_respect_max_bytes_and_order) {
  Hub hub(opts(0));
  Joined m(&hub, 1);
  std::string all;
  for (int i = 0; i < 100; ++i) {
    append(hub, 0, std::to_string(i) + ",");
    all += std::to_string(i) + ",";
  }
  std::string first;
  CHECK(writer_turn(hub, m[0], 10, false, &first));
  CHECK(first.size() >= 2 && first.size() <= 12);
  CHECK_EQ(first.substr(0, 2), std::string("0,"));
  CHECK_EQ(first + drain(hub, m[0]), all);
}

TEST(hub_in_flight_batch_pins_the_log_after_a_cut) {
  Hub hub(opts(0, true, 100));
  Joined m(&hub, 2);
  HubMember* slow = m[0];
  append(hub, 0, std::string(60, 'a'));
  ec_iovec v[4];
  std::size_t n = 0;
  CHECK(hub.next_batch(slow, v, 4, 1024, &n) == BatchResult::Frames);  // In flight.
  CHECK_EQ(n, 1u);
  for (int i = 0; i < 10; ++i) {
    append(hub, 0, std::string(60, 'b'));
    drain(hub, m[1]);
  }
  CHECK_EQ(reason_of(hub, slow), std::string("slow-consumer"));
  // Its bytes are still being sent: the log still holds them.
  CHECK_EQ(std::string(static_cast<const char*>(v[0].base), v[0].len), std::string(60, 'a'));
  CHECK(hub.log_frames() >= 10u);
  hub.send_failed(slow, Reason::ClientError);
  append(hub, 0, "c");
  drain(hub, m[1]);
  CHECK(hub.log_frames() <= 1u);  // Released once the writer reported back.
  CHECK_EQ(reason_of(hub, slow), std::string("slow-consumer"));  // The first reason stands.
}

TEST(hub_close_input_and_drain) {
  Hub hub(opts(1));
  Joined m(&hub, 1);
  append(hub, 0, "a");
  hub.close_input();
  FrameBatch late;
  late.add(FrameView{reinterpret_cast<const std::uint8_t*>("late"), 4, 0, 4});
  std::vector<HubMember*> wake;
  CHECK(!hub.append(late, 0, false, &wake));
  CHECK(!hub.wait_drained(ec_now_ms() + 20));
  CHECK_EQ(drain(hub, m[0]), std::string("a"));
  CHECK(hub.wait_drained(ec_now_ms()));
  hub.close_all(Reason::ServerClosed);
  CHECK_EQ(reason_of(hub, m[0]), std::string("server-closed"));
  CHECK(hub.close_member(m[0], Reason::ClientError) == Reason::ServerClosed);
}

TEST(hub_writer_thread_wakes_on_append_and_close) {
  Hub hub(opts(0));
  Joined m(&hub, 1);
  std::string all;
  WriterCtx ctx = with_writer(hub, m[0], 1 << 20, 0, [&] { all = append_counting(hub, 1000); });
  CHECK(ctx.closed);
  CHECK_EQ(ctx.got, all);
}

TEST(hub_pause_waits_then_cuts_the_stalled_member_at_the_deadline) {
  Hub hub(opts(0, true, 10 * kTen, 50));
  Joined stalled(&hub, 1);
  std::string ten(10, 'x');
  for (int i = 0; i < 11; ++i) append(hub, 0, ten, true);  // 11 frames: reading pauses.
  CHECK_EQ(hub.read_pauses(), 1u);
  CHECK_EQ(reason_of(hub, stalled[0]), std::string(""));
  std::uint64_t t0 = ec_now_ms();
  append(hub, 0, ten, true);  // Waits out the pause, whose end cuts.
  CHECK(ec_now_ms() - t0 >= 45);
  CHECK_EQ(reason_of(hub, stalled[0]), std::string("slow-consumer"));
  CHECK(hub.read_paused_ms() >= 45u);
}

TEST(hub_inject_append_never_waits_and_twice_the_limit_cuts) {
  Hub hub(opts(0, true, 10 * kTen, 10000));
  Joined stalled(&hub, 1);
  std::uint64_t t0 = ec_now_ms();
  for (int i = 0; i < 19; ++i) append(hub, 0, std::string(10, 'x'));  // may_wait false
  CHECK(ec_now_ms() - t0 < 1000);
  CHECK_EQ(reason_of(hub, stalled[0]), std::string(""));  // 19 frames: paused, waiting.
  append(hub, 0, std::string(10, 'x'));                   // 20 = 2x the limit.
  CHECK_EQ(reason_of(hub, stalled[0]), std::string("slow-consumer"));
  CHECK(ec_now_ms() - t0 < 1000);
}

TEST(hub_lagging_writer_paces_the_appender_and_is_not_cut) {
  Hub hub(opts(0, true, 10 * kTen, 5000));
  Joined m(&hub, 1);
  bool cut = false;
  WriterCtx ctx = with_writer(hub, m[0], 16, 30, [&] {
    for (int i = 0; i < 200; ++i) append(hub, 0, std::string(10, 'y'), true);  // Waits, never cuts.
    cut = !reason_of(hub, m[0]).empty();
  });
  CHECK(!cut);
  CHECK_EQ(ctx.got.size(), 2000u);
  CHECK(hub.log_bytes() <= 110u);
  CHECK(hub.read_pauses() >= 1u);
}

TEST(hub_finish_member_closes_after_what_was_queued) {
  Hub hub(opts(0));
  Joined m(&hub, 2);
  HubMember* quiet = m[0];
  HubMember* busy = m[1];
  hub.finish_member(quiet);  // Nothing queued: closed at once.
  CHECK_EQ(reason_of(hub, quiet), std::string("client-closed"));
  append(hub, 0, "ab");
  hub.finish_member(busy);
  append(hub, 0, "cd");  // After its FIN: not owed.
  CHECK_EQ(reason_of(hub, busy), std::string(""));
  std::string got;
  CHECK(writer_turn(hub, busy, 1, false, &got));  // "ab" in flight.
  CHECK_EQ(got, std::string("ab"));
  // Reporting it sent finishes the member: the writer is told to stop.
  ec_iovec v[4];
  std::size_t n = 0;
  CHECK(hub.next_batch(busy, v, 4, 1024, &n) == BatchResult::Closed);
  CHECK_EQ(reason_of(hub, busy), std::string("client-closed"));
}

// Pacing (hub.h): a writer whose frames keep coming dozes between sends,
// unsignalled by appends. Whatever is appended while it dozes, or while it
// decides to doze or to sleep, is still sent: by the doze's end, or by the
// signal a sleeping writer gets.
TEST(hub_paced_writer_loses_no_frame_appended_while_it_dozes_or_sleeps) {
  Hub hub(opts(0), 2000);
  Joined m(&hub, 1);
  std::string all;
  WriterCtx ctx = with_writer(hub, m[0], 1 << 20, 0, [&] {
    for (int round = 0; round < 6; ++round) {
      // Bursts closer together than the period: the writer is paced and
      // these land while it dozes or is about to.
      for (int i = 0; i < 40; ++i) {
        std::string f = std::to_string(round) + "." + std::to_string(i) + ",";
        append(hub, 0, f);
        all += f;
        nap_us(static_cast<std::uint64_t>(37 * (i % 5) + round * 11));
      }
      // Quiet for longer than a period: a doze ends with nothing owed, the
      // writer sleeps until signalled; the next frame must wake it.
      nap_us(6000);
    }
  });
  CHECK(ctx.drained);
  CHECK(ctx.closed);
  CHECK_EQ(ctx.got, all);
}

// A dozing writer is woken at once by a close, and by kPaceBytes owed to it
// (a period of 60 s: only those can end these dozes before the test does).
TEST(hub_paced_writer_wakes_for_bytes_owed_and_for_a_close) {
  Hub hub(opts(0, true, 16u << 20), 60u * 1000 * 1000);
  Joined m(&hub, 1);
  std::uint64_t t0 = ec_now_ms();
  std::string all;
  WriterCtx ctx = with_writer(hub, m[0], 1 << 20, 0, [&] {
    append(hub, 0, "a");  // Sent at once (the writer slept).
    nap_us(5000);
    append(hub, 0, "b");  // Sent again within the period: paced from now on.
    all = "ab";
    nap_us(20000);  // It dozes now, owed nothing.
    std::string big(Hub::kPaceBytes, 'z');
    append(hub, 0, big);  // Owed kPaceBytes: woken.
    all += big;
  });
  CHECK(ctx.drained);
  CHECK_EQ(ctx.got, all);
  CHECK(ec_now_ms() - t0 < 30000);  // Half the period: the closes woke it too.

  // With a backlog limit under twice kPaceBytes, half the limit owed wakes
  // it (a member over half the limit holds a pause, docs/contract.md S7).
  Hub small(opts(0, true, 1000, 60000), 60u * 1000 * 1000);
  Joined s(&small, 1);
  std::string got_small;
  WriterCtx ctx3 = with_writer(small, s[0], 1 << 20, 0, [&] {
    append(small, 0, "a");
    nap_us(5000);
    append(small, 0, "b");  // Paced from now on.
    nap_us(20000);
    std::string half(500, 'h');
    append(small, 0, half);  // Over half the limit with its entry: woken.
    got_small = "ab" + half;
  });
  CHECK(ctx3.drained);
  CHECK_EQ(ctx3.got, got_small);
  CHECK_EQ(reason_of(small, s[0]), std::string("server-closed"));  // Never cut.
  CHECK(ec_now_ms() - t0 < 30000);

  // Unpaced (period 0) as on a system with coarse timed waits: as before.
  Hub plain(opts(0), 0);
  Joined p(&plain, 1);
  std::string each;
  WriterCtx ctx2 =
      with_writer(plain, p[0], 1 << 20, 0, [&] { each = append_counting(plain, 200); });
  CHECK(ctx2.drained);
  CHECK_EQ(ctx2.got, each);
}

namespace {

// A member that records what its on_close saw: whether the writer still had
// a batch in flight (so a close frame could not follow it).
class Recorder : public HubMember {
 public:
  std::atomic<int> closes{0};
  std::atomic<bool> sending_at_close{false};

 protected:
  void on_close(Reason) override {
    sending_at_close.store(sending);
    closes.fetch_add(1);
  }
};

}  // namespace

// A member joined to `hub` whose writer took one frame and is sending it.
void batch_in_flight(Hub& hub, Recorder* m) {
  m->id = 1;
  hub.join(m);
  append(hub, 0, "echo");
  ec_iovec v[EC_MAX_IOV];
  std::size_t n = 0;
  CHECK(hub.next_batch(m, v, EC_MAX_IOV, 1 << 20, &n, false) == BatchResult::Frames);
  CHECK_EQ(n, 1u);
}

// The reader's close for its peer's close frame, waiting up to wait_ms.
void peer_closes(Hub& hub, Recorder* m, std::uint64_t wait_ms) {
  hub.close_member(m, Reason::ClientClosed, std::vector<std::uint8_t>{0x88, 0x00}, wait_ms);
}

TEST(hub_a_close_with_a_farewell_follows_the_batch_in_flight) {
  Hub hub(opts(0));
  Recorder m;
  batch_in_flight(hub, &m);
  append(hub, 0, "later");
  // The writer finishes its send a moment later (as if waiting for a CPU),
  // then goes on until closed.
  WriterCtx ctx{&hub, &m, 1 << 20, 100, std::string(), false, false};
  ec_thread_t t;
  CHECK(ec_thread_create(&t, writer, &ctx, EC_THREAD_STACK_BYTES).ok());
  // The peer's close, read meanwhile: it waits for that send, so on_close
  // finds the stream at a frame boundary, whoever ran first.
  peer_closes(hub, &m, 5000);
  ec_thread_join(&t);
  CHECK(ctx.closed);
  CHECK_EQ(m.closes.load(), 1);
  CHECK(!m.sending_at_close.load());
  CHECK_EQ(reason_of(hub, &m), std::string("client-closed"));
  hub.leave(&m);
}

TEST(hub_a_close_with_a_farewell_waits_no_longer_than_it_was_told) {
  Hub hub(opts(0));
  Recorder m;
  batch_in_flight(hub, &m);
  // A writer stuck in send (a peer that does not read): the close goes
  // after the wait, batch in flight or not, and the writer's next turn
  // finds it closed.
  std::uint64_t t0 = ec_now_ms();
  peer_closes(hub, &m, 50);
  CHECK(ec_now_ms() - t0 >= 50);
  CHECK_EQ(m.closes.load(), 1);
  CHECK(m.sending_at_close.load());
  ec_iovec v[EC_MAX_IOV];
  std::size_t n = 0;
  CHECK(hub.next_batch(&m, v, EC_MAX_IOV, 1 << 20, &n, true) == BatchResult::Closed);
  hub.leave(&m);
}
