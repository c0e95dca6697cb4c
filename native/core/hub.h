// hub.h — the seed's shared "memory", grown up: one log of frames behind one
// lock, per-client cursors into it, replay for newcomers, and the
// slow-consumer rule.
//
// Each frame is stored once (a shared, immutable HubFrame) however many
// clients receive it; a client holds only a sequence number (its cursor).
// The total order is the append order. Memory is bounded by the limits: a
// member whose undelivered backlog passes max_backlog_bytes is cut at once
// ("slow-consumer"), and the log is trimmed up to the slowest remaining
// cursor, keeping the last `replay` frames for newcomers.
#ifndef ECHOCAST_CORE_HUB_H
#define ECHOCAST_CORE_HUB_H

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../platform/platform.h"

namespace echocast {

// One frame as relayed on the wire, plus where its payload lies inside it
// (for message events) and who sent it (0 = the server's broadcast()).
struct HubFrame {
  std::uint64_t sender = 0;
  std::vector<std::uint8_t> bytes;
  std::size_t payload_offset = 0;
  std::size_t payload_size = 0;
};

// Frames are shared between the log, writers sending them outside the lock
// and message events waiting for JS; the last holder frees them.
typedef std::shared_ptr<const HubFrame> FrameRef;

// The hub's knobs, taken from the server options.
struct HubOptions {
  std::uint32_t replay = 1;
  bool echo_to_sender = true;
  std::uint64_t max_backlog_bytes = 16u * 1024u * 1024u;
  // How long a member may stay over max_backlog_bytes before it is cut.
  // Threads make this necessary: a writer that is merely waiting for a CPU
  // looks exactly like one whose peer stopped reading, for a moment. During
  // the grace the appending reader waits for it (so memory stays bounded);
  // a member still over the limit when the grace ends is a slow consumer.
  std::uint64_t slow_grace_ms = 200;
};

// Counters reported by stats(). framesOut/bytesOut count deliveries (one
// frame sent to 50 clients counts 50).
struct HubCounters {
  std::uint64_t frames_in = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t frames_out = 0;
  std::uint64_t bytes_out = 0;
};

// A client as the hub sees it. The engine embeds one in each connection;
// all fields are guarded by the hub's lock and touched only through Hub.
class HubMember {
 public:
  HubMember();
  virtual ~HubMember();
  HubMember(const HubMember&) = delete;
  HubMember& operator=(const HubMember&) = delete;

  // The client id (1, 2, ...), also the sender id of its frames.
  std::uint64_t id = 0;

 protected:
  // Called under the hub's lock when the member is first marked closing
  // (by any thread: its reader, its writer, a slow-consumer cut in another
  // client's append, or stop). The engine interrupts the socket here, so a
  // writer blocked in send or a reader blocked in recv wakes up. Running it
  // under the lock guarantees the socket is still open: the engine closes a
  // socket only after leave(). Must be quick and must not call the Hub.
  // `reason` is the reason that was just recorded.
  virtual void on_close(const char* reason) { (void)reason; }

 private:
  friend class Hub;
  // Next sequence number this member has not yet been sent.
  std::uint64_t cursor_ = 0;
  // Why the member is closing, or nullptr while it is healthy. The first
  // reason set wins.
  const char* reason_ = nullptr;
  // True while the member's writer sleeps on cond_ (so appends only signal
  // the sleepers).
  bool waiting_ = false;
  bool joined_ = false;
  // Signals an appender has promised this member but not yet sent.
  int signals_pending_ = 0;
  // Set while the backlog is over the limit; over_since_ms_ says since when.
  bool over_ = false;
  std::uint64_t over_since_ms_ = 0;
  // The writer sleeps here; appends and close_member() signal it.
  ec_cond_t cond_;
};

// What next_batch() found.
enum class BatchResult {
  Frames,   // `out` holds frames to send; call complete_batch() afterwards.
  Closed,   // The member is closing (reason set); the writer should stop.
};

// The frame log and its lock.
class Hub {
 public:
  explicit Hub(const HubOptions& options);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Adds a member whose cursor starts at the last `replay` frames, so it
  // receives those first and then everything appended after it joined.
  void join(HubMember* m);

