// hub.cc — see hub.h.
#include "hub.h"

namespace echocast {

namespace {
// The flow-control clock; +1 keeps it from ever reading 0 ("not paused").
std::uint64_t hub_clock() { return ec_now_ms() + 1; }
}  // namespace

HubMember::HubMember() { ec_cond_init(&cond_); }
HubMember::~HubMember() { ec_cond_destroy(&cond_); }

std::uint64_t Hub::default_pace_us() { return ec_cond_fine_waits() ? kPaceUs : 0; }

Hub::Hub(const FanoutOptions& options, std::uint64_t pace_us)
    : fanout_(options),
      pace_us_(pace_us),
      pace_bytes_(options.max_backlog_bytes / 2 < kPaceBytes ? options.max_backlog_bytes / 2
                                                             : kPaceBytes) {
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
  resume_check_locked();
}

void Hub::progress_locked() {
  if (input_closed_) ec_cond_broadcast(&drained_cond_);
}

Reason Hub::close_locked(HubMember* m, Reason reason) {
  if (fanout_.close(m, reason)) {
    m->on_close(reason);
    ec_cond_signal(&m->cond_);
    ec_cond_broadcast(&drained_cond_);
    progress_locked();
    resume_check_locked();
  }
  return m->reason;
}

void Hub::review_locked(std::vector<HubMember*>* wake) {
  if (reviewing_) return;  // A cut below re-entered through close_locked.
  reviewing_ = true;
  bool was_paused = fanout_.paused();
  cut_.clear();
  if (wake != nullptr) {
    // New frames: the same pass collects the sleeping writers to wake.
    // A dozing writer is left to its doze unless pace_bytes_ are owed to it.
    fanout_.review(&hub_clock, &cut_, [this, wake](FanoutMember* fm) {
      HubMember* m = static_cast<HubMember*>(fm);
      if (!m->closing &&
          (m->waiting_ || (m->dozing_ && fanout_.log().backlog(m->cursor) >= pace_bytes_))) {
        m->waiting_ = false;
        m->dozing_ = false;
        m->signals_pending_.fetch_add(1, std::memory_order_relaxed);
        wake->push_back(m);
      }
    });
  } else {
    fanout_.review(&hub_clock, &cut_);
  }
  for (FanoutMember* m : cut_) close_locked(static_cast<HubMember*>(m), Reason::SlowConsumer);
  cut_.clear();
  reviewing_ = false;
  if (was_paused && !fanout_.paused() && waiting_appenders_ > 0) ec_cond_broadcast(&progress_cond_);
}

void Hub::resume_check_locked() {
  // O(1) but for the one review that ends the pause.
  if (fanout_.can_resume()) review_locked(nullptr);
}

std::uint64_t Hub::read_paused_ms() const { return fanout_.read_paused_ms(hub_clock()); }

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
  // Reading is paused (docs/contract.md S7): a reader waits with its batch
  // until the pause ends, so its sender feels TCP backpressure. The first
  // one past the deadline reviews: that cuts who is still over the limit
  // and ends the pause.
  while (may_wait && fanout_.paused() && !input_closed_) {
    std::uint64_t now = hub_clock();
    std::uint64_t deadline = fanout_.pause_deadline();
    if (now >= deadline) {
      review_locked(wake);
      continue;
    }
    ++waiting_appenders_;
    ec_cond_timed_wait(&progress_cond_, &mutex_, deadline - now);
    --waiting_appenders_;
  }
  if (input_closed_) return false;
  for (const FrameBatch::Extent& e : batch.frames)
    fanout_.append(batch.data(e), e.size, e.payload_offset, e.payload_size, sender);
  fanout_.count_in(batch.frames.size(), batch.bytes.size());
  // One pass: writers to wake, flow control and the cuts, the trim.
  review_locked(wake);
  return true;
}

void Hub::finish_send_locked(HubMember* m) {
  if (!m->sending) return;
  m->sending = false;
  fanout_.advance(m, m->send_bytes_, m->send_end_);
  progress_locked();
  resume_check_locked();
  if (m->closing_after_send_) ec_cond_broadcast(&drained_cond_);  // close_member's wait.
}

