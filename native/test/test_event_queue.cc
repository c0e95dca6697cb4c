// test_event_queue.cc — the queue between engine threads and JS
// (core/event_queue.h): order and batching, one wakeup per batch (and again
// after a failed one), the bound on bytes waiting for JS, and, with real
// threads, a reader blocked by that bound and every way it is let go.
#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "../core/event_queue.h"
#include "../platform/platform.h"
#include "unit.h"

using namespace echocast;

namespace {

// Counts rings; answers them with `answer`.
class CountingWaker : public EventWaker {
 public:
  bool ring() override {
    rings += 1;
    return answer.load();
  }
  std::atomic<int> rings{0};
  std::atomic<bool> answer{true};
};

FrameRef payload(std::size_t size) {
  auto f = std::make_shared<HubFrame>();
  f->bytes.assign(size + 1, 'x');
  f->bytes.back() = '\n';
  f->payload_size = size;
  return f;
}

QueuedEvent disconnect(std::uint64_t id) {
  QueuedEvent e;
  e.kind = QueuedEvent::Disconnect;
  e.id = id;
  e.word = "client-closed";
  return e;
}

// What the bound charges beside the bytes (docs/contract.md S16): each
// bounded event, and each message of a run.
constexpr std::uint64_t E = kEventOverhead;
constexpr std::uint64_t M = kMessageOverhead;

// A thread that pushes one bounded event and notes when it got through.
struct Pusher {
  Pusher(EventQueue* q, std::size_t n, bool f) : queue(q), size(n), frames(f) {}
  EventQueue* queue;
  std::size_t size;
  bool frames;  // push_frames rather than push_message.
  std::atomic<bool> started{false};
  std::atomic<bool> done{false};
  std::atomic<bool> queued{false};
  ec_thread_t thread;

  static void main(void* arg) {
    Pusher* p = static_cast<Pusher*>(arg);
    p->started = true;
    if (p->frames) {
      std::string bytes(p->size, 'f');
      p->queue->push_frames(7, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), 1,
                            true);
      p->queued = true;
    } else {
      p->queued = p->queue->push_message(7, payload(p->size), true);
    }
    p->done = true;
  }
  bool start() {
    running = ec_thread_create(&thread, &Pusher::main, this, EC_THREAD_STACK_BYTES).ok();
    return running;
  }
  void join() {
    if (running) ec_thread_join(&thread);
    running = false;
  }
  ~Pusher() { join(); }
  bool running = false;
};

// Waits up to `ms` for `flag`; true if it was set.
bool wait_flag(const std::atomic<bool>& flag, std::uint64_t ms) {
  ec_mutex_t m;
  ec_cond_t c;
  ec_mutex_init(&m);
  ec_cond_init(&c);
  std::uint64_t end = ec_now_ms() + ms;
  {
    ec_lock_guard lock(&m);
    for (std::uint64_t now = ec_now_ms(); !flag && now < end; now = ec_now_ms())
      ec_cond_timed_wait(&c, &m, 5);
  }
  ec_cond_destroy(&c);
  ec_mutex_destroy(&m);
  return flag;
}

// A flag nobody sets: wait_flag(never, ms) lets `ms` go by.
const std::atomic<bool> never{false};

// Starts a pusher and checks that it is blocked by the bound (still waiting
// after a while: the test cannot see "blocked for ever", only "for 150 ms").
bool starts_blocked(Pusher* p) {
  if (!p->start()) return false;
  if (!wait_flag(p->started, 5000)) return false;
  return !wait_flag(p->done, 150);
}

// A queue with 20 bytes of room left after an 80-byte message, and a reader
// thread blocked on adding a 40-byte one. However a test ends, the bound is lifted
// and the thread joined.
struct BlockedReader {
  bool setup() {
    queue.set_messages(true);
    return queue.push_message(1, payload(80), true) && starts_blocked(&pusher);
  }
  ~BlockedReader() { queue.lift_backpressure(); }
  CountingWaker waker;
  EventQueue queue{&waker, 100 + M + E};
  Pusher pusher{&queue, 40, false};
};

}  // namespace

