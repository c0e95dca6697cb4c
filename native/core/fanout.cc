// fanout.cc — see fanout.h.
#include "fanout.h"

#include <algorithm>

namespace echocast {

Fanout::Fanout(const FanoutOptions& options)
    : options_(options), log_(options.replay, options.ws) {}

void Fanout::join(FanoutMember* m) {
  m->cursor = FrameLog::Cursor{log_.join_seq(), 0};
  m->counted = m->cursor.seq;
  m->closing = false;
  m->sending = false;
  m->over_half = false;
  m->finishing = false;
  m->finish_seq = 0;
  members_.push_back(m);
}

void Fanout::leave(FanoutMember* m) {
  auto it = std::find(members_.begin(), members_.end(), m);
  if (it == members_.end()) return;
  if (paused_ && m->over_half) --over_half_count_;
  m->over_half = false;
  *it = members_.back();
  members_.pop_back();
}

FrameLog::Gathered Fanout::gather(FanoutMember* m, ec_iovec* out, std::size_t max_pieces,
                                  std::size_t max_bytes) {
  std::uint64_t skip = options_.echo_to_sender ? 0 : m->id;
  FrameLog::Gathered g =
      m->ws ? log_.gather_ws(m->cursor, skip, out, max_pieces, max_bytes, m->counted)
            : log_.gather(m->cursor, skip, out, max_pieces, max_bytes, m->counted);
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
  m->cursor = m->ws ? log_.advance_ws(m->cursor, skip, sent, end)
                    : log_.advance(m->cursor, skip, sent, end);
  // Not paused, the flags are not kept (the next review sets them).
  if (paused_ && m->over_half && log_.backlog(m->cursor) <= options_.max_backlog_bytes / 2) {
    m->over_half = false;
    --over_half_count_;
  }
}

bool Fanout::close(FanoutMember* m, Reason r) {
  if (m->closing) return false;
  m->closing = true;
  m->reason = r;
  // A closing member no longer holds reading back.
  if (paused_ && m->over_half) --over_half_count_;
  m->over_half = false;
  return true;
}

bool Fanout::finish(FanoutMember* m) {
  if (!m->finishing) {
    m->finishing = true;
    m->finish_seq = log_.head_seq();
  }
  return m->sending ? false : finished(m);
}

bool Fanout::finished(FanoutMember* m) {
  if (!m->finishing) return false;
  if (m->cursor.seq < m->finish_seq && !options_.echo_to_sender && !m->sending) {
    // Its own frames are owed to nobody: pass over them as gather() would.
    m->cursor = m->ws ? log_.advance_ws(m->cursor, m->id, 0, m->finish_seq)
                      : log_.advance(m->cursor, m->id, 0, m->finish_seq);
  }
  return m->cursor.seq >= m->finish_seq;
}

void Fanout::end_pause(std::uint64_t now_ms) {
  paused_ = false;
  over_half_count_ = 0;
  std::uint64_t since = pause_since_ms_.load(std::memory_order_relaxed);
  paused_ms_total_.fetch_add(now_ms > since ? now_ms - since : 0, std::memory_order_relaxed);
  pause_since_ms_.store(0, std::memory_order_relaxed);
}

std::uint64_t Fanout::read_paused_ms(std::uint64_t now_ms) const {
  std::uint64_t since = pause_since_ms_.load(std::memory_order_relaxed);
  std::uint64_t total = paused_ms_total_.load(std::memory_order_relaxed);
  return total + (since != 0 && now_ms > since ? now_ms - since : 0);
}

std::size_t Fanout::read_bytes(std::size_t most) const {
  std::uint64_t room = options_.max_backlog_bytes / (1 + log_.frame_overhead());
  if (room < kMinReadBytes) room = kMinReadBytes;
  return room < most ? static_cast<std::size_t>(room) : most;
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

FanoutCounters Fanout::counters() const {
  FanoutCounters c;
  c.frames_in = frames_in_.load(std::memory_order_relaxed);
  c.bytes_in = bytes_in_.load(std::memory_order_relaxed);
  c.frames_out = frames_out_.load(std::memory_order_relaxed);
  c.bytes_out = bytes_out_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace echocast
