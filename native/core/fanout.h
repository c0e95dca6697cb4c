// fanout.h — the broadcast rules both native engines share, over one
// store-once FrameLog (frame_log.h): members and their cursors, joining with
// replay, echo-skip, delivery counting, the backlog measure, flow control
// and the slow-consumer rule (docs/contract.md S7), the finish of a client
// that closed its side (S11), and trimming up to the slowest cursor.
//
// Pure code: no locks, no I/O, no clock of its own (callers pass the time).
// The poll engine uses it from its one thread; the threads engine wraps it
// in Hub (threads/hub.h), which adds the lock and the condition variables.
//
// Flow control (S7), written once here for both engines. A member's backlog
// is what its unsent frames cost the server (FrameLog::backlog: their bytes
// and each frame's entry, docs/contract.md S16), so the smallest frames are
// paced and cut at the memory they take. When a member's
// backlog passes L = max_backlog_bytes, reading from every client pauses
// (the engines stop reading; publishers feel TCP backpressure) for up to
// slow_consumer_ms, until every backlog is back to L/2 or less; at the end
// of that wait a member still over L is cut and reading resumes. With
// slow_consumer_ms 0 a member over L is cut at once and nothing pauses. A
// backlog at 2L is cut at once whatever the state: frames that TCP cannot
// pace (broadcast, cluster input) never wait. review() applies all of it in
// the one pass over the members the engines make anyway (it also finds the
// slowest cursor for the trim), reads the clock only when some member is
// over L or reading is paused, and while paused advance() counts members
// getting back under L/2, so the pass that ends the episode runs once.
//
// A member's bytes may be in flight outside the owner's lock: a writer
// gathers iovecs straight from the log, marks the member `sending`, and
// sends after releasing the lock. Until it reports back, its cursor has not
// moved, and the trim holds the log back to it even if the member was cut
// meanwhile, so the blocks it sends from are never freed under it.
#ifndef ECHOCAST_CORE_FANOUT_H
#define ECHOCAST_CORE_FANOUT_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../platform/platform.h"
#include "frame_log.h"
#include "reasons.h"

namespace echocast {

// The knobs of the rules, taken from the server options.
struct FanoutOptions {
  std::uint32_t replay = 1;
  bool echo_to_sender = true;
  std::uint64_t max_backlog_bytes = 16u * 1024u * 1024u;
  // How long reading may stay paused for a member over max_backlog_bytes
  // before it is cut (docs/contract.md S7); 0 cuts at once.
  std::uint64_t slow_consumer_ms = 2000;
  // The server has a WebSocket listener: the log keeps a WebSocket header
  // per frame (frame_log.h) for members with `ws` set.
  bool ws = false;
};

// Counters reported by stats(). framesOut/bytesOut count deliveries (one
// frame sent to 50 clients counts 50).
struct FanoutCounters {
  std::uint64_t frames_in = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t frames_out = 0;
  std::uint64_t bytes_out = 0;
};

// A client as the rules see it. Engines derive their connection type from
// it; every field belongs to Fanout (and to whoever serialises access to it).
struct FanoutMember {
  // The client id (1, 2, ...), also the sender id of its frames.
  std::uint64_t id = 0;
  // A WebSocket client (set before join): it is sent each frame as one
  // WebSocket message (FrameLog::gather_ws), its cursor counting header +
  // payload bytes; its backlog is measured in log bytes all the same.
  bool ws = false;
  // The next byte this member has not been sent.
  FrameLog::Cursor cursor;
  // Frames before this sequence number were counted as delivered to it.
  std::uint64_t counted = 0;
  // Set once the member is closing; `reason` says why (the first one wins).
  bool closing = false;
  Reason reason = Reason::ClientClosed;
  // Gathered bytes are being sent outside the owner's lock (see above).
  bool sending = false;
  // While reading is paused: the backlog is over max_backlog_bytes / 2
  // (counted by Fanout::over_half_count_).
  bool over_half = false;
  // The peer closed its side (docs/contract.md S11): it is sent the frames
  // before finish_seq, then closed (see Fanout::finish).
  bool finishing = false;
  std::uint64_t finish_seq = 0;
};

class Fanout {
 public:
  explicit Fanout(const FanoutOptions& options);
  Fanout(const Fanout&) = delete;
  Fanout& operator=(const Fanout&) = delete;

  const FanoutOptions& options() const { return options_; }
  const FrameLog& log() const { return log_; }

  // Adds a member whose cursor starts at the last `replay` frames, so it
  // receives those first and then everything appended after it joined.
  void join(FanoutMember* m);
  // Removes a member; its cursor no longer holds frames in the log.
  void leave(FanoutMember* m);
  const std::vector<FanoutMember*>& members() const { return members_; }