TEST(event_queue_keeps_order_and_rings_once_per_batch) {
  CountingWaker w;
  EventQueue q(&w);
  q.set_messages(true);
  q.push(disconnect(1));
  CHECK(q.push_message(2, payload(10), false));
  q.push(disconnect(3));
  CHECK_EQ(w.rings.load(), 1);  // One wakeup for the whole batch.
  EventBatch b = q.take();
  CHECK_EQ(b.events.size(), 3u);
  CHECK_EQ(b.events[0].id, 1u);
  CHECK(b.events[1].kind == QueuedEvent::Messages);
  CHECK_EQ(b.events[2].id, 3u);
  CHECK_EQ(b.bounded_bytes, 10u + M + E);
  CHECK_EQ(q.pending_bytes(), 10u + M + E);  // Until the JS side releases it.
  q.release(b.bounded_bytes);
  CHECK_EQ(q.pending_bytes(), 0u);
  q.push(disconnect(4));
  CHECK_EQ(w.rings.load(), 2);  // A new batch, a new wakeup.
  CHECK_EQ(q.take().events.size(), 1u);
  CHECK_EQ(q.take().events.size(), 0u);
}

TEST(event_queue_gathers_consecutive_messages_into_one_run) {
  CountingWaker w;
  EventQueue q(&w);
  q.set_messages(true);
  const std::uint8_t ab[] = {'a', 'b'};
  const std::uint8_t c[] = {'c'};
  CHECK(q.push_message(1, ab, 2, false));
  CHECK(q.push_message(2, c, 1, false));
  CHECK(q.push_message(3, payload(0), false));  // An empty payload is a message too.
  q.push(disconnect(4));
  CHECK(q.push_message(5, c, 1, false));  // After another event: a run of its own.
  CHECK_EQ(w.rings.load(), 1);
  EventBatch b = q.take();
  CHECK_EQ(b.events.size(), 3u);
  CHECK(b.events[0].kind == QueuedEvent::Messages);
  CHECK_EQ(std::string(b.events[0].bytes.begin(), b.events[0].bytes.end()), std::string("abc"));
  CHECK_EQ(b.events[0].messages.size(), 3u);
  CHECK_EQ(b.events[0].messages[0].id, 1u);
  CHECK_EQ(b.events[0].messages[0].end, 2u);
  CHECK_EQ(b.events[0].messages[1].id, 2u);
  CHECK_EQ(b.events[0].messages[1].end, 3u);
  CHECK_EQ(b.events[0].messages[2].end, 3u);
  CHECK_EQ(b.events[1].id, 4u);
  CHECK(b.events[2].kind == QueuedEvent::Messages);
  CHECK_EQ(b.events[2].messages.size(), 1u);
  CHECK_EQ(b.bounded_bytes, 4u + 4 * M + 2 * E);  // Two runs, four messages.
  CHECK_EQ(q.pending_bytes(), b.bounded_bytes);
  q.release(b.bounded_bytes);
  CHECK_EQ(q.pending_bytes(), 0u);
  CHECK(q.push_message(6, ab, 2, false));  // The next batch starts a new run.
  CHECK_EQ(w.rings.load(), 2);
  CHECK_EQ(q.take().events[0].messages.size(), 1u);
}

TEST(event_queue_rings_again_after_a_failed_wakeup) {
  CountingWaker w;
  EventQueue q(&w);
  w.answer = false;  // E.g. the thread-safe function is closing.
  q.push(disconnect(1));
  q.push(disconnect(2));
  CHECK_EQ(w.rings.load(), 2);  // No take() was coming: each push tries.
  w.answer = true;
  q.push(disconnect(3));
  q.push(disconnect(4));
  CHECK_EQ(w.rings.load(), 3);
  CHECK_EQ(q.take().events.size(), 4u);  // Nothing was lost.
}

