// event_queue.cc — see event_queue.h.
#include "event_queue.h"

#include <utility>

namespace echocast {

EventQueue::EventQueue(EventWaker* waker, std::uint64_t max_pending_bytes)
    : waker_(waker), max_pending_bytes_(max_pending_bytes) {
  ec_mutex_init(&mutex_);
  ec_cond_init(&cond_);
}

EventQueue::~EventQueue() {
  ec_cond_destroy(&cond_);
  ec_mutex_destroy(&mutex_);
}

void EventQueue::set_messages(bool on) {
  messages_ = on;
  if (!on) {
    // Readers waiting for room to queue a message may go on.
    ec_lock_guard lock(&mutex_);
    ec_cond_broadcast(&cond_);
  }
}

void EventQueue::lift_backpressure() {
  ec_lock_guard lock(&mutex_);
  no_backpressure_ = true;
  end_hold_locked();
  ec_cond_broadcast(&cond_);
}

bool EventQueue::room() {
  ec_lock_guard lock(&mutex_);
  if (no_backpressure_ || pending_bytes_ < max_pending_bytes_) return true;
  hold_locked();  // The poll engine holds the client it was about to read.
  return false;
}

std::uint64_t EventQueue::pending_bytes() {
  ec_lock_guard lock(&mutex_);
  return pending_bytes_;
}

EventQueue::Holds EventQueue::holds() {
  ec_lock_guard lock(&mutex_);
  Holds h = holds_;
  if (holding_) h.ms += ec_now_ms() - held_since_;
  return h;
}

void EventQueue::hold_locked() {
  if (holding_) return;
  holding_ = true;
  held_since_ = ec_now_ms();
  holds_.count += 1;
}

void EventQueue::end_hold_locked() {
  if (!holding_) return;
  holding_ = false;
  holds_.ms += ec_now_ms() - held_since_;
}

void EventQueue::reserve_locked(std::uint64_t size, bool may_wait, bool message) {
  // Backpressure: this client's reader waits (and so its socket fills and
  // its sender slows down) while JS has too many bytes pending. One event
  // always fits when nothing is pending, so a frame above the bound is not
  // stuck for ever.
  while (may_wait && (!message || messages_) && !no_backpressure_ && pending_bytes_ > 0 &&
         pending_bytes_ + size > max_pending_bytes_) {
    hold_locked();
    ec_cond_wait(&cond_, &mutex_);
  }
  pending_bytes_ += size;
}

bool EventQueue::ring_locked() {
  if (rung_) return false;
  rung_ = true;
  return true;
}

bool EventQueue::append_locked(QueuedEvent&& event) {
  queue_.push_back(std::move(event));
  return ring_locked();
}

void EventQueue::wake() {
  if (waker_->ring()) return;
  // No take() will come for this wakeup: the next push rings again.
  ec_lock_guard lock(&mutex_);
  rung_ = false;
}

void EventQueue::push(QueuedEvent&& event) {
  bool ring;
  {
    ec_lock_guard lock(&mutex_);
    ring = append_locked(std::move(event));
  }
  if (ring) wake();
}

bool EventQueue::push_message(std::uint64_t id, const FrameRef& frame, bool may_wait) {
  return push_message(id, frame->bytes.data() + frame->payload_offset, frame->payload_size,
                      may_wait);
}

bool EventQueue::push_message(std::uint64_t id, const std::uint8_t* payload, std::size_t len,
                              bool may_wait) {
  std::uint64_t size = len + kMessageOverhead;
  bool ring;
  {
    ec_lock_guard lock(&mutex_);
    if (!messages_) return false;
    reserve_locked(size, may_wait, true);
    if (!messages_) {
      pending_bytes_ -= size;
      return false;
    }
    // A message right after messages joins their run (after any wait above:
    // the queue may have been taken meanwhile); a new run costs its event.
    if (queue_.empty() || queue_.back().kind != QueuedEvent::Messages) {
      QueuedEvent e;
      e.kind = QueuedEvent::Messages;
      queue_.push_back(std::move(e));
      pending_bytes_ += kEventOverhead;
    }
    QueuedEvent& run = queue_.back();
    run.bytes.insert(run.bytes.end(), payload, payload + len);
    run.messages.push_back(QueuedMessage{id, run.bytes.size()});
    ring = ring_locked();
  }
  if (ring) wake();
  return true;
}

void EventQueue::push_frames(std::uint64_t id, const std::uint8_t* data, std::size_t len,
                             std::size_t frames, bool may_wait) {
  QueuedEvent e;
  e.kind = QueuedEvent::Frames;
  e.id = id;
  e.bytes.assign(data, data + len);
  e.frames = frames;
  bool ring;
  {
    ec_lock_guard lock(&mutex_);
    reserve_locked(len + kEventOverhead, may_wait, false);
    ring = append_locked(std::move(e));
  }
  if (ring) wake();
}

EventBatch EventQueue::take() {
  EventBatch batch;
  {
    ec_lock_guard lock(&mutex_);
    batch.events.swap(queue_);
    rung_ = false;
  }
  // The same sums the pushes reserved.
  for (const QueuedEvent& e : batch.events) {
    if (e.kind == QueuedEvent::Messages)
      batch.bounded_bytes += e.bytes.size() + e.messages.size() * kMessageOverhead + kEventOverhead;
    else if (e.kind == QueuedEvent::Frames) batch.bounded_bytes += e.bytes.size() + kEventOverhead;
  }
  return batch;
}

void EventQueue::release(std::uint64_t bytes) {
  if (bytes == 0) return;
  ec_lock_guard lock(&mutex_);
  pending_bytes_ -= bytes;
  end_hold_locked();
  ec_cond_broadcast(&cond_);
}

}  // namespace echocast