  // Appends one frame (a copy) sent by `sender` (0: none). Counting it as
  // framesIn is the caller's: the poll engine counts injected frames when
  // they are queued, before they reach the log.
  void append(const std::uint8_t* data, std::size_t len, std::uint64_t sender) {
    log_.append(data, len, sender);
    appended_since_review_ += len + log_.frame_overhead();
  }
  // The same, with the payload's extent inside the frame (what a WebSocket
  // member is sent of it).
  void append(const std::uint8_t* data, std::size_t len, std::size_t payload_offset,
              std::size_t payload_size, std::uint64_t sender) {
    log_.append(data, len, payload_offset, payload_size, sender);
    appended_since_review_ += len + log_.frame_overhead();
  }
  void count_in(std::uint64_t frames, std::uint64_t bytes) {
    frames_in_.fetch_add(frames, std::memory_order_relaxed);
    bytes_in_.fetch_add(bytes, std::memory_order_relaxed);
  }

  // Whether the member has frames it has not been sent.
  bool pending(const FanoutMember* m) const { return m->cursor.seq < log_.head_seq(); }

  // Gathers the member's next bytes into `out` (at most max_pieces iovecs,
  // about max_bytes, at least one frame), skipping its own frames when
  // echo_to_sender is false, and counts the frames handed out for the first
  // time as delivered: counted as they are handed to the socket, so stats
  // never lag what a client has already received. When only the member's
  // own frames were pending, they are passed over (the cursor moves) and
  // nothing is gathered. The gathered range ends at *end.
  FrameLog::Gathered gather(FanoutMember* m, ec_iovec* out, std::size_t max_pieces,
                            std::size_t max_bytes);

  // Records that `sent` bytes of a gather ending at `end` went out. While
  // reading is paused, a member getting back to half the limit is counted
  // off (O(1)); see can_resume().
  void advance(FanoutMember* m, std::size_t sent, std::uint64_t end);

  // Marks the member as closing with `r` unless it already is. Returns true
  // if this call closed it (the caller then interrupts its socket).
  bool close(FanoutMember* m, Reason r);

  // docs/contract.md S11: the member's peer closed its side. It is to be
  // sent what is queued for it now (the frames before the log's head), then
  // closed with client-closed. Returns finished(m).
  bool finish(FanoutMember* m);
  // Whether a finishing member has been sent everything it is owed (its
  // own frames, with echo_to_sender false, are passed over). Call it when
  // the member is not `sending`; the caller then closes it.
  bool finished(FanoutMember* m);

  // A millisecond clock (ec_now_ms, or a test's own); never reads 0.
  typedef std::uint64_t (*Clock)();

  // What review() left.
  struct Review {
    bool paused = false;         // Reading is paused (the engines stop reading).
    std::uint64_t deadline = 0;  // While paused: when the wait ends (clock time).
  };

  // The flow-control and slow-consumer rule (docs/contract.md S7) and the
  // trim, in one pass over the members; visit(m) is called for each member
  // in the same loop (the hub collects the writers to wake there). Members
  // to cut with slow-consumer go into *cut (the caller closes every one):
  // a backlog at 2L; over L with slow_consumer_ms 0; over L when the wait
  // of a pause ends. Starts a pause when a backlog passes L, ends it once
  // every backlog is at L/2 or less, or at its deadline. Trims the log up
  // to the slowest cursor of the members that keep it (not closing, or
  // still sending; not the ones in *cut unless sending), keeping `replay`.
  template <typename Visit>
  Review review(Clock clock, std::vector<FanoutMember*>* cut, Visit visit);
  Review review(Clock clock, std::vector<FanoutMember*>* cut) {
    return review(clock, cut, [](FanoutMember*) {});
  }

  // Whether reading is paused, and whether it may resume now (every member
  // back to half the limit: the caller runs review() to end the pause).
  bool paused() const { return paused_; }
  bool can_resume() const { return paused_ && over_half_count_ == 0; }
  std::uint64_t pause_deadline() const { return pause_deadline_ms_; }

  // Whether the poll engine may read one more chunk this turn: not paused,
  // and what was appended since the last review has not taken the largest
  // backlog past the limit (so one turn overshoots by one read at most).
  bool input_open() const {
    return !paused_ && last_max_backlog_ + appended_since_review_ <= options_.max_backlog_bytes;
  }

