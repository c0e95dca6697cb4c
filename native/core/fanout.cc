// fanout.cc — see fanout.h.
#include "fanout.h"

#include <algorithm>

namespace echocast {

Fanout::Fanout(const FanoutOptions& options) : options_(options), log_(options.replay) {}

void Fanout::join(FanoutMember* m) {
  m->cursor = FrameLog::Cursor{log_.join_seq(), 0};
  m->counted = m->cursor.seq;
  m->closing = false;
  m->sending = false;
  m->over = false;
  members_.push_back(m);
}

void Fanout::leave(FanoutMember* m) {
  auto it = std::find(members_.begin(), members_.end(), m);
  if (it == members_.end()) return;
  *it = members_.back();
  members_.pop_back();
}

FrameLog::Gathered Fanout::gather(FanoutMember* m, ec_iovec* out, std::size_t max_pieces,
                                  std::size_t max_bytes) {
  std::uint64_t skip = options_.echo_to_sender ? 0 : m->id;
  FrameLog::Gathered g = log_.gather(m->cursor, skip, out, max_pieces, max_bytes, m->counted);
  if (g.end > m->counted) {
    if (g.new_frames != 0) {
      frames_out_.fetch_add(g.new_frames, std::memory_order_relaxed);
      bytes_out_.fetch_add(g.new_bytes, std::memory_order_relaxed);
    }
    m->counted = g.end;
  }
  if (g.pieces == 0 && g.end > m->cursor.seq) advance(m, 0, g.end);  // Own frames only.
  return g;
}

void Fanout::advance(FanoutMember* m, std::size_t sent, std::uint64_t end) {
  std::uint64_t skip = options_.echo_to_sender ? 0 : m->id;
  m->cursor = log_.advance(m->cursor, skip, sent, end);
  if (m->over && log_.backlog(m->cursor) <= options_.max_backlog_bytes) m->over = false;
}

bool Fanout::close(FanoutMember* m, Reason r) {
  if (m->closing) return false;
  m->closing = true;
  m->reason = r;
  return true;
}

Fanout::SlowCheck Fanout::slow_consumers(Clock clock, std::uint64_t incoming,
                                         std::vector<FanoutMember*>* cut) {
  SlowCheck r;
  for (FanoutMember* m : members_) {
    if (m->closing) continue;
    if (log_.backlog(m->cursor) + incoming <= options_.max_backlog_bytes) continue;
    if (r.now_ms == 0) r.now_ms = clock();
    if (!m->over) {
      m->over = true;
      m->over_since_ms = r.now_ms;
    }
    std::uint64_t deadline = m->over_since_ms + options_.slow_grace_ms;
    if (r.now_ms >= deadline) {
      cut->push_back(m);
    } else if (r.wait_until == 0 || deadline < r.wait_until) {
      r.wait_until = deadline;
    }
  }
  return r;
}

void Fanout::trim() {
  std::uint64_t slowest = log_.head_seq();
  for (const FanoutMember* m : members_)
    if ((!m->closing || m->sending) && m->cursor.seq < slowest) slowest = m->cursor.seq;
  log_.trim(slowest);
}

bool Fanout::drained() const {
  for (const FanoutMember* m : members_)
    if (!m->closing && pending(m)) return false;
  return true;
}

HubCounters Fanout::counters() const {
  HubCounters c;
  c.frames_in = frames_in_.load(std::memory_order_relaxed);
  c.bytes_in = bytes_in_.load(std::memory_order_relaxed);
  c.frames_out = frames_out_.load(std::memory_order_relaxed);
  c.bytes_out = bytes_out_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace echocast
