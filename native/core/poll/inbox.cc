// inbox.cc — see inbox.h.
#include "inbox.h"

#include <utility>

namespace echocast {

Inbox::Inbox() {
  ec_mutex_init(&mutex_);
  ec_cond_init(&posted_);
}

Inbox::~Inbox() {
  ec_cond_destroy(&posted_);
  ec_mutex_destroy(&mutex_);
}

void Inbox::attach(Waker* waker) {
  ec_lock_guard lock(&mutex_);
  waker_ = waker;
}

void Inbox::post_locked(Command&& cmd) {
  queue_.push_back(std::move(cmd));
  pending_.store(true, std::memory_order_release);
  ec_cond_signal(&posted_);
  if (waker_ != nullptr) waker_->wake();
}

bool Inbox::post_frames(FrameBatch&& frames, std::uint64_t origin) {
  if (frames.frames.empty()) return false;
  Command cmd;
  cmd.type = Command::Frames;
  cmd.frames = std::move(frames);
  cmd.id = origin;
  ec_lock_guard lock(&mutex_);
  if (closed_) return false;
  post_locked(std::move(cmd));
  return true;
}

void Inbox::post_disconnect(std::uint64_t id, Reason reason) {
  Command cmd;
  cmd.type = Command::Disconnect;
  cmd.id = id;
  cmd.reason = reason;
  ec_lock_guard lock(&mutex_);
  post_locked(std::move(cmd));
}

void Inbox::post_forward(bool on) {
  Command cmd;
  cmd.type = Command::Forward;
  cmd.on = on;
  ec_lock_guard lock(&mutex_);
  post_locked(std::move(cmd));
}

void Inbox::post_answer(std::uint64_t ticket, bool ok, const std::string& detail) {
  Command cmd;
  cmd.type = Command::Answer;
  cmd.id = ticket;
  cmd.on = ok;
  cmd.detail = detail;
  ec_lock_guard lock(&mutex_);
  post_locked(std::move(cmd));
}

void Inbox::post_stop(std::uint64_t deadline_ms) {
  Command cmd;
  cmd.type = Command::Stop;
  cmd.deadline_ms = deadline_ms;
  ec_lock_guard lock(&mutex_);
  post_locked(std::move(cmd));
  closed_ = true;
}

void Inbox::wake() {
  ec_lock_guard lock(&mutex_);
  if (waker_ != nullptr) waker_->wake();
}

void Inbox::take(std::vector<Command>* out) {
  out->clear();
  ec_lock_guard lock(&mutex_);
  out->swap(queue_);
  pending_.store(false, std::memory_order_relaxed);
}

void Inbox::wait(std::uint64_t timeout_ms) {
  ec_lock_guard lock(&mutex_);
  if (queue_.empty()) ec_cond_timed_wait(&posted_, &mutex_, timeout_ms);
}

}  // namespace echocast
