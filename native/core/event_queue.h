// event_queue.h — the events engine threads report, waiting for the JS
// thread, and the backpressure that bounds them. No Node-API here: the
// wrapper (server_wrap.cc) drains the queue on the JS thread, and the unit
// tests (native/test/test_event_queue.cc) drive it with plain threads.
//
// Engine threads push; the push that finds no wakeup outstanding rings the
// Waker once, and the JS thread then takes the whole queue as one batch, in
// order. Message payloads and forwarded frames waiting for JS are bounded:
// a reader thread that may wait blocks until JS catches up (backpressure on
// that client), and the poll engine asks room() before it reads instead.
#ifndef ECHOCAST_CORE_EVENT_QUEUE_H
#define ECHOCAST_CORE_EVENT_QUEUE_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../platform/platform.h"
#include "frame_batch.h"

namespace echocast {

// The most message-event payload and forwarded-frame bytes, with what their
// events cost (kEventOverhead, kMessageOverhead), that may wait for JS at
// once, unless a test asks for another bound.
constexpr std::uint64_t kMaxPendingEventBytes = 16u * 1024u * 1024u;

// One message of a Messages event: its sender, and where its payload ends
// in the event's `bytes` (it starts where the previous one ends, or at 0).
struct QueuedMessage {
  std::uint64_t id;
  std::size_t end;
};

// One event waiting for JS; `kind` selects the fields that matter.
struct QueuedEvent {
  enum Kind {
    Connection,
    Messages,
    Frames,
    Disconnect,
    Error,
    Stopped,
    // docs/contract.md S15: a refusal (word: its cause, syscall: the
    // transport, text/port: the peer, strings: [detail]); a question for
    // the authorize hook (id: its ticket, syscall: the transport, text/port:
    // the peer, strings: [path, query, name, value, ...], bytes: a TCP
    // client's first frame).
    Refusal,
    Authorize,
  } kind = Connection;
  std::uint64_t id = 0;
  // The remote address (Connection) or the error message (Error).
  std::string text;
  // The reason (Disconnect) or the error code (Error), a static string.
  const char* word = "";
  // The failed call (Error), a static string.
  const char* syscall = nullptr;
  // The remote port (Connection).
  int port = 0;
  // Complete frames in wire form (Frames), and how many there are; or the
  // payloads of consecutive messages side by side (Messages), one entry each
  // in `messages`: a run of messages is one event, so JS gets them with one
  // copy, not an object and an allocation per message.
  std::vector<std::uint8_t> bytes;
  std::size_t frames = 0;
  std::vector<QueuedMessage> messages;
  std::vector<std::string> strings;  // Refusal, Authorize.
};

// docs/contract.md S16: what an event waiting for JS costs beside its bytes,
// charged against the bound with them, so that a flood of empty messages is
// bounded like one of large ones (payload bytes alone would charge it
// nothing): every bounded event (a run of messages, forwarded frames) its
// QueuedEvent, and every message of a run its QueuedMessage and the two
// numbers the batch's index gives JS for it (server_wrap.cc).
constexpr std::uint64_t kEventOverhead = sizeof(QueuedEvent);
constexpr std::uint64_t kMessageOverhead = sizeof(QueuedMessage) + 2 * sizeof(double);

// What the JS thread takes from the queue at once.
struct EventBatch {
  std::vector<QueuedEvent> events;
  // What the batch counts against the bound (its bytes and the overheads);
  // hand it back with EventQueue::release() once it is copied out.
  std::uint64_t bounded_bytes = 0;
};

// Asks the JS thread to take the queue. ring() is called from any thread,
// outside the queue's lock, and returns false when no take() will follow
// (the wakeup failed or the JS side is closing); the queue then rings again
// at the next push instead of waiting for a take that never comes.
class EventWaker {
 public:
  virtual ~EventWaker() = default;
  virtual bool ring() = 0;
};

// The queue itself. Every method is safe from any thread.
class EventQueue {
 public:
  // `waker` outlives the queue; `max_pending_bytes` is the bound.
  explicit EventQueue(EventWaker* waker, std::uint64_t max_pending_bytes = kMaxPendingEventBytes);
  ~EventQueue();
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;