BatchResult Hub::next_batch(HubMember* m, ec_iovec* out, std::size_t max_pieces,
                            std::size_t max_bytes, std::size_t* pieces, bool block) {
  *pieces = 0;
  ec_lock_guard lock(&mutex_);
  finish_send_locked(m);
  for (;;) {
    if (m->closing) return BatchResult::Closed;
    if (m->closing_after_send_) {
      // A close waits for the batch just sent; nothing more goes before it.
      // close_locked() signals cond_.
      if (!block) return BatchResult::Frames;
      ec_cond_wait(&m->cond_, &mutex_);
      continue;
    }
    if (!m->control_.empty()) {
      // Control bytes first: the cursor stands at a frame boundary (every
      // batch is sent whole), and the "batch" moves it nowhere.
      m->control_out_.swap(m->control_);
      m->control_.clear();
      out[0].base = m->control_out_.data();
      out[0].len = m->control_out_.size();
      m->sending = true;
      m->send_end_ = m->cursor.seq;
      m->send_bytes_ = 0;
      *pieces = 1;
      return BatchResult::Frames;
    }
    if (m->finishing && fanout_.finished(m)) {
      close_locked(m, Reason::ClientClosed);  // docs/contract.md S11: all sent.
      return BatchResult::Closed;
    }
    if (fanout_.pending(m)) {
      FrameLog::Gathered g = fanout_.gather(m, out, max_pieces, max_bytes);
      if (g.pieces > 0) {
        if (pace_us_ != 0) {
          // Frames again within a period of the last send: paced from now on,
          // unless this batch is large enough to be worth a wake-up of its own.
          std::uint64_t now = ec_now_micros();
          if (g.bytes >= pace_bytes_) m->paced_ = false;
          else if (m->sent_at_us_ != 0 && now - m->sent_at_us_ < pace_us_) m->paced_ = true;
          m->sent_at_us_ = now;
        }
        m->sending = true;
        m->send_end_ = g.end;
        m->send_bytes_ = g.bytes;
        *pieces = g.pieces;
        return BatchResult::Frames;
      }
      progress_locked();  // Only own frames, passed over: progress all the same.
      resume_check_locked();
      continue;
    }
    if (!block) return BatchResult::Frames;
    if (m->paced_) {
      // Everything owed is sent: doze until the end of the period of the
      // last send (appends do not signal it), then send what came meanwhile.
      // Periods are whole multiples of pace_us_ on the monotonic clock, the
      // same for every writer: their dozes end together, so one timer tick
      // wakes them all and the cores run them back to back. A doze that
      // ends with nothing owed ends the pacing.
      std::uint64_t due = (m->sent_at_us_ / pace_us_ + 1) * pace_us_;
      std::uint64_t now = ec_now_micros();
      if (now < due) {
        m->dozing_ = true;
        ec_cond_timed_wait_us(&m->cond_, &mutex_, due - now);
        m->dozing_ = false;
        continue;
      }
      m->paced_ = false;
    }
    m->waiting_ = true;
    ec_cond_wait(&m->cond_, &mutex_);
    m->waiting_ = false;
  }
}

void Hub::queue_control(HubMember* m, const std::vector<std::uint8_t>& bytes,
                        std::size_t max_bytes) {
  ec_lock_guard lock(&mutex_);
  if (m->closing || bytes.empty() || m->control_.size() + bytes.size() > max_bytes) return;
  m->control_.insert(m->control_.end(), bytes.begin(), bytes.end());
  ec_cond_signal(&m->cond_);
}

void Hub::finish_member(HubMember* m) {
  ec_lock_guard lock(&mutex_);
  if (m->closing) return;
  // Nothing owed (and no batch in flight): closed now. Otherwise its
  // writer closes it once the last byte owed is sent (next_batch).
  if (fanout_.finish(m)) close_locked(m, Reason::ClientClosed);
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

Reason Hub::close_member(HubMember* m, Reason reason, const std::vector<std::uint8_t>& farewell,
                         std::uint64_t wait_ms) {
  ec_lock_guard lock(&mutex_);
  if (!m->closing && m->sending) {
    // finish_send_locked() says when the batch is sent; a cut or stop
    // meanwhile closes the member and ends the wait too.
    m->closing_after_send_ = true;
    const std::uint64_t deadline = ec_now_ms() + wait_ms;
    for (std::uint64_t now = ec_now_ms(); !m->closing && m->sending && now < deadline;
         now = ec_now_ms())
      ec_cond_timed_wait(&drained_cond_, &mutex_, deadline - now);
  }
  if (!m->closing) m->farewell_ = farewell;
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
  ec_cond_broadcast(&progress_cond_);  // Appenders waiting out a pause give up.
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
