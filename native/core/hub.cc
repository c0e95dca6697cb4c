// hub.cc — see hub.h.
#include "hub.h"

#include <algorithm>

namespace echocast {

HubMember::HubMember() { ec_cond_init(&cond_); }
HubMember::~HubMember() { ec_cond_destroy(&cond_); }

Hub::Hub(const HubOptions& options) : options_(options) {
  ec_mutex_init(&mutex_);
  ec_cond_init(&drained_cond_);
  ec_cond_init(&progress_cond_);
  ec_cond_init(&signalled_cond_);
}

Hub::~Hub() {
  ec_cond_destroy(&signalled_cond_);
  ec_cond_destroy(&progress_cond_);
  ec_cond_destroy(&drained_cond_);
  ec_mutex_destroy(&mutex_);
}

std::uint64_t Hub::start_of(std::uint64_t seq) const {
  if (seq >= head_seq()) return total_bytes_;
  return log_[static_cast<std::size_t>(seq - base_seq_)].start;
}

void Hub::join(HubMember* m) {
  ec_lock_guard lock(&mutex_);
  std::uint64_t head = head_seq();
  std::uint64_t from = head >= options_.replay ? head - options_.replay : 0;
  m->cursor_ = std::max(from, base_seq_);
  m->reason_ = nullptr;
  m->waiting_ = false;
  m->over_ = false;
  m->joined_ = true;
  members_.push_back(m);
}

void Hub::leave(HubMember* m) {
  ec_lock_guard lock(&mutex_);
  // An appender may be about to signal this member's condition variable
  // outside the lock; the member must outlive that.
  while (m->signals_pending_ > 0) {
    ++leavers_waiting_;
    ec_cond_wait(&signalled_cond_, &mutex_);
    --leavers_waiting_;
  }
  if (!m->joined_) return;
  m->joined_ = false;
  auto it = std::find(members_.begin(), members_.end(), m);
  if (it != members_.end()) {
    *it = members_.back();
    members_.pop_back();
  }
  ec_cond_broadcast(&drained_cond_);
  progress_locked();
}

void Hub::progress_locked() {
  if (waiting_appenders_ > 0) ec_cond_broadcast(&progress_cond_);
}

const char* Hub::close_locked(HubMember* m, const char* reason) {
  if (m->reason_ == nullptr) {
    m->reason_ = reason;
    m->on_close(reason);
    ec_cond_signal(&m->cond_);
    ec_cond_broadcast(&drained_cond_);
    progress_locked();
  }
  return m->reason_;
}

bool Hub::append(const FrameRef* frames, std::size_t count, bool may_wait) {
  ec_mutex_lock(&mutex_);
  bool ok = append_locked(frames, count, may_wait);
  if (to_wake_.empty()) {
    ec_mutex_unlock(&mutex_);
    return ok;
  }
  // Wake the sleeping writers after releasing the lock they need.
  std::vector<HubMember*> wake;
  wake.swap(to_wake_);
  ec_mutex_unlock(&mutex_);
  for (HubMember* m : wake) ec_cond_signal(&m->cond_);
  ec_mutex_lock(&mutex_);
  for (HubMember* m : wake) --m->signals_pending_;
  if (leavers_waiting_ > 0) ec_cond_broadcast(&signalled_cond_);
  if (to_wake_.capacity() < wake.capacity()) {
    wake.clear();
    to_wake_.swap(wake);  // Keep the allocation for the next append.
  }
  ec_mutex_unlock(&mutex_);
  return ok;
}

bool Hub::append_locked(const FrameRef* frames, std::size_t count, bool may_wait) {
  if (count == 0) return !input_closed_;
  std::uint64_t incoming = 0;
  for (std::size_t i = 0; i < count; ++i) incoming += frames[i]->bytes.size();
  // The slow-consumer rule, before the frames go in.
  for (;;) {
    if (input_closed_) return false;
    std::uint64_t now = 0;
    std::uint64_t wait_until = 0;
    for (HubMember* m : members_) {
      if (m->reason_ != nullptr) continue;
      std::uint64_t backlog = total_bytes_ + incoming - start_of(m->cursor_);
      if (backlog <= options_.max_backlog_bytes) continue;
      if (now == 0) now = ec_now_ms() + 1;  // +1: never 0, "not read yet".
      if (!m->over_) {
        m->over_ = true;
        m->over_since_ms_ = now;
      }
      std::uint64_t deadline = m->over_since_ms_ + options_.slow_grace_ms;
      if (now >= deadline) {
        close_locked(m, "slow-consumer");
      } else if (wait_until == 0 || deadline < wait_until) {
        wait_until = deadline;
      }
    }
    if (wait_until == 0 || !may_wait) break;
    ++waiting_appenders_;
    ec_cond_timed_wait(&progress_cond_, &mutex_, wait_until - now);
    --waiting_appenders_;
  }
  for (std::size_t i = 0; i < count; ++i) {
    log_.push_back(Entry{frames[i], total_bytes_});
    total_bytes_ += frames[i]->bytes.size();
  }
  counters_.frames_in += count;
  counters_.bytes_in += incoming;
  for (HubMember* m : members_) {
    if (m->reason_ == nullptr && m->waiting_) {
      m->waiting_ = false;
      ++m->signals_pending_;
      to_wake_.push_back(m);
    }
  }
  trim_locked();
  return true;
}

void Hub::trim_locked() {
  std::uint64_t head = head_seq();
  std::uint64_t keep = head >= options_.replay ? head - options_.replay : 0;
  for (HubMember* m : members_) {
    if (m->reason_ == nullptr && m->cursor_ < keep) keep = m->cursor_;
  }
  while (base_seq_ < keep && !log_.empty()) {
    log_.pop_front();
    ++base_seq_;
  }
}

BatchResult Hub::next_batch(HubMember* m, std::vector<FrameRef>* out,
                            std::uint64_t* end, std::size_t max_bytes,
                            bool block, std::uint64_t done) {
  out->clear();
  ec_lock_guard lock(&mutex_);
  if (done != 0) advance_locked(m, done);
  for (;;) {
    if (m->reason_ != nullptr) return BatchResult::Closed;
    std::uint64_t head = head_seq();
    std::uint64_t seq = m->cursor_;
    if (seq < base_seq_) seq = base_seq_;  // Cannot happen; defensive.
    std::size_t bytes = 0;
    while (seq < head && (out->empty() || bytes < max_bytes)) {
      const FrameRef& f = log_[static_cast<std::size_t>(seq - base_seq_)].frame;
      ++seq;
      if (!options_.echo_to_sender && f->sender == m->id && m->id != 0) continue;
      out->push_back(f);
      bytes += f->bytes.size();
    }
    if (seq != m->cursor_ || !block) {
      // Either frames to send, or only own frames skipped (cursor moves on).
      *end = seq;
      if (out->empty() && seq != m->cursor_) {
        m->cursor_ = seq;  // Only own frames, skipped: progress all the same.
        if (m->over_ && total_bytes_ - start_of(m->cursor_) <= options_.max_backlog_bytes)
          m->over_ = false;
        progress_locked();
        if (input_closed_) ec_cond_broadcast(&drained_cond_);
        if (!block) return BatchResult::Frames;
        continue;
      }
      // Deliveries are counted as the batch is handed to the writer, before
      // its bytes reach the socket, so stats never lag what a client has
      // already received (a send that then fails cuts that client anyway).
      counters_.frames_out += out->size();
      counters_.bytes_out += bytes;
      return BatchResult::Frames;
    }
    m->waiting_ = true;
    ec_cond_wait(&m->cond_, &mutex_);
    m->waiting_ = false;
  }
}

void Hub::complete_batch(HubMember* m, std::uint64_t end) {
  ec_lock_guard lock(&mutex_);
  advance_locked(m, end);
}

void Hub::advance_locked(HubMember* m, std::uint64_t end) {
  if (end > m->cursor_) m->cursor_ = end;
  if (m->over_ && total_bytes_ - start_of(m->cursor_) <= options_.max_backlog_bytes)
    m->over_ = false;
  progress_locked();
  if (input_closed_) ec_cond_broadcast(&drained_cond_);
}

const char* Hub::close_member(HubMember* m, const char* reason) {
  ec_lock_guard lock(&mutex_);
  return close_locked(m, reason);
}

const char* Hub::reason(HubMember* m) {
  ec_lock_guard lock(&mutex_);
  return m->reason_;
}

void Hub::close_input() {
  ec_lock_guard lock(&mutex_);
  input_closed_ = true;
  progress_locked();
}

bool Hub::drained() {
  ec_lock_guard lock(&mutex_);
  std::uint64_t head = head_seq();
  for (HubMember* m : members_) {
    if (m->reason_ == nullptr && m->cursor_ < head) return false;
  }
  return true;
}

bool Hub::wait_drained(std::uint64_t deadline_ms) {
  ec_lock_guard lock(&mutex_);
  for (;;) {
    std::uint64_t head = head_seq();
    bool done = true;
    for (HubMember* m : members_) {
      if (m->reason_ == nullptr && m->cursor_ < head) {
        done = false;
        break;
      }
    }
    if (done) return true;
    std::uint64_t now = ec_now_ms();
    if (now >= deadline_ms) return false;
    ec_cond_timed_wait(&drained_cond_, &mutex_, deadline_ms - now);
  }
}

void Hub::close_all(const char* reason) {
  ec_lock_guard lock(&mutex_);
  for (HubMember* m : members_) close_locked(m, reason);
}

HubCounters Hub::counters() {
  ec_lock_guard lock(&mutex_);
  return counters_;
}

std::size_t Hub::log_frames() {
  ec_lock_guard lock(&mutex_);
  return log_.size();
}

std::uint64_t Hub::log_bytes() {
  ec_lock_guard lock(&mutex_);
  return log_.empty() ? 0 : total_bytes_ - log_.front().start;
}

}  // namespace echocast