TEST(event_queue_drops_messages_while_they_are_off) {
  CountingWaker w;
  EventQueue q(&w);
  CHECK(!q.messages());
  CHECK(!q.push_message(1, payload(10), true));
  CHECK_EQ(w.rings.load(), 0);
  CHECK_EQ(q.pending_bytes(), 0u);
  // Forwarded frames are not message events: they are always queued.
  q.push_frames(1, reinterpret_cast<const std::uint8_t*>("a\n"), 2, 1, true);
  EventBatch b = q.take();
  CHECK_EQ(b.events.size(), 1u);
  CHECK(b.events[0].kind == QueuedEvent::Frames);
  CHECK_EQ(b.events[0].frames, 1u);
  CHECK_EQ(b.bounded_bytes, 2u + E);
}

TEST(event_queue_room_follows_the_bound_without_blocking_the_poll_engine) {
  CountingWaker w;
  EventQueue q(&w, 100 + M + E);
  q.set_messages(true);
  CHECK(q.room());
  CHECK(q.push_message(1, payload(60), false));
  CHECK(q.room());
  // may_wait false (the poll engine): never blocks, even past the bound.
  CHECK(q.push_message(1, payload(60), false));
  CHECK(!q.room());
  EventBatch b = q.take();
  CHECK(!q.room());  // Taken is not yet released.
  q.release(b.bounded_bytes);
  CHECK(q.room());
  q.push_frames(1, reinterpret_cast<const std::uint8_t*>(std::string(150, 'f').data()), 150, 1,
                false);
  CHECK(!q.room());
  q.lift_backpressure();
  CHECK(q.room());
}

TEST(event_queue_lets_one_event_above_the_bound_through_when_nothing_waits) {
  CountingWaker w;
  EventQueue q(&w, 100);
  q.set_messages(true);
  // Nothing pending: a frame bigger than the whole bound must not wait for
  // ever (a reader thread would be stuck).
  CHECK(q.push_message(1, payload(500), true));
  CHECK_EQ(q.pending_bytes(), 500u + M + E);
}

TEST(event_queue_blocks_a_reader_until_js_releases_bytes) {
  BlockedReader r;
  CHECK(r.setup());
  EventQueue& q = r.queue;
  Pusher& p = r.pusher;
  EventBatch b = q.take();
  CHECK_EQ(b.events.size(), 1u);
  q.release(b.bounded_bytes);
  CHECK(wait_flag(p.done, 5000));
  p.join();
  CHECK(p.queued);
  CHECK_EQ(q.pending_bytes(), 40u + M + E);
  CHECK_EQ(q.take().events.size(), 1u);
}

TEST(event_queue_turning_messages_off_lets_a_blocked_reader_go) {
  BlockedReader r;
  CHECK(r.setup());
  r.queue.set_messages(false);
  CHECK(wait_flag(r.pusher.done, 5000));
  r.pusher.join();
  CHECK(!r.pusher.queued);  // Its message was dropped, its bytes not counted.
  CHECK_EQ(r.queue.pending_bytes(), 80u + M + E);
}

TEST(event_queue_forwarded_frames_wait_even_with_messages_off_until_lifted) {
  CountingWaker w;
  EventQueue q(&w, 100 + E);
  q.push_frames(1, reinterpret_cast<const std::uint8_t*>(std::string(80, 'f').data()), 80, 1, true);
  Pusher p(&q, 40, true);
  struct Lift {
    EventQueue& q;
    ~Lift() { q.lift_backpressure(); }  // Before p joins, however the test ends.
  } lift{q};
  CHECK(starts_blocked(&p));
  q.set_messages(false);  // Not a message: it stays blocked.
  CHECK(!wait_flag(p.done, 100));
  q.lift_backpressure();  // The server is stopping.
  CHECK(wait_flag(p.done, 5000));
  p.join();
  CHECK(p.queued);
  CHECK_EQ(q.pending_bytes(), 120u + 2 * E);
  // Lifted for good: the next push past the bound does not wait either.
  q.push_frames(1, reinterpret_cast<const std::uint8_t*>(std::string(80, 'f').data()), 80, 1, true);
  CHECK_EQ(q.take().events.size(), 3u);
}

