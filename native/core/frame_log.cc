// frame_log.cc — see frame_log.h.
#include "frame_log.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "ws/frame.h"
#include "ws/primitives.h"

namespace echocast {

namespace {
// Standard block size; a frame over half of it gets a block of its own, so
// the room wasted at the end of a block stays under half a block.
constexpr std::size_t kBlockBytes = 64 * 1024;
}  // namespace

FrameLog::FrameLog(std::uint32_t replay, bool ws_headers)
    : replay_(replay), ws_headers_(ws_headers) {}
FrameLog::~FrameLog() = default;

void FrameLog::append(const std::uint8_t* data, std::size_t len, std::size_t payload_offset,
                      std::size_t payload_size, std::uint64_t sender) {
  if (blocks_.empty() || blocks_.back().cap - blocks_.back().used < len) {
    Block b;
    if (len <= kBlockBytes / 2 && spare_.mem) {
      b = std::move(spare_);
      spare_ = Block();
    } else {
      b.cap = len <= kBlockBytes / 2 ? kBlockBytes : len;
      b.mem.reset(new std::uint8_t[b.cap]);
    }
    b.used = 0;
    blocks_.push_back(std::move(b));
  }
  Block& b = blocks_.back();
  std::uint8_t* at = b.mem.get() + b.used;
  if (len > 0) std::memcpy(at, data, len);
  b.used += len;
  frames_.push_back(Entry{at, len, sender, total_bytes_});
  if (ws_headers_) {
    // docs/contract.md §6: one message per frame, its payload the frame's
    // payload, text when that is valid UTF-8; the header is made once here.
    WsEntry w;
    w.payload = at + payload_offset;
    w.payload_len = payload_size;
    bool text = ws::valid_utf8(w.payload, payload_size);
    std::uint8_t header[ws::kMaxHeader];
    std::size_t n = ws::encode_header(text ? ws::kText : ws::kBinary, payload_size, header);
    std::memcpy(w.header, header, n);
    w.header_len = static_cast<std::uint8_t>(n);
    ws_frames_.push_back(w);
  }
  total_bytes_ += len;
  b.end_seq = head_seq();
}

std::uint64_t FrameLog::join_seq() const {
  std::uint64_t head = head_seq();
  std::uint64_t from = head >= replay_ ? head - replay_ : 0;
  return std::max(from, base_seq_);
}

std::uint64_t FrameLog::backlog(const Cursor& c) const {
  if (c.seq >= head_seq()) return 0;
  std::uint64_t seq = std::max(c.seq, base_seq_);
  const Entry& e = at(seq);
  std::size_t offset = seq == c.seq ? std::min(c.offset, e.len) : 0;
  return total_bytes_ - e.start - offset + (head_seq() - seq) * frame_overhead();
}

std::uint64_t FrameLog::start_of(std::uint64_t seq) const {
  return seq >= head_seq() ? total_bytes_ : at(seq).start;
}

std::uint64_t FrameLog::first_at_or_after(std::uint64_t lo, std::uint64_t hi,
                                          std::uint64_t pos) const {
  // Byte positions grow with sequence numbers: binary search.
  while (lo < hi) {
    std::uint64_t mid = lo + (hi - lo) / 2;
    if (at(mid).start < pos) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

template <typename Piece>
FrameLog::Gathered FrameLog::walk_frames(const Cursor& from, std::uint64_t skip_sender,
                                         std::size_t max_bytes, std::uint64_t count_from,
                                         Piece piece) const {
  Gathered g;
  std::uint64_t head = head_seq();
  std::uint64_t seq = std::max(from.seq, base_seq_);
  for (; seq < head; ++seq) {
    const Entry& e = at(seq);
    if (skip_sender != 0 && e.sender == skip_sender) continue;
    if (g.pieces > 0 && g.bytes >= max_bytes) break;
    std::size_t size = piece(seq, e, &g);
    if (size == kStopWalk) break;
    if (seq >= count_from) {
      ++g.new_frames;
      g.new_bytes += size;
    }
  }
  g.end = seq;
  return g;
}

FrameLog::Gathered FrameLog::gather(const Cursor& from, std::uint64_t skip_sender, ec_iovec* out,
                                    std::size_t max_pieces, std::size_t max_bytes,
                                    std::uint64_t count_from) const {
  if (skip_sender == 0) return gather_runs(from, out, max_pieces, max_bytes, count_from);
  return walk_frames(
      from, skip_sender, max_bytes, count_from,
      [&](std::uint64_t seq, const Entry& e, Gathered* g) {
        std::size_t offset = seq == from.seq ? std::min(from.offset, e.len) : 0;
        const std::uint8_t* p = e.data + offset;
        std::size_t len = e.len - offset;
        if (g->pieces > 0 &&
            static_cast<const std::uint8_t*>(out[g->pieces - 1].base) + out[g->pieces - 1].len ==
                p) {
          out[g->pieces - 1].len += len;
        } else {
          if (g->pieces == max_pieces) return kStopWalk;
          out[g->pieces].base = p;
          out[g->pieces].len = len;
          ++g->pieces;
        }
        g->bytes += len;
        return e.len;
      });
}

// Nobody skipped: frames that share a block lie side by side, so a piece is
// a run of frames up to the block's end, found by position, not by walking
// every frame (a fan-out to N clients would walk each frame N times).
FrameLog::Gathered FrameLog::gather_runs(const Cursor& from, ec_iovec* out, std::size_t max_pieces,
                                         std::size_t max_bytes, std::uint64_t count_from) const {
  Gathered g;
  std::uint64_t head = head_seq();
  std::uint64_t seq = std::max(from.seq, base_seq_);
  g.end = seq;
  if (seq >= head || max_pieces == 0) return g;
  std::size_t offset = seq == from.seq ? std::min(from.offset, at(seq).len) : 0;
  std::uint64_t pos0 = at(seq).start + offset;
  // A frame is taken while fewer than max_bytes precede it (at least one).
  std::uint64_t end = head;
  if (max_bytes <= total_bytes_ - pos0) end = first_at_or_after(seq + 1, head, pos0 + max_bytes);
  // The first block still holding `seq`.
  auto blk = std::upper_bound(blocks_.begin(), blocks_.end(), seq,
                              [](std::uint64_t s, const Block& b) { return s < b.end_seq; });
  std::uint64_t s = seq;
  while (s < end && blk != blocks_.end()) {
    std::uint64_t run_end = std::min(end, blk->end_seq);
    if (run_end > s) {
      if (g.pieces == max_pieces) {
        end = s;
        break;
      }
      const Entry& first = at(s);
      const Entry& last = at(run_end - 1);
      const std::uint8_t* p = first.data + (s == seq ? offset : 0);
      std::size_t len = static_cast<std::size_t>(last.data + last.len - p);
      out[g.pieces].base = p;
      out[g.pieces].len = len;
      ++g.pieces;
      g.bytes += len;
      s = run_end;
    }
    ++blk;
  }
  g.end = end;
  std::uint64_t counted = std::max(seq, count_from);
  if (counted < end) {
    g.new_frames = end - counted;
    g.new_bytes = start_of(end) - at(counted).start;
  }
  return g;
}

FrameLog::Cursor FrameLog::advance(Cursor from, std::uint64_t skip_sender, std::size_t sent,
                                   std::uint64_t end) const {
  Cursor c = from;
  if (c.seq < base_seq_) c = Cursor{base_seq_, 0};
  if (skip_sender == 0) {
    if (c.seq >= end) return c;
    std::uint64_t pos = at(c.seq).start + c.offset + sent;
    if (pos >= start_of(end)) return Cursor{end, 0};
    // The last frame starting at or before pos.
    std::uint64_t s = first_at_or_after(c.seq, end, pos + 1) - 1;
    return Cursor{s, static_cast<std::size_t>(pos - at(s).start)};
  }
  return advance_frames(c, skip_sender, sent, end,
                        [this](std::uint64_t seq) { return at(seq).len; });
}

template <typename Size>
FrameLog::Cursor FrameLog::advance_frames(Cursor c, std::uint64_t skip_sender, std::size_t sent,
                                          std::uint64_t end, Size size) const {
  while (c.seq < end) {
    if (skip_sender != 0 && at(c.seq).sender == skip_sender) {
      ++c.seq;
      c.offset = 0;
      continue;
    }
    std::size_t total = size(c.seq);
    std::size_t rest = total - std::min<std::size_t>(c.offset, total);
    if (sent >= rest) {
      sent -= rest;
      ++c.seq;
      c.offset = 0;
    } else {
      c.offset += sent;
      break;
    }
  }
  return c;
}

FrameLog::Gathered FrameLog::gather_ws(const Cursor& from, std::uint64_t skip_sender, ec_iovec* out,
                                       std::size_t max_pieces, std::size_t max_bytes,
                                       std::uint64_t count_from) const {
  return walk_frames(
      from, skip_sender, max_bytes, count_from, [&](std::uint64_t seq, const Entry&, Gathered* g) {
        const WsEntry& w = ws_at(seq);
        std::size_t total = w.header_len + w.payload_len;
        std::size_t offset = seq == from.seq ? std::min(from.offset, total) : 0;
        std::size_t need =
            (offset < w.header_len ? 1 : 0) + (total > offset && w.payload_len > 0 ? 1 : 0);
        if (g->pieces + need > max_pieces) return kStopWalk;
        if (offset < w.header_len) {
          out[g->pieces].base = w.header + offset;
          out[g->pieces].len = w.header_len - offset;
          ++g->pieces;
        }
        std::size_t poff = offset > w.header_len ? offset - w.header_len : 0;
        if (w.payload_len > poff) {
          out[g->pieces].base = w.payload + poff;
          out[g->pieces].len = w.payload_len - poff;
          ++g->pieces;
        }
        g->bytes += total - offset;
        return total;
      });
}

FrameLog::Cursor FrameLog::advance_ws(Cursor from, std::uint64_t skip_sender, std::size_t sent,
                                      std::uint64_t end) const {
  Cursor c = from;
  if (c.seq < base_seq_) c = Cursor{base_seq_, 0};
  return advance_frames(c, skip_sender, sent, end, [this](std::uint64_t seq) {
    const WsEntry& w = ws_at(seq);
    return static_cast<std::size_t>(w.header_len + w.payload_len);
  });
}

void FrameLog::trim(std::uint64_t slowest) {
  std::uint64_t head = head_seq();
  std::uint64_t keep = head >= replay_ ? head - replay_ : 0;
  keep = std::min(keep, slowest);
  while (base_seq_ < keep && !frames_.empty()) {
    frames_.pop_front();
    if (ws_headers_) ws_frames_.pop_front();
    ++base_seq_;
  }
  // A block goes once every frame it held is gone; the last block stays
  // (it is being filled) unless the log is empty, then it is reset.
  while (!blocks_.empty() && blocks_.front().end_seq <= base_seq_) {
    if (blocks_.size() == 1) {
      if (frames_.empty()) blocks_.front().used = 0;
      break;
    }
    Block b = std::move(blocks_.front());
    blocks_.pop_front();
    if (b.cap == kBlockBytes && !spare_.mem) spare_ = std::move(b);
  }
}

std::uint64_t FrameLog::bytes() const {
  return frames_.empty() ? 0 : total_bytes_ - frames_.front().start;
}

}  // namespace echocast