  // Removes a member; its cursor no longer holds frames in the log.
  void leave(HubMember* m);

  // Appends frames in order under one lock acquisition and wakes sleeping
  // writers. Before appending it applies the slow-consumer rule: a member
  // whose backlog would pass max_backlog_bytes and has been over it for
  // slow_grace_ms is cut; if one is over but still within its grace and
  // may_wait is true (reader threads), the caller sleeps on a condition
  // variable until that member makes progress or its grace ends. The JS
  // thread's broadcast passes false and never waits. Returns false (and
  // appends nothing) once input has been closed by close_input().
  bool append(const FrameRef* frames, std::size_t count, bool may_wait = false);

  // Writer side. Sleeps (no polling) until the member has frames to send or
  // is closing. Collects about max_bytes (at least one frame) into `out`,
  // skipping the member's own frames when echo_to_sender is false, and
  // reports the sequence number the batch ends at in *end. If `block` is
  // false and nothing is pending, returns Frames with `out` empty.
  // `done`, when not 0, is the `end` of the previous batch, now sent: it is
  // recorded as complete_batch() would, under the same lock acquisition.
  BatchResult next_batch(HubMember* m, std::vector<FrameRef>* out,
                         std::uint64_t* end, std::size_t max_bytes, bool block,
                         std::uint64_t done = 0);

  // Records that the batch up to `end` has been sent: advances the cursor,
  // releasing the frames for trimming. (Deliveries were counted by
  // next_batch, when the batch was handed out.)
  void complete_batch(HubMember* m, std::uint64_t end);

  // Marks the member as closing with `reason` unless it already has one,
  // and wakes its writer. Returns the reason that stands.
  const char* close_member(HubMember* m, const char* reason);

  // The member's closing reason, or nullptr.
  const char* reason(HubMember* m);

  // Stops accepting frames (server stop): later appends are refused, so
  // the set of frames to flush is fixed.
  void close_input();

  // True when every member that is not closing has been sent everything.
  bool drained();

  // Sleeps until drained() or until the monotonic clock reaches deadline_ms.
  // Returns drained().
  bool wait_drained(std::uint64_t deadline_ms);

  // Marks every member as closing with `reason` (unless already closing).
  void close_all(const char* reason);

  // A snapshot of the counters.
  HubCounters counters();

  // Frames currently held in the log (for tests and memory checks).
  std::size_t log_frames();
  std::uint64_t log_bytes();

 private:
  struct Entry {
    FrameRef frame;
    std::uint64_t start;  // Total bytes appended before this frame.
  };
  std::uint64_t head_seq() const { return base_seq_ + log_.size(); }
  std::uint64_t start_of(std::uint64_t seq) const;
  void trim_locked();
  void progress_locked();
  void advance_locked(HubMember* m, std::uint64_t end);
  bool append_locked(const FrameRef* frames, std::size_t count, bool may_wait);
  const char* close_locked(HubMember* m, const char* reason);

  HubOptions options_;
  ec_mutex_t mutex_;
  // The stop thread waits here for writers to drain.
  ec_cond_t drained_cond_;
  // Appenders waiting for a lagging member (within its grace) wait here;
  // writers signal it as they make progress.
  ec_cond_t progress_cond_;
  int waiting_appenders_ = 0;
  std::deque<Entry> log_;
  std::uint64_t base_seq_ = 0;     // Sequence number of log_.front().
  std::uint64_t total_bytes_ = 0;  // Bytes ever appended.
  std::vector<HubMember*> members_;
  // Writers to wake, collected under the lock by append() and signalled
  // after it is released (so they do not wake only to block on it). Each
  // such member's signals_pending_ stays raised until the signal is done;
  // leave() waits for it, so a member cannot be freed under a late signal.
  std::vector<HubMember*> to_wake_;
  ec_cond_t signalled_cond_;
  int leavers_waiting_ = 0;
  bool input_closed_ = false;
  HubCounters counters_;
};

}  // namespace echocast

#endif  // ECHOCAST_CORE_HUB_H
