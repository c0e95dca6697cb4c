// handshake_list.cc — the WebSocket connections awaiting their upgrade (see
// handshake_list.h).
#include "handshake_list.h"

#include "connection.h"

namespace echocast {

bool HandshakeList::add(Connection* c, std::uint64_t now_ms) { return add(c, now_ms, timeout_ms_); }

bool HandshakeList::add(Connection* c, std::uint64_t now_ms, std::uint64_t timeout_ms) {
  if (full() || listed(c)) return false;
  c->deadline_passed_ = false;
  c->handshake_deadline_ = now_ms + timeout_ms;
  c->handshake_index_ = list_.size();
  list_.push_back(c);
  if (next_ == 0 || c->handshake_deadline_ < next_) next_ = c->handshake_deadline_;
  return true;
}

void HandshakeList::hold(Connection* c, std::uint64_t due_ms) {
  if (!listed(c)) return;
  if (!c->holds_slot_) holding_ += 1;
  c->holds_slot_ = true;
  extend(c, due_ms);
}

void HandshakeList::extend(Connection* c, std::uint64_t due_ms) {
  if (!listed(c)) return;
  c->handshake_deadline_ = due_ms;
  c->deadline_passed_ = false;
  if (next_ == 0 || due_ms < next_) next_ = due_ms;
}

void HandshakeList::remove(Connection* c) {
  if (!listed(c)) return;
  if (c->holds_slot_) holding_ -= 1;
  c->holds_slot_ = false;
  Connection* last = list_.back();
  list_[c->handshake_index_] = last;
  last->handshake_index_ = c->handshake_index_;
  list_.pop_back();
  c->handshake_index_ = Connection::kNotListed;
  if (list_.empty()) next_ = 0;
}

bool HandshakeList::listed(const Connection* c) const {
  return c->handshake_index_ < list_.size() && list_[c->handshake_index_] == c;
}

std::uint64_t HandshakeList::expire(std::uint64_t now_ms, std::vector<Connection*>* expired) {
  std::uint64_t next = 0;
  for (Connection* c : list_) {
    if (c->handshake_deadline_ == 0) continue;  // Expired already.
    if (now_ms >= c->handshake_deadline_) {
      c->handshake_deadline_ = 0;
      c->deadline_passed_ = true;
      expired->push_back(c);
      continue;
    }
    if (next == 0 || c->handshake_deadline_ < next) next = c->handshake_deadline_;
  }
  next_ = next;
  return next_;
}

}  // namespace echocast
