// hub.cc — see hub.h.
#include "hub.h"

namespace echocast {

namespace {
// The slow-consumer clock; +1 keeps it from ever reading 0 ("not read").
std::uint64_t hub_clock() { return ec_now_ms() + 1; }
}  // namespace

HubMember::HubMember() { ec_cond_init(&cond_); }
HubMember::~HubMember() { ec_cond_destroy(&cond_); }

Hub::Hub(const FanoutOptions& options) : fanout_(options) {
  ec_mutex_init(&mutex_);
  ec_cond_init(&drained_cond_);
  ec_cond_init(&progress_cond_);
  ec_cond_init(&leave_cond_);
}

Hub::~Hub() {
  ec_cond_destroy(&leave_cond_);
  ec_cond_destroy(&progress_cond_);
  ec_cond_destroy(&drained_cond_);
  ec_mutex_destroy(&mutex_);
}

void Hub::join(HubMember* m) {
  ec_lock_guard lock(&mutex_);
  fanout_.join(m);
  m->waiting_ = false;
  m->joined_ = true;
}

void Hub::leave(HubMember* m) {
  ec_lock_guard lock(&mutex_);
  // An appender may be about to signal this member's condition variable
  // outside the lock; the member must outlive that (a few microseconds).
  while (m->signals_pending_.load(std::memory_order_acquire) > 0)
    ec_cond_timed_wait(&leave_cond_, &mutex_, kLeavePollMs);
  if (!m->joined_) return;
  m->joined_ = false;
  fanout_.leave(m);
  ec_cond_broadcast(&drained_cond_);
  progress_locked();
}

void Hub::progress_locked() {
  if (waiting_appenders_ > 0) ec_cond_broadcast(&progress_cond_);
  if (input_closed_) ec_cond_broadcast(&drained_cond_);
}

Reason Hub::close_locked(HubMember* m, Reason reason) {
  if (fanout_.close(m, reason)) {
    m->on_close(reason);
    ec_cond_signal(&m->cond_);
    ec_cond_broadcast(&drained_cond_);
    progress_locked();
  }
  return m->reason;
}

bool Hub::append(const FrameBatch& batch, std::uint64_t sender, bool may_wait,
                 std::vector<HubMember*>* wake) {
  wake->clear();
  ec_mutex_lock(&mutex_);
  bool ok = append_locked(batch, sender, may_wait, wake);
  ec_mutex_unlock(&mutex_);
  // Wake the sleeping writers after releasing the lock they need.
  for (HubMember* m : *wake) {
    ec_cond_signal(&m->cond_);
    m->signals_pending_.fetch_sub(1, std::memory_order_release);  // m may go now.
  }
  wake->clear();
  return ok;
}

bool Hub::append_locked(const FrameBatch& batch, std::uint64_t sender, bool may_wait,
                        std::vector<HubMember*>* wake) {
  if (batch.frames.empty()) return !input_closed_;
  std::uint64_t incoming = batch.bytes.size();
  // The slow-consumer rule, before the frames go in.
  for (;;) {
    if (input_closed_) return false;
    cut_.clear();
    Fanout::SlowCheck check = fanout_.slow_consumers(&hub_clock, incoming, &cut_);
    for (FanoutMember* m : cut_) close_locked(static_cast<HubMember*>(m), Reason::SlowConsumer);
    if (check.wait_until == 0 || !may_wait) break;
    ++waiting_appenders_;
    ec_cond_timed_wait(&progress_cond_, &mutex_, check.wait_until - check.now_ms);
    --waiting_appenders_;
  }
  for (const FrameBatch::Extent& e : batch.frames) fanout_.append(batch.data(e), e.size, sender);
  fanout_.count_in(batch.frames.size(), incoming);
  for (FanoutMember* fm : fanout_.members()) {
    HubMember* m = static_cast<HubMember*>(fm);
    if (!m->closing && m->waiting_) {
      m->waiting_ = false;
      m->signals_pending_.fetch_add(1, std::memory_order_relaxed);
      wake->push_back(m);
    }
  }
  fanout_.trim();
  return true;
}

void Hub::finish_send_locked(HubMember* m) {
  if (!m->sending) return;
  m->sending = false;
  fanout_.advance(m, m->send_bytes_, m->send_end_);
  progress_locked();
}

BatchResult Hub::next_batch(HubMember* m, ec_iovec* out, std::size_t max_pieces,
                            std::size_t max_bytes, std::size_t* pieces, bool block) {
  *pieces = 0;
  ec_lock_guard lock(&mutex_);
  finish_send_locked(m);
  for (;;) {
    if (m->closing) return BatchResult::Closed;
    if (fanout_.pending(m)) {
      FrameLog::Gathered g = fanout_.gather(m, out, max_pieces, max_bytes);
      if (g.pieces > 0) {
        m->sending = true;
        m->send_end_ = g.end;
        m->send_bytes_ = g.bytes;
        *pieces = g.pieces;
        return BatchResult::Frames;
      }
      progress_locked();  // Only own frames, passed over: progress all the same.
      continue;
    }
    if (!block) return BatchResult::Frames;
    m->waiting_ = true;
    ec_cond_wait(&m->cond_, &mutex_);
    m->waiting_ = false;
  }
}

void Hub::send_failed(HubMember* m, Reason reason) {
  ec_lock_guard lock(&mutex_);
  m->sending = false;
  close_locked(m, reason);
}

Reason Hub::close_member(HubMember* m, Reason reason) {
  ec_lock_guard lock(&mutex_);
  return close_locked(m, reason);
}

bool Hub::reason(HubMember* m, Reason* out) {
  ec_lock_guard lock(&mutex_);
  if (m->closing) *out = m->reason;
  return m->closing;
}

void Hub::close_input() {
  ec_lock_guard lock(&mutex_);
  input_closed_ = true;
  progress_locked();
}

bool Hub::wait_drained(std::uint64_t deadline_ms) {
  ec_lock_guard lock(&mutex_);
  for (;;) {
    if (fanout_.drained()) return true;
    std::uint64_t now = ec_now_ms();
    if (now >= deadline_ms) return false;
    ec_cond_timed_wait(&drained_cond_, &mutex_, deadline_ms - now);
  }
}

void Hub::close_all(Reason reason) {
  ec_lock_guard lock(&mutex_);
  for (FanoutMember* m : fanout_.members()) close_locked(static_cast<HubMember*>(m), reason);
}

std::size_t Hub::log_frames() {
  ec_lock_guard lock(&mutex_);
  return fanout_.log().frames();
}

std::uint64_t Hub::log_bytes() {
  ec_lock_guard lock(&mutex_);
  return fanout_.log().bytes();
}

}  // namespace echocast
