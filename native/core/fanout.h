// fanout.h — the broadcast rules both native engines share, over one
// store-once FrameLog (frame_log.h): members and their cursors, joining with
// replay, echo-skip, delivery counting, the backlog measure, the
// slow-consumer rule and trimming up to the slowest cursor.
//
// Pure code: no locks, no I/O, no clock of its own (callers pass the time).
// The poll engine uses it from its one thread; the threads engine wraps it
// in Hub (hub.h), which adds the lock and the condition variables.
//
// A member's bytes may be in flight outside the owner's lock: a writer
// gathers iovecs straight from the log, marks the member `sending`, and
// sends after releasing the lock. Until it reports back, its cursor has not
// moved, and trim() holds the log back to it even if the member was cut
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
  // How long a member may stay over max_backlog_bytes before it is cut
  // (docs/contract.md S7). The threads engine needs a grace: a writer merely
  // waiting for a CPU looks, for a moment, exactly like one whose peer
  // stopped reading, and meanwhile the appending reader waits for it. The
  // poll engine checks right after offering every client its bytes, so it
  // uses 0: over the limit then means cut.
  std::uint64_t slow_grace_ms = 0;
};

// Counters reported by stats(). framesOut/bytesOut count deliveries (one
// frame sent to 50 clients counts 50).
struct HubCounters {
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
  // The next byte this member has not been sent.
  FrameLog::Cursor cursor;
  // Frames before this sequence number were counted as delivered to it.
  std::uint64_t counted = 0;
  // Set once the member is closing; `reason` says why (the first one wins).
  bool closing = false;
  Reason reason = Reason::ClientClosed;
  // Gathered bytes are being sent outside the owner's lock (see above).
  bool sending = false;
  // Over max_backlog_bytes since over_since_ms (the slow-consumer grace).
  bool over = false;
  std::uint64_t over_since_ms = 0;
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

  // Records that `sent` bytes of a gather ending at `end` went out.
  void advance(FanoutMember* m, std::size_t sent, std::uint64_t end);

  // Marks the member as closing with `r` unless it already is. Returns true
  // if this call closed it (the caller then interrupts its socket).
  bool close(FanoutMember* m, Reason r);

  // A millisecond clock (ec_now_ms, or a test's own).
  typedef std::uint64_t (*Clock)();

  // What slow_consumers() found.
  struct SlowCheck {
    std::uint64_t now_ms = 0;      // The clock's reading (0: not read).
    std::uint64_t wait_until = 0;  // Earliest end of a grace now running, or 0.
  };

  // The slow-consumer rule (docs/contract.md S7). Every member that is not
  // closing and whose backlog plus `incoming` bytes passes
  // max_backlog_bytes is over the limit; one that has been over it for
  // slow_grace_ms goes into *cut (the caller closes it with slow-consumer).
  // The clock is read only if some member is over the limit.
  SlowCheck slow_consumers(Clock clock, std::uint64_t incoming,
                           std::vector<FanoutMember*>* cut);

  // Drops frames no member needs: up to the slowest cursor of the members
  // that are not closing or are still sending, keeping the last `replay`.
  void trim();

  // True when every member that is not closing has been sent everything.
  bool drained() const;

  // A snapshot of the counters (any thread).
  HubCounters counters() const;

 private:
  FanoutOptions options_;
  FrameLog log_;
  std::vector<FanoutMember*> members_;
  std::atomic<std::uint64_t> frames_in_{0}, bytes_in_{0}, frames_out_{0}, bytes_out_{0};
};

}  // namespace echocast

#endif  // ECHOCAST_CORE_FANOUT_H