  // How many bytes one read of a client may take, `most` at most (raw
  // framing excepted: there a read is a frame). What a read appends costs up
  // to 1 + frame_overhead() a byte (a line per '\n', docs/contract.md S16),
  // and one read must not take a backlog within the limit to twice it,
  // where it would be cut at once as frames TCP cannot pace are (S7): so at
  // most max_backlog_bytes / (1 + frame_overhead()), and kMinReadBytes at
  // least. The options do not change: any thread may ask.
  static constexpr std::size_t kMinReadBytes = 4096;
  std::size_t read_bytes(std::size_t most) const;

  // Drops frames no member needs (what review() does last).
  void trim();

  // True when every member that is not closing has been sent everything.
  bool drained() const;

  // Pause episodes so far, and their total length in ms (a running one
  // counts up to now_ms, a reading of the same clock). Any thread.
  std::uint64_t read_pauses() const { return pauses_.load(std::memory_order_relaxed); }
  std::uint64_t read_paused_ms(std::uint64_t now_ms) const;

  // A snapshot of the counters (any thread).
  FanoutCounters counters() const;

 private:
  FanoutOptions options_;
  FrameLog log_;
  void end_pause(std::uint64_t now_ms);

  std::vector<FanoutMember*> members_;
  std::atomic<std::uint64_t> frames_in_{0}, bytes_in_{0}, frames_out_{0}, bytes_out_{0};
  // Flow control (see the top of this file).
  bool paused_ = false;
  std::uint64_t pause_deadline_ms_ = 0;
  std::size_t over_half_count_ = 0;          // While paused: members with over_half.
  std::uint64_t last_max_backlog_ = 0;       // The largest backlog at the last review,
  std::uint64_t appended_since_review_ = 0;  // and what was appended since (as backlogs count it).
  // Stats, read by other threads: episodes, their total, and when the
  // running one began (0: none).
  std::atomic<std::uint64_t> pauses_{0}, paused_ms_total_{0}, pause_since_ms_{0};
};

template <typename Visit>
Fanout::Review Fanout::review(Clock clock, std::vector<FanoutMember*>* cut, Visit visit) {
  const std::uint64_t limit = options_.max_backlog_bytes;
  const std::uint64_t half = limit / 2;
  const std::uint64_t hard = 2 * limit;
  const bool cut_over_limit = options_.slow_consumer_ms == 0;
  std::uint64_t slowest = log_.head_seq();
  std::uint64_t max = 0;
  std::size_t over_half = 0;
  // The one pass: trim point, largest backlog, cuts, half-limit flags.
  for (FanoutMember* m : members_) {
    visit(m);
    if (m->closing) {
      if (m->sending && m->cursor.seq < slowest) slowest = m->cursor.seq;
      continue;
    }
    std::uint64_t b = log_.backlog(m->cursor);
    if (b > limit && (b >= hard || cut_over_limit)) {
      cut->push_back(m);
      m->over_half = false;
      if (m->sending && m->cursor.seq < slowest) slowest = m->cursor.seq;
      continue;
    }
    if (m->cursor.seq < slowest) slowest = m->cursor.seq;
    if (b > max) max = b;
    bool oh = b > half;
    if (oh != m->over_half) m->over_half = oh;
    over_half += oh ? 1 : 0;
  }
  over_half_count_ = over_half;
  appended_since_review_ = 0;
  if (paused_) {
    std::uint64_t now = clock();
    if (max <= half) {
      end_pause(now);
    } else if (now >= pause_deadline_ms_) {
      // The wait is over: whoever is still over the limit goes. Once per
      // episode, so a second pass costs nothing that matters.
      max = 0;
      slowest = log_.head_seq();
      for (FanoutMember* m : members_) {
        if (m->closing) {
          if (m->sending && m->cursor.seq < slowest) slowest = m->cursor.seq;
          continue;
        }
        std::uint64_t b = log_.backlog(m->cursor);
        bool go = b > limit;
        if (go && b < hard) cut->push_back(m);  // At 2L: already in *cut.
        if (go && !m->sending) continue;
        if (m->cursor.seq < slowest) slowest = m->cursor.seq;
        if (!go && b > max) max = b;
      }
      end_pause(now);
    }
  } else if (max > limit && !cut_over_limit) {
    std::uint64_t now = clock();
    paused_ = true;
    pause_deadline_ms_ = now + options_.slow_consumer_ms;
    pause_since_ms_.store(now, std::memory_order_relaxed);
    pauses_.fetch_add(1, std::memory_order_relaxed);
  }
  last_max_backlog_ = max;
  log_.trim(slowest);
  Review r;
  r.paused = paused_;
  r.deadline = paused_ ? pause_deadline_ms_ : 0;
  return r;
}

}  // namespace echocast

#endif  // ECHOCAST_CORE_FANOUT_H
