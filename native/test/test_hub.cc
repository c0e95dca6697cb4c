// test_hub.cc — the frame log: replay, total order, echoToSender, the
// slow-consumer rule, trimming (bounded memory), drain, and a writer thread
// sleeping on its condition variable.
#include <memory>
#include <string>
#include <vector>

#include "../core/hub.h"
#include "unit.h"

using echocast::BatchResult;
using echocast::FrameRef;
using echocast::Hub;
using echocast::HubFrame;
using echocast::HubMember;
using echocast::HubOptions;

namespace {

FrameRef frame(std::uint64_t sender, const std::string& s) {
  auto f = std::make_shared<HubFrame>();
  f->sender = sender;
  f->bytes.assign(s.begin(), s.end());
  f->payload_size = s.size();
  return f;
}

void append(Hub& hub, std::uint64_t sender, const std::string& s) {
  FrameRef f = frame(sender, s);
  hub.append(&f, 1);
}

// Takes everything pending (non-blocking) and marks it sent.
std::vector<std::string> drain(Hub& hub, HubMember* m) {
  std::vector<std::string> out;
  for (;;) {
    std::vector<FrameRef> batch;
    std::uint64_t end = 0;
    if (hub.next_batch(m, &batch, &end, 1 << 20, false) == BatchResult::Closed) break;
    if (batch.empty()) break;
    for (const FrameRef& f : batch) out.emplace_back(f->bytes.begin(), f->bytes.end());
    hub.complete_batch(m, end);
  }
  return out;
}

HubOptions opts(std::uint32_t replay, bool echo = true, std::uint64_t backlog = 1 << 20,
               std::uint64_t grace_ms = 0) {
  HubOptions o;
  o.replay = replay;
  o.echo_to_sender = echo;
  o.max_backlog_bytes = backlog;
  o.slow_grace_ms = grace_ms;
  return o;
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
  CHECK(drain(hub, &a) == (std::vector<std::string>{"Hello\n", "World\n"}));
  hub.join(&b);
  append(hub, 2, "Wow\n");
  append(hub, 1, "That is so cool!\n");
  CHECK(drain(hub, &b) == (std::vector<std::string>{"World\n", "Wow\n", "That is so cool!\n"}));
  CHECK(drain(hub, &a) == (std::vector<std::string>{"Wow\n", "That is so cool!\n"}));
  echocast::HubCounters c = hub.counters();
  CHECK_EQ(c.frames_in, 4u);
  CHECK_EQ(c.frames_out, 7u);
  hub.leave(&a);
  hub.leave(&b);
}

TEST(hub_replay_zero_and_many) {
  Hub hub(opts(0));
  append(hub, 0, "x");
  HubMember m;
  m.id = 1;
  hub.join(&m);
  CHECK(drain(hub, &m).empty());
  hub.leave(&m);

  Hub hub3(opts(3));
  append(hub3, 0, "a");
  append(hub3, 0, "b");
  HubMember n;
  n.id = 2;
  hub3.join(&n);
  CHECK(drain(hub3, &n) == (std::vector<std::string>{"a", "b"}));  // Fewer than 3 exist.
  append(hub3, 0, "c");
  append(hub3, 0, "d");
  append(hub3, 0, "e");
  HubMember o;
  o.id = 3;
  hub3.join(&o);
  CHECK(drain(hub3, &o) == (std::vector<std::string>{"c", "d", "e"}));
  hub3.leave(&n);
  hub3.leave(&o);
}

TEST(hub_echo_to_sender_false_skips_own) {
  Hub hub(opts(1, false));
  HubMember a, b;
  a.id = 1;
  b.id = 2;
  hub.join(&a);
  hub.join(&b);
  append(hub, 1, "from a");
  append(hub, 2, "from b");
  append(hub, 0, "server");
  CHECK(drain(hub, &a) == (std::vector<std::string>{"from b", "server"}));
  CHECK(drain(hub, &b) == (std::vector<std::string>{"from a", "server"}));
  hub.leave(&a);
  hub.leave(&b);
}

TEST(hub_slow_consumer_is_cut_others_continue) {
  Hub hub(opts(1, true, 100));
  HubMember fast, slow;
  fast.id = 1;
  slow.id = 2;
  hub.join(&fast);
  hub.join(&slow);
  std::string ten(10, 'x');
  for (int i = 0; i < 10; ++i) append(hub, 0, ten);  // Backlog 100: at the limit.
  CHECK(hub.reason(&slow) == nullptr);
  CHECK_EQ(drain(hub, &fast).size(), 10u);
  append(hub, 0, ten);  // Slow's backlog 110 > 100.
  CHECK(hub.reason(&slow) != nullptr);
  CHECK_EQ(std::string(hub.reason(&slow)), std::string("slow-consumer"));
  CHECK(hub.reason(&fast) == nullptr);
  CHECK_EQ(drain(hub, &fast).size(), 1u);
  // The cut member no longer pins the log: only the replay frame is kept.
  append(hub, 0, ten);
  CHECK_EQ(drain(hub, &fast).size(), 1u);
  CHECK_EQ(hub.log_frames(), 1u);
  std::vector<FrameRef> batch;
  std::uint64_t end = 0;
  CHECK(hub.next_batch(&slow, &batch, &end, 1024, true) == BatchResult::Closed);
  hub.leave(&fast);
  hub.leave(&slow);
}

TEST(hub_memory_bounded_by_limits) {
  Hub hub(opts(2, true, 1000));
  HubMember idle;
  idle.id = 1;
  hub.join(&idle);
  for (int i = 0; i < 10000; ++i) append(hub, 0, std::string(50, 'y'));
  CHECK(hub.log_bytes() <= 1000u + 100u);
  CHECK(hub.log_frames() <= 22u);
  hub.leave(&idle);
  for (int i = 0; i < 100; ++i) append(hub, 0, std::string(50, 'z'));
  CHECK_EQ(hub.log_frames(), 2u);  // No members: only the replay frames.
}

TEST(hub_batches_respect_max_bytes_and_order) {
  Hub hub(opts(0));
  HubMember m;
  m.id = 1;
  hub.join(&m);
  for (int i = 0; i < 100; ++i) append(hub, 0, std::to_string(i));
  std::vector<FrameRef> batch;
  std::uint64_t end = 0;
  CHECK(hub.next_batch(&m, &batch, &end, 10, true) == BatchResult::Frames);
  CHECK(batch.size() >= 1 && batch.size() <= 10);
  CHECK_EQ(std::string(batch[0]->bytes.begin(), batch[0]->bytes.end()), std::string("0"));
  hub.complete_batch(&m, end);
  std::vector<std::string> rest = drain(hub, &m);
  CHECK_EQ(rest.size() + batch.size(), 100u);
  CHECK_EQ(rest.back(), std::string("99"));
  hub.leave(&m);
}

TEST(hub_close_input_and_drained) {
  Hub hub(opts(1));
  HubMember m;
  m.id = 1;
  hub.join(&m);
  append(hub, 0, "a");
  hub.close_input();
  FrameRef f = frame(0, "late");
  CHECK(!hub.append(&f, 1));
  CHECK(!hub.drained());
  CHECK(!hub.wait_drained(ec_now_ms() + 20));
  CHECK_EQ(drain(hub, &m).size(), 1u);
  CHECK(hub.drained());
  hub.close_all("server-closed");
  CHECK_EQ(std::string(hub.reason(&m)), std::string("server-closed"));
  CHECK_EQ(std::string(hub.close_member(&m, "client-error")), std::string("server-closed"));
  hub.leave(&m);
}

namespace {
struct WriterCtx {
  Hub* hub;
  HubMember* m;
  std::vector<std::string> got;
  bool closed = false;
};
void writer(void* arg) {
  WriterCtx* w = static_cast<WriterCtx*>(arg);
  for (;;) {
    std::vector<FrameRef> batch;
    std::uint64_t end = 0;
    if (w->hub->next_batch(w->m, &batch, &end, 1 << 20, true) == BatchResult::Closed) {
      w->closed = true;
      return;
    }
    for (const FrameRef& f : batch) w->got.emplace_back(f->bytes.begin(), f->bytes.end());
    w->hub->complete_batch(w->m, end);
  }
}
}  // namespace

TEST(hub_writer_thread_wakes_on_append_and_close) {
  Hub hub(opts(0));
  HubMember m;
  m.id = 1;
  hub.join(&m);
  WriterCtx ctx{&hub, &m, {}, false};
  ec_thread_t t;
  CHECK(ec_thread_create(&t, writer, &ctx, EC_THREAD_STACK_BYTES).ok());
  for (int i = 0; i < 1000; ++i) append(hub, 0, std::to_string(i));
  hub.close_input();
  CHECK(hub.wait_drained(ec_now_ms() + 5000));
  hub.close_member(&m, "server-closed");
  ec_thread_join(&t);
  CHECK(ctx.closed);
  CHECK_EQ(ctx.got.size(), 1000u);
  CHECK_EQ(ctx.got[999], std::string("999"));
  hub.leave(&m);
}

TEST(hub_slow_consumer_cut_after_grace_while_appender_waits) {
  Hub hub(opts(0, true, 100, 50));
  HubMember stalled;
  stalled.id = 1;
  hub.join(&stalled);
  std::string ten(10, 'x');
  for (int i = 0; i < 10; ++i) append(hub, 0, ten);  // At the limit.
  std::uint64_t t0 = ec_now_ms();
  FrameRef f = frame(0, ten);
  CHECK(hub.append(&f, 1, true));  // Waits out the grace, then cuts.
  CHECK(ec_now_ms() - t0 >= 45);
  CHECK_EQ(std::string(hub.reason(&stalled)), std::string("slow-consumer"));
  hub.leave(&stalled);
}

TEST(hub_broadcast_append_never_waits) {
  Hub hub(opts(0, true, 100, 10000));
  HubMember stalled;
  stalled.id = 1;
  hub.join(&stalled);
  std::uint64_t t0 = ec_now_ms();
  for (int i = 0; i < 20; ++i) append(hub, 0, std::string(10, 'x'));  // may_wait false
  CHECK(ec_now_ms() - t0 < 1000);
  CHECK(hub.reason(&stalled) == nullptr);  // Over, but within its grace.
  hub.leave(&stalled);
}

namespace {
struct LagCtx {
  Hub* hub;
  HubMember* m;
  std::size_t got = 0;
};
// A writer that drains everything, slowly at first (as if waiting for a CPU).
void lagging_writer(void* arg) {
  LagCtx* w = static_cast<LagCtx*>(arg);
  ec_mutex_t mu;
  ec_cond_t cv;
  ec_mutex_init(&mu);
  ec_cond_init(&cv);
  ec_mutex_lock(&mu);
  ec_cond_timed_wait(&cv, &mu, 30);
  ec_mutex_unlock(&mu);
  ec_cond_destroy(&cv);
  ec_mutex_destroy(&mu);
  for (;;) {
    std::vector<FrameRef> batch;
    std::uint64_t end = 0;
    if (w->hub->next_batch(w->m, &batch, &end, 16, true) == BatchResult::Closed) return;
    w->got += batch.size();
    w->hub->complete_batch(w->m, end);
  }
}
}  // namespace

TEST(hub_lagging_writer_within_grace_is_not_cut) {
  Hub hub(opts(0, true, 100, 5000));
  HubMember m;
  m.id = 1;
  hub.join(&m);
  LagCtx ctx{&hub, &m, 0};
  ec_thread_t t;
  CHECK(ec_thread_create(&t, lagging_writer, &ctx, EC_THREAD_STACK_BYTES).ok());
  for (int i = 0; i < 200; ++i) {
    FrameRef f = frame(0, std::string(10, 'y'));
    CHECK(hub.append(&f, 1, true));  // Waits for the writer, never cuts it.
  }
  hub.close_input();
  CHECK(hub.wait_drained(ec_now_ms() + 5000));
  CHECK(hub.reason(&m) == nullptr);
  hub.close_member(&m, "server-closed");
  ec_thread_join(&t);
  CHECK_EQ(ctx.got, 200u);
  CHECK(hub.log_bytes() <= 110u);
  hub.leave(&m);
}
