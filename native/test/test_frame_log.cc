// test_frame_log.cc — the store-once frame log: replay start,
// gathering contiguous frames into few pieces, skipping a sender's own
// frames, partial sends, delivery counting, trimming and block reuse.
#include <initializer_list>
#include <string>
#include <vector>

#include "../core/frame_log.h"
#include "unit.h"

using namespace echocast;

namespace {

void put(FrameLog* log, const std::string& s, std::uint64_t sender) {
  log->append(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), sender);
}

// A frame's wire bytes and its sender.
struct Sent {
  std::string bytes;
  std::uint64_t sender;
};

// Appends the frames in order (no payload bounds: raw frames).
void put_all(FrameLog* log, std::initializer_list<Sent> frames) {
  for (const Sent& f : frames) put(log, f.bytes, f.sender);
}

std::string joined(const ec_iovec* v, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out.append(static_cast<const char*>(v[i].base), v[i].len);
  return out;
}

}  // namespace

TEST(frame_log_replay_and_gather) {
  FrameLog log(2);
  CHECK_EQ(log.join_seq(), 0u);
  put_all(&log, {{"a\n", 1}, {"bb\n", 2}, {"ccc\n", 1}});
  CHECK_EQ(log.head_seq(), 3u);
  CHECK_EQ(log.head_bytes(), 9u);
  CHECK_EQ(log.join_seq(), 1u);  // The last two frames.
  ec_iovec v[8];
  FrameLog::Gathered g = log.gather(FrameLog::Cursor{1, 0}, 0, v, 8, 1 << 20, 1);
  CHECK_EQ(g.pieces, 1u);  // Side by side in one block: one piece.
  CHECK_EQ(joined(v, g.pieces), std::string("bb\nccc\n"));
  CHECK_EQ(g.end, 3u);
  CHECK_EQ(g.new_frames, 2u);
  CHECK_EQ(g.new_bytes, 7u);
  // A backlog: the bytes still to send, and every frame's entry (S16).
  CHECK_EQ(log.backlog(FrameLog::Cursor{1, 0}), 7u + 2 * FrameLog::kFrameOverhead);
  CHECK_EQ(log.backlog(FrameLog::Cursor{1, 2}), 5u + 2 * FrameLog::kFrameOverhead);
  CHECK_EQ(log.backlog(FrameLog::Cursor{3, 0}), 0u);
}

TEST(frame_log_counts_what_each_frame_costs) {
  // docs/contract.md S16: a stored frame costs its entry beside its bytes
  // (and its WebSocket entry, with ws_headers), which backlogs count.
  CHECK(FrameLog::kFrameOverhead >= 2 * sizeof(std::uint64_t) + sizeof(void*));
  CHECK(FrameLog::kWsFrameOverhead > FrameLog::kFrameOverhead + sizeof(void*));
  for (bool ws : {false, true}) {
    FrameLog log(0, ws);
    const std::size_t overhead = ws ? FrameLog::kWsFrameOverhead : FrameLog::kFrameOverhead;
    CHECK_EQ(log.frame_overhead(), overhead);
    for (int i = 0; i < 1000; ++i)
      log.append(reinterpret_cast<const std::uint8_t*>("\n"), 1, 0, 0, 0);
    CHECK_EQ(log.bytes(), 1000u);
    CHECK_EQ(log.cost(), 1000u * (1 + overhead));
    CHECK_EQ(log.backlog(FrameLog::Cursor{0, 0}), 1000u * (1 + overhead));
    CHECK_EQ(log.backlog(FrameLog::Cursor{990, 0}), 10u * (1 + overhead));
    log.trim(500);
    CHECK_EQ(log.cost(), 500u * (1 + overhead));
    CHECK_EQ(log.backlog(FrameLog::Cursor{0, 0}), 500u * (1 + overhead));  // From the base.
  }
}

TEST(frame_log_skips_own_frames_and_partial_sends) {
  FrameLog log(0);
  put_all(&log, {{"a\n", 1}, {"bb\n", 2}, {"ccc\n", 1}, {"dddd\n", 3}});
  ec_iovec v[8];
  // Client 1 does not get its own frames: two pieces around them.
  FrameLog::Gathered g = log.gather(FrameLog::Cursor{0, 0}, 1, v, 8, 1 << 20, 0);
  CHECK_EQ(g.pieces, 2u);
  CHECK_EQ(joined(v, g.pieces), std::string("bb\ndddd\n"));
  CHECK_EQ(g.new_frames, 2u);
  // Only 4 of the 8 bytes went: the cursor stands 1 byte into "dddd\n".
  FrameLog::Cursor c = log.advance(FrameLog::Cursor{0, 0}, 1, 4, g.end);
  CHECK_EQ(c.seq, 3u);
  CHECK_EQ(c.offset, 1u);
  g = log.gather(c, 1, v, 8, 1 << 20, g.end);
  CHECK_EQ(joined(v, g.pieces), std::string("ddd\n"));
  CHECK_EQ(g.new_frames, 0u);  // Already counted.
  c = log.advance(c, 1, 4, g.end);
  CHECK_EQ(c.seq, 4u);
  CHECK_EQ(c.offset, 0u);
  // Only own frames left: nothing gathered, the range is passed over.
  put(&log, "e\n", 1);
  g = log.gather(c, 1, v, 8, 1 << 20, 4);
  CHECK_EQ(g.pieces, 0u);
  CHECK_EQ(g.end, 5u);
}