TEST(event_queue_charges_empty_messages_and_small_events_what_they_cost) {
  // docs/contract.md S16: an empty message is not free (its entry, and its
  // place in JS's index), nor is a forwarded event of a few bytes, so a
  // flood of them meets the bound as large ones do.
  CountingWaker w;
  EventQueue q(&w, 1000);
  q.set_messages(true);
  std::uint64_t n = 0;
  while (q.room() && n < 100000) {
    CHECK(q.push_message(1, payload(0), false));
    ++n;
  }
  CHECK(!q.room());
  CHECK_EQ(n, (1000 - E + M - 1) / M);  // The first that reached the bound.
  EventBatch b = q.take();
  CHECK_EQ(b.events.size(), 1u);
  CHECK_EQ(b.events[0].messages.size(), n);
  CHECK_EQ(b.bounded_bytes, n * M + E);
  CHECK_EQ(q.pending_bytes(), b.bounded_bytes);
  q.release(b.bounded_bytes);
  CHECK_EQ(q.pending_bytes(), 0u);
  n = 0;
  while (q.room() && n < 100000) {
    q.push_frames(1, reinterpret_cast<const std::uint8_t*>("\n"), 1, 1, false);
    ++n;
  }
  CHECK_EQ(n, (1000 + E) / (1 + E));
  CHECK_EQ(q.take().bounded_bytes, n * (1 + E));
}

// docs/contract.md S18: a hold begins when the first reader is held back
// (a reader thread waiting, or room() saying no to the poll engine) and ends
// when JS releases a batch; its time counts up to now while it runs.
TEST(event_queue_counts_the_holds_of_a_blocked_reader_and_their_time) {
  BlockedReader r;
  CHECK(r.setup());
  EventQueue& q = r.queue;
  // setup() saw the reader start and not finish, not yet wait: its hold is
  // counted once it reaches the wait.
  bool counted = false;
  for (std::uint64_t end = ec_now_ms() + 5000; !counted && ec_now_ms() < end;) {
    counted = q.holds().count == 1;
    if (!counted) wait_flag(never, 5);
  }
  CHECK(counted);
  EventQueue::Holds running = q.holds();
  CHECK_EQ(running.count, 1u);
  // wait_flag() reads the same clock: 30 ms by it have gone by when it returns.
  CHECK(!wait_flag(never, 30));
  CHECK(q.holds().ms >= running.ms + 30);  // Running: counted up to now.
  running = q.holds();
  CHECK_EQ(running.count, 1u);  // Still the one hold.
  EventBatch b = q.take();
  q.release(b.bounded_bytes);
  CHECK(wait_flag(r.pusher.done, 5000));
  r.pusher.join();
  EventQueue::Holds ended = q.holds();
  CHECK_EQ(ended.count, 1u);
  CHECK(ended.ms >= running.ms);
  CHECK(!wait_flag(never, 30));
  CHECK_EQ(q.holds().ms, ended.ms);  // Ended: its time no longer grows.
}

TEST(event_queue_counts_a_hold_when_room_says_no_to_the_poll_engine) {
  CountingWaker w;
  EventQueue q(&w, 100 + M + E);
  q.set_messages(true);
  CHECK(q.push_message(1, payload(60), false));
  CHECK(q.room());
  CHECK_EQ(q.holds().count, 0u);  // Under the bound: nobody held.
  CHECK(q.push_message(1, payload(60), false));
  CHECK(!q.room());
  CHECK(!q.room());  // Asked again while held: still one hold.
  CHECK_EQ(q.holds().count, 1u);
  EventBatch b = q.take();
  q.release(b.bounded_bytes);
  CHECK(q.room());
  CHECK(q.push_message(1, payload(150), false));
  CHECK(!q.room());  // Over the bound again after a release: a second hold.
  CHECK_EQ(q.holds().count, 2u);
  q.lift_backpressure();  // Ends it; nothing is held any more.
  CHECK(q.room());
  EventQueue::Holds h = q.holds();
  CHECK(!wait_flag(never, 30));
  CHECK_EQ(q.holds().ms, h.ms);
}
