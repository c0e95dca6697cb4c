// frame_log.h — the store-once frame log both native engines share (through
// fanout.h): one total order of frames, each stored once however many
// clients receive it; clients hold cursors, a newcomer starts at the last
// `replay` frames, the log is trimmed up to the slowest cursor.
//
// The storage is chosen for gathered sends: frame bytes are copied side by
// side into large blocks, so consecutive frames are one contiguous range and
// a client's whole backlog is usually one or two iovecs, gathered straight
// into one writev/WSASend with no per-client copy, no allocation and no
// reference counting per frame. Pure code, no I/O, no locks: the poll
// engine's one thread owns it; the threads engine keeps it under the hub's
// lock, and its writers send from the blocks outside that lock (the
// cursors of in-flight sends hold the trim back, see fanout.h).
//
// WebSocket readers (docs/contract.md §6) are served from the same bytes:
// with ws_headers on, each entry also keeps where its payload lies inside
// the stored wire bytes and the header of the one WebSocket message that
// carries it (text when the payload is valid UTF-8, else binary), computed
// once at append. gather_ws() yields, per frame, [header][payload] as two
// iovecs (no copy per client); a WebSocket cursor's offset counts bytes of
// header + payload. Without ws_headers (no WebSocket listener) nothing of
// this is computed or stored, and the TCP path is unchanged.
#ifndef ECHOCAST_CORE_FRAME_LOG_H
#define ECHOCAST_CORE_FRAME_LOG_H

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>

#include "../platform/platform.h"
#include "websocket.h"

namespace echocast {

class FrameLog {
 public:
  // Where a reader is: the next frame it has not completely been sent, and
  // how many bytes of that frame it has been sent already.
  struct Cursor {
    std::uint64_t seq = 0;
    std::size_t offset = 0;
  };

  // What one gather() found.
  struct Gathered {
    std::size_t pieces = 0;        // iovecs written to `out`.
    std::size_t bytes = 0;         // Bytes they hold.
    std::uint64_t end = 0;         // Sequence number the gathered range ends at.
    std::uint64_t new_frames = 0;  // Frames at or after `count_from` in it,
    std::uint64_t new_bytes = 0;   // and their full sizes (deliveries).
  };

  // ws_headers: keep a WebSocket header per frame (see above).
  explicit FrameLog(std::uint32_t replay, bool ws_headers = false);
  ~FrameLog();
  FrameLog(const FrameLog&) = delete;
  FrameLog& operator=(const FrameLog&) = delete;

  // Appends a copy of one frame sent by `sender` (0: the server or none),
  // whose payload (what a WebSocket reader gets) is the whole frame.
  void append(const std::uint8_t* data, std::size_t len, std::uint64_t sender) {
    append(data, len, 0, len, sender);
  }
  // The same, with the payload's extent inside the frame (line: without the
  // '\n'; length: without the prefix).
  void append(const std::uint8_t* data, std::size_t len, std::size_t payload_offset,
              std::size_t payload_size, std::uint64_t sender);
  bool ws_headers() const { return ws_headers_; }

  // Sequence numbers: [base_seq(), head_seq()) are in the log.
  std::uint64_t base_seq() const { return base_seq_; }
  std::uint64_t head_seq() const { return base_seq_ + frames_.size(); }

  // Bytes ever appended: the byte position of the head.
  std::uint64_t head_bytes() const { return total_bytes_; }

  // Where a newcomer starts: the last `replay` frames still held.
  std::uint64_t join_seq() const;

  // What the frames between a cursor and the head cost: their bytes and
  // frame_overhead() for each (docs/contract.md S16): that reader's backlog
  // (S7). For a WebSocket cursor the bytes are log bytes too (its offset,
  // which counts header + payload bytes, is taken as log bytes, capped at
  // the frame's size): the headers and the framing's delimiters differ by a
  // few bytes per frame, which the flow-control limits do not need to see.
  std::uint64_t backlog(const Cursor& c) const;

  // What the log spends on one frame beside its bytes: its entry, and with
  // ws_headers its WebSocket entry too (see kFrameOverhead).
  std::size_t frame_overhead() const { return ws_headers_ ? kWsFrameOverhead : kFrameOverhead; }

  // Fills `out` (at most max_pieces) with the bytes after `from`, frame by
  // frame in order, skipping frames sent by `skip_sender` (when not 0), and
  // merging frames that lie side by side into one piece. Stops before a
  // frame once max_bytes are gathered (always taking at least one frame).
  // Frames with a sequence number >= count_from are counted as new.
  Gathered gather(const Cursor& from, std::uint64_t skip_sender, ec_iovec* out,
                  std::size_t max_pieces, std::size_t max_bytes, std::uint64_t count_from) const;