  // Turns message events on or off. Turning them off releases readers
  // waiting for room to queue a message (their message is dropped).
  void set_messages(bool on);
  // Whether message events are wanted (engines check it per received chunk,
  // so nothing is copied while JS does not listen).
  bool messages() const { return messages_.load(); }

  // Lifts the bound for good (the server is stopping or the environment is
  // going away): every waiting reader goes on, and none waits again.
  void lift_backpressure();
  // Whether the bounded bytes are under the bound (or it is lifted). A no
  // means the caller holds the reader it asked for (the poll engine): it
  // begins a hold (holds()) unless one is running. Not a plain check.
  bool room();
  // Bounded bytes waiting for JS now (for tests and stats).
  std::uint64_t pending_bytes();

  // docs/contract.md S18: how many times readers were held back because the
  // bound's worth of event bytes waited for JS (a reader thread blocked, or
  // the poll engine told there is no room), and for how long in all, in ms,
  // a hold still running counted up to now. A hold begins when the first
  // reader is held and ends when JS releases a batch (or the bound is
  // lifted); a reader still held after that begins the next one.
  struct Holds {
    std::uint64_t count = 0;
    std::uint64_t ms = 0;
  };
  Holds holds();

  // Queues an unbounded event (connection, disconnect, error, stopped).
  void push(QueuedEvent&& event);
  // Queues a message event, if message events are on. With may_wait the
  // caller blocks while the bound would be passed. False if it was dropped
  // (message events were off, or turned off while it waited).
  // Its payload is copied at once (into the run of messages the queue ends
  // with, if it ends with one): the frame is not kept.
  bool push_message(std::uint64_t id, const FrameRef& frame, bool may_wait);
  bool push_message(std::uint64_t id, const std::uint8_t* payload, std::size_t len, bool may_wait);
  // Queues forwarded frames (cluster mode, copied); bounded like messages,
  // but waits even while message events are off.
  void push_frames(std::uint64_t id, const std::uint8_t* data, std::size_t len, std::size_t frames,
                   bool may_wait);

  // JS thread: takes everything queued, in order.
  EventBatch take();
  // JS thread: `bytes` of a taken batch have left the bound; waiting readers
  // may go on.
  void release(std::uint64_t bytes);

 private:
  // Waits (with may_wait) until `size` more bytes fit under the bound, then
  // counts them. Called with mutex_ held.
  void reserve_locked(std::uint64_t size, bool may_wait, bool message);
  // Appends with mutex_ held; true when the caller must ring the waker.
  bool append_locked(QueuedEvent&& event);
  // Whether the caller must ring the waker for what it just queued (mutex_ held).
  bool ring_locked();
  // Rings the waker (outside the lock) and notes a failed ring.
  void wake();
  // A reader is held back: begins a hold unless one is running (mutex_ held).
  void hold_locked();
  // JS released bytes or the bound was lifted: the running hold, if any,
  // ends (mutex_ held).
  void end_hold_locked();

  EventWaker* waker_;
  const std::uint64_t max_pending_bytes_;
  std::atomic<bool> messages_{false};
  ec_mutex_t mutex_;
  ec_cond_t cond_;
  std::vector<QueuedEvent> queue_;   // Under mutex_.
  std::uint64_t pending_bytes_ = 0;  // Under mutex_.
  bool no_backpressure_ = false;     // Under mutex_.
  // A wakeup is outstanding: a take() will come (under mutex_).
  bool rung_ = false;
  // Holds() so far, and whether one is running since held_since_ (under mutex_).
  Holds holds_;
  bool holding_ = false;
  std::uint64_t held_since_ = 0;
};

}  // namespace echocast

#endif  // ECHOCAST_CORE_EVENT_QUEUE_H