TEST(frame_log_limits_and_trim) {
  FrameLog log(1);
  std::string big(40000, 'x');
  big += '\n';
  for (int i = 0; i < 10; ++i) put(&log, big, 0);
  CHECK_EQ(log.frames(), 10u);
  ec_iovec v[2];
  // max_bytes stops before a frame, at least one frame is taken.
  FrameLog::Gathered g = log.gather(FrameLog::Cursor{0, 0}, 0, v, 2, 1, 0);
  CHECK_EQ(g.end, 1u);
  CHECK_EQ(g.bytes, big.size());
  // max_pieces: frames over half a block get blocks of their own, so each
  // is a separate piece here.
  g = log.gather(FrameLog::Cursor{0, 0}, 0, v, 2, 1 << 30, 0);
  CHECK_EQ(g.pieces, 2u);
  CHECK_EQ(g.end, 2u);
  // Trim to the slowest cursor, keeping `replay` frames.
  log.trim(4);
  CHECK_EQ(log.base_seq(), 4u);
  CHECK_EQ(log.frames(), 6u);
  log.trim(100);
  CHECK_EQ(log.base_seq(), 9u);
  CHECK_EQ(log.frames(), 1u);
  CHECK_EQ(log.bytes(), static_cast<std::uint64_t>(big.size()));
  CHECK_EQ(log.join_seq(), 9u);
  CHECK(log.blocks() <= 2u);
  // Small frames reuse blocks; memory stays flat while readers keep up.
  FrameLog small(0);
  for (int i = 0; i < 100000; ++i) {
    put(&small, "0123456789abcdef\n", 0);
    if (i % 100 == 0) small.trim(small.head_seq());
  }
  small.trim(small.head_seq());
  CHECK_EQ(small.frames(), 0u);
  CHECK(small.blocks() <= 1u);
}

// gather()/advance() without a skipped sender go by runs of frames (binary
// search, one piece per block); with a sender that sent nothing they walk
// frame by frame. Both must agree on every cursor, limit and trim.
TEST(frame_log_runs_match_the_frame_walk) {
  std::uint64_t rng = 12345;
  auto next = [&rng](std::uint64_t n) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (rng >> 33) % n;
  };
  const std::uint64_t nobody = 999;  // No frame has this sender.
  FrameLog log(3);
  std::string payload(140000, 'x');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('!' + i % 89);
  for (int round = 0; round < 400; ++round) {
    int adds = static_cast<int>(next(40));
    for (int k = 0; k < adds; ++k) {
      // Mostly small, some over half a block (blocks of their own), some empty.
      std::uint64_t pick = next(100);
      std::size_t len = pick < 3 ? 0 : pick < 8 ? 33000 + next(30000) : 1 + next(200);
      log.append(reinterpret_cast<const std::uint8_t*>(payload.data()) + next(70000), len,
                 1 + next(4));
    }
    if (log.frames() == 0) continue;
    for (int q = 0; q < 20; ++q) {
      std::uint64_t lo = log.base_seq() > 0 ? log.base_seq() - 1 : 0;  // Also a trimmed cursor.
      FrameLog::Cursor c{lo + next(log.head_seq() - lo + 1), 0};
      if (c.seq >= log.base_seq() && c.seq < log.head_seq() && next(2) == 0) {
        ec_iovec one[1];  // A cursor inside a frame: offset below its length.
        FrameLog::Gathered g1 = log.gather(c, 0, one, 1, 1, 0);
        if (g1.end == c.seq + 1 && g1.bytes > 0) c.offset = next(g1.bytes);
      }
      std::size_t max_pieces = 1 + next(4);
      std::size_t max_bytes = 1 + next(q % 2 ? 200000 : 600);
      std::uint64_t count_from = log.base_seq() + next(log.head_seq() - log.base_seq() + 1);
      ec_iovec a[4], b[4];
      FrameLog::Gathered ga = log.gather(c, 0, a, max_pieces, max_bytes, count_from);
      FrameLog::Gathered gb = log.gather(c, nobody, b, max_pieces, max_bytes, count_from);
      CHECK_EQ(ga.end, gb.end);
      CHECK_EQ(ga.bytes, gb.bytes);
      CHECK_EQ(ga.new_frames, gb.new_frames);
      CHECK_EQ(ga.new_bytes, gb.new_bytes);
      CHECK(joined(a, ga.pieces) == joined(b, gb.pieces));
      CHECK(ga.pieces <= gb.pieces);
      std::size_t sent = ga.bytes == 0 ? 0 : next(ga.bytes + 1);
      FrameLog::Cursor ca = log.advance(c, 0, sent, ga.end);
      FrameLog::Cursor cb = log.advance(c, nobody, sent, gb.end);
      CHECK_EQ(ca.seq, cb.seq);
      CHECK_EQ(ca.offset, cb.offset);
    }
    log.trim(log.base_seq() + next(log.frames() + 1));
  }
}