  // The cursor after `sent` bytes of a gather that ended at `end` went out
  // (skipped frames are passed over as gather() did).
  Cursor advance(Cursor from, std::uint64_t skip_sender, std::size_t sent, std::uint64_t end) const;

  // gather() and advance() for a WebSocket reader (ws_headers must be on):
  // per frame its header, then its payload; bytes count header + payload,
  // and so do new_bytes. The range ends at a frame boundary.
  Gathered gather_ws(const Cursor& from, std::uint64_t skip_sender, ec_iovec* out,
                     std::size_t max_pieces, std::size_t max_bytes, std::uint64_t count_from) const;
  Cursor advance_ws(Cursor from, std::uint64_t skip_sender, std::size_t sent,
                    std::uint64_t end) const;

  // Drops frames before min(slowest, head - replay), and the blocks that
  // held only them.
  void trim(std::uint64_t slowest);

  // What the log holds now (tests and memory checks): frames, their bytes,
  // and what they cost (bytes + frame_overhead() each, as backlog() counts).
  std::size_t frames() const { return frames_.size(); }
  std::uint64_t bytes() const;
  std::uint64_t cost() const { return bytes() + frames_.size() * frame_overhead(); }
  std::size_t blocks() const { return blocks_.size(); }

 private:
  struct Entry {
    const std::uint8_t* data;
    std::size_t len;
    std::uint64_t sender;
    std::uint64_t start;  // Byte position.
  };
  // The WebSocket side of an entry (ws_headers only), in a deque of its own
  // so that the TCP entries stay as small as they were.
  struct WsEntry {
    const std::uint8_t* payload;
    std::size_t payload_len;
    std::uint8_t header[ws::kMaxServerHeader];
    std::uint8_t header_len;
  };

 public:
  // docs/contract.md S16: a stored frame costs the server its entry beside
  // its bytes (and, with ws_headers, its WebSocket entry: 64 bytes in all on
  // 64-bit builds), which for 1-byte or empty frames is most of what they
  // take. Backlogs count it per frame (backlog(), and so the limits of S7),
  // so that a flood of the smallest frames is paced and cut at the memory
  // it takes, not at a thirtieth of it. The blocks' bytes and the deques'
  // own bookkeeping (under a byte per entry) are not counted per frame.
  static constexpr std::size_t kFrameOverhead = sizeof(Entry);
  static constexpr std::size_t kWsFrameOverhead = sizeof(Entry) + sizeof(WsEntry);

 private:
  struct Block {
    std::unique_ptr<std::uint8_t[]> mem;
    std::size_t cap = 0;
    std::size_t used = 0;
    std::uint64_t end_seq = 0;  // One past the last frame stored in it.
  };
  // gather() when no sender is skipped: by runs of frames, not frame by frame.
  // advance() frame by frame, for both views: size(seq) is a frame's size in
  // the view (its wire bytes, or its WebSocket header and payload).
  // The walk gather() and gather_ws() share: from `from`, frame by frame,
  // passing over skip_sender's frames, while fewer than max_bytes are taken
  // (at least one frame); piece(seq, entry, &g) adds the frame's pieces and
  // returns its whole size, or kStopWalk when the pieces do not fit.
  static constexpr std::size_t kStopWalk = static_cast<std::size_t>(-1);
  template <typename Piece>
  Gathered walk_frames(const Cursor& from, std::uint64_t skip_sender, std::size_t max_bytes,
                       std::uint64_t count_from, Piece piece) const;
  template <typename Size>
  Cursor advance_frames(Cursor c, std::uint64_t skip_sender, std::size_t sent, std::uint64_t end,
                        Size size) const;
  Gathered gather_runs(const Cursor& from, ec_iovec* out, std::size_t max_pieces,
                       std::size_t max_bytes, std::uint64_t count_from) const;
  // Byte position of a frame (the head's: every byte ever appended).
  std::uint64_t start_of(std::uint64_t seq) const;
  // The first frame in [lo, hi) starting at or after byte position pos, or hi.
  std::uint64_t first_at_or_after(std::uint64_t lo, std::uint64_t hi, std::uint64_t pos) const;
  const Entry& at(std::uint64_t seq) const {
    return frames_[static_cast<std::size_t>(seq - base_seq_)];
  }

  const WsEntry& ws_at(std::uint64_t seq) const {
    return ws_frames_[static_cast<std::size_t>(seq - base_seq_)];
  }

  std::uint32_t replay_;
  bool ws_headers_;
  std::deque<Entry> frames_;
  std::deque<WsEntry> ws_frames_;  // Parallel to frames_ (ws_headers only).
  std::deque<Block> blocks_;
  Block spare_;  // A freed standard block kept for reuse (no malloc churn).
  std::uint64_t base_seq_ = 0;
  std::uint64_t total_bytes_ = 0;
};

}  // namespace echocast

#endif  // ECHOCAST_CORE_FRAME_LOG_H