namespace {

// A line frame: the payload is the line without its '\n'.
void put_line(FrameLog* log, const std::string& s, std::uint64_t sender) {
  log->append(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), 0, s.size() - 1, sender);
}

// Appends the line frames in order.
void put_lines(FrameLog* log, std::initializer_list<Sent> frames) {
  for (const Sent& f : frames) put_line(log, f.bytes, f.sender);
}

}  // namespace

TEST(frame_log_ws_gather_header_beside_payload) {
  FrameLog log(0, true);
  put_lines(&log, {{"hi\n", 1}, {"\xff\x41\n", 2}, {"yo\n", 1}});  // The second not UTF-8: binary.
  ec_iovec v[8];
  FrameLog::Gathered g = log.gather_ws(FrameLog::Cursor{0, 0}, 0, v, 8, 1 << 20, 0);
  // Per frame its header (from the entry), then its payload (from the block).
  CHECK_EQ(g.pieces, 6u);
  CHECK_EQ(joined(v, g.pieces), std::string("\x81\x02hi\x82\x02\xff\x41\x81\x02yo"));
  CHECK_EQ(g.bytes, 12u);
  CHECK_EQ(g.new_frames, 3u);
  CHECK_EQ(g.new_bytes, 12u);
  CHECK_EQ(g.end, 3u);
  // The payload is not copied: it points into the stored wire bytes.
  CHECK_EQ(v[1].len, 2u);
  // A partial send: 5 bytes = the first message and 1 header byte of the next.
  FrameLog::Cursor c = log.advance_ws(FrameLog::Cursor{0, 0}, 0, 5, g.end);
  CHECK_EQ(c.seq, 1u);
  CHECK_EQ(c.offset, 1u);
  g = log.gather_ws(c, 0, v, 8, 1, 0);  // At least one frame: the rest of it.
  CHECK_EQ(joined(v, g.pieces), std::string("\x02\xff\x41"));
  CHECK_EQ(g.end, 2u);
  // Skipping sender 1's frames.
  g = log.gather_ws(FrameLog::Cursor{0, 0}, 1, v, 8, 1 << 20, 0);
  CHECK_EQ(joined(v, g.pieces), std::string("\x82\x02\xff\x41"));
  c = log.advance_ws(FrameLog::Cursor{0, 0}, 1, 4, g.end);
  CHECK_EQ(c.seq, 3u);
  CHECK_EQ(c.offset, 0u);
  // Too few pieces for a frame's two: it waits for the next gather.
  g = log.gather_ws(FrameLog::Cursor{0, 0}, 0, v, 3, 1 << 20, 0);
  CHECK_EQ(g.pieces, 2u);
  CHECK_EQ(g.end, 1u);
  // Backlog in log bytes; an offset past the frame's log size is capped.
  // The frame's entries count until it is passed.
  CHECK_EQ(log.backlog(FrameLog::Cursor{2, 0}), 3u + FrameLog::kWsFrameOverhead);
  CHECK_EQ(log.backlog(FrameLog::Cursor{2, 4}), FrameLog::kWsFrameOverhead);
  // Trim drops the WebSocket side with the entries.
  log.trim(2);
  CHECK_EQ(log.frames(), 1u);
  g = log.gather_ws(FrameLog::Cursor{2, 0}, 0, v, 8, 1 << 20, 0);
  CHECK_EQ(joined(v, g.pieces), std::string("\x81\x02yo"));
}

TEST(frame_log_ws_empty_payload_and_long_header) {
  FrameLog log(0, true);
  put_line(&log, "\n", 0);  // An empty line: a header alone.
  std::string big(300, 'x');
  put_line(&log, big + "\n", 0);
  ec_iovec v[8];
  FrameLog::Gathered g = log.gather_ws(FrameLog::Cursor{0, 0}, 0, v, 8, 1 << 20, 0);
  CHECK_EQ(g.pieces, 3u);
  CHECK_EQ(joined(v, 1), std::string("\x81\x00", 2));
  CHECK_EQ(joined(v + 1, 1), std::string("\x81\x7e\x01\x2c"));  // 16-bit length.
  CHECK_EQ(g.bytes, 2u + 4u + 300u);
}
