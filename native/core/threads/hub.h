// hub.h — the threads engine's view of the broadcast rules (its class Hub;
// elsewhere "the fanout" is the rules themselves): one Fanout
// (fanout.h: the store-once log, cursors, replay, echo-skip, flow control
// and the slow-consumer rule, the finish of a closed peer, trimming) behind
// one lock, plus what threads need on top: writers that sleep on a
// condition variable until there is something to send, appending readers
// that wait while reading is paused (docs/contract.md S7), and a stop
// thread that waits for the drain.
//
// Pausing costs nothing per client: readers block in recv anyway, so a
// pause is a state under the lock that the next append of each reader
// waits on (bounded by the pause's deadline); appends are serialized under
// the lock and reviewed one by one, so a pause overshoots the limit by one
// read at most. inject (the JS thread) never waits: it appends, and the
// review cuts a backlog at twice the limit.
//
// A writer gathers iovecs straight from the log under the lock and sends
// them after releasing it (no copy per writer, no allocation per frame);
// the Fanout keeps those bytes alive until the writer reports back.
//
// Pacing. Waking a writer costs more than its send (a futex wake, two
// context switches, often an interrupt to the other core: 3 to 6 us here,
// where a send of a few frames costs 3), and every writer is woken for
// every burst of input, so the wakes set the CPU per delivery. A writer
// whose frames keep coming (the next ones within kPaceUs of its last send,
// in batches under kPaceBytes: a larger one is worth its wake) is paced:
// once it has sent all it is owed it dozes until the end of that send's
// period (periods are kPaceUs long, aligned on the monotonic clock and
// shared by every writer, so their dozes end together), unsignalled by
// appends, and then sends whatever came meanwhile in one batch; a doze that
// finds nothing ends the pacing (it then sleeps until signalled, so a quiet
// client's next frame goes out at once). A frame waits kPaceUs at most; a
// close, a pong, or kPaceBytes owed (half the backlog limit if that is
// less) wake a dozing writer at once. Off where timed waits are coarse
// (ec_cond_fine_waits: Windows).
#ifndef ECHOCAST_CORE_THREADS_HUB_H
#define ECHOCAST_CORE_THREADS_HUB_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../../platform/platform.h"
#include "../fanout.h"
#include "../frame_batch.h"
#include "../reasons.h"

namespace echocast {

// A client as the hub sees it. The engine embeds one in each connection;
// all fields are guarded by the hub's lock and touched only through Hub.
class HubMember : public FanoutMember {
 public:
  HubMember();
  virtual ~HubMember();
  HubMember(const HubMember&) = delete;
  HubMember& operator=(const HubMember&) = delete;

 protected:
  // Called under the hub's lock when the member is first marked closing
  // (by any thread: its reader, its writer, a slow-consumer cut in another
  // client's append, or stop). For a finished member (Hub::finish_member)
  // the reason is ClientClosed and everything it was owed has been sent. The engine interrupts the
  // socket here, so a writer blocked in send or a reader blocked in recv wakes up. Running it under
  // the lock guarantees the socket is still open: the engine closes a socket only after leave().
  // Must be quick and must not call the Hub.
  virtual void on_close(Reason reason) { (void)reason; }

  // Bytes the closer asked on_close to send (a WebSocket close frame the
  // reader made for the reason it decided; see Hub::close_member). Set and
  // read under the hub's lock.
  std::vector<std::uint8_t> farewell_;

 private:
  friend class Hub;
  // True while the member's writer sleeps on cond_ (so appends only signal
  // the sleepers).
  bool waiting_ = false;
  bool joined_ = false;
  // A close waits for the batch in flight (Hub::close_member with a
  // farewell): the writer starts no other.
  bool closing_after_send_ = false;
  // Pacing (see the top of this file): its frames keep coming, so it dozes
  // between sends; it is dozing now (appends wake it only for kPaceBytes
  // owed); when its last frames were handed out (ec_now_micros).
  bool paced_ = false;
  bool dozing_ = false;
  std::uint64_t sent_at_us_ = 0;
  // Signals an appender has promised this member but not yet sent. Raised
  // under the lock, lowered without it once the signal is done (so the
  // appender need not take the lock again while the writers it woke take
  // it); leave() waits for it, so a member cannot be freed under a late
  // signal.
  std::atomic<int> signals_pending_{0};
  // The batch in flight (FanoutMember::sending): where it ends, its bytes.
  std::uint64_t send_end_ = 0;
  std::size_t send_bytes_ = 0;
  // The writer sleeps here; appends and close_member() signal it.
  ec_cond_t cond_;
  // WebSocket control bytes (pongs) queued for the writer, and the ones it
  // is sending (valid until its next next_batch()).
  std::vector<std::uint8_t> control_;
  std::vector<std::uint8_t> control_out_;
};

// What next_batch() found.
enum class BatchResult {
  Frames,  // The iovecs to send were gathered.
  Closed,  // The member is closing (reason set); the writer should stop.
};

// The fanout and its lock.
class Hub {
 public:
  // Pacing (see the top of this file): the longest a paced writer holds
  // frames, and what owed to it wakes it sooner.
  static constexpr std::uint64_t kPaceUs = 3000;
  static constexpr std::uint64_t kPaceBytes = 8 * 1024;
  // kPaceUs where timed waits are fine-grained, else 0 (no pacing).
  static std::uint64_t default_pace_us();

  // pace_us: the pacing period (0: writers are not paced; tests).
  explicit Hub(const FanoutOptions& options, std::uint64_t pace_us = default_pace_us());
  // Fanout::read_bytes (no lock: the options do not change).
  std::size_t read_bytes(std::size_t most) const { return fanout_.read_bytes(most); }
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Adds a member (Fanout::join).
  void join(HubMember* m);

  // Removes a member; its cursor no longer holds frames in the log. Called
  // after its writer has stopped.
  void leave(HubMember* m);

  // Appends the batch's frames, sent by `sender`, in order under one lock
  // acquisition, counts them as framesIn, wakes sleeping writers and
  // applies flow control and the slow-consumer rule (Fanout::review) in the
  // same pass. While reading is paused and may_wait is true (reader
  // threads), the caller first sleeps until the pause ends; the first
  // waiter past its deadline runs the review that cuts and resumes. The JS
  // thread's inject passes false and never waits. Returns false (and
  // appends nothing) once input has been closed by close_input().
  // `wake` is the caller's own scratch list of writers to wake (kept
  // allocated across calls).
  bool append(const FrameBatch& batch, std::uint64_t sender, bool may_wait,
              std::vector<HubMember*>* wake);

  // Writer side. First records that the batch handed out by the previous
  // call was sent in full. Then sleeps (no polling; a paced member dozes
  // first) until the member has frames to send or is closing, and gathers
  // its next bytes (about
  // max_bytes, at least one frame, at most max_pieces iovecs) into `out`;
  // *pieces says how many. The bytes stay valid until the next call (or
  // send_failed()), which the writer makes after sending them. With `block`
  // false it does not sleep: nothing pending gives Frames with *pieces 0.
  BatchResult next_batch(HubMember* m, ec_iovec* out, std::size_t max_pieces, std::size_t max_bytes,
                         std::size_t* pieces, bool block = true);

  // docs/contract.md S11, the reader's end of stream (without
  // allowHalfOpen): the member is sent what is queued for it now, then
  // closed with client-closed, by its writer (next_batch returns Closed),
  // or here at once when nothing is owed.
  void finish_member(HubMember* m);

  // The batch from next_batch() could not be sent: closes the member with
  // `reason` (unless it already has one) and releases the batch.
  void send_failed(HubMember* m, Reason reason);

  // Marks the member as closing with `reason` unless it already has one,
  // and wakes its writer. Returns the reason that stands.
  Reason close_member(HubMember* m, Reason reason);
  // The same, with the bytes on_close is to send (HubMember::farewell_) when
  // this call closes the member: a reader's answer to its peer's close (a
  // WebSocket close frame). If the member's writer has a batch in flight,
  // the close waits up to wait_ms for it to be sent, and no batch starts
  // meanwhile, so the farewell follows it at a frame boundary instead of
  // being dropped (the peer would see a reset, not our close frame). A
  // peer that stops reading costs that wait at most, holding its place.
  Reason close_member(HubMember* m, Reason reason, const std::vector<std::uint8_t>& farewell,
                      std::uint64_t wait_ms);

  // Queues control bytes (a WebSocket pong) for the member's writer, which
  // sends them before its next frames: its batches end at frame
  // boundaries, so they never land inside a message. Dropped when closing,
  // or past `max_bytes` queued.
  void queue_control(HubMember* m, const std::vector<std::uint8_t>& bytes, std::size_t max_bytes);

  // The member's closing reason: false while it is healthy.
  bool reason(HubMember* m, Reason* out);

  // Stops accepting frames (server stop): later appends are refused, so
  // the set of frames to flush is fixed.
  void close_input();

  // Sleeps until every member that is not closing has been sent everything,
  // or until the monotonic clock reaches deadline_ms. Returns whether that
  // drain happened.
  bool wait_drained(std::uint64_t deadline_ms);

  // Marks every member as closing with `reason` (unless already closing).
  void close_all(Reason reason);

  // A snapshot of the counters (no lock needed: they are atomic).
  FanoutCounters counters() const { return fanout_.counters(); }
  // Pause episodes and their total length so far (atomic too).
  std::uint64_t read_pauses() const { return fanout_.read_pauses(); }
  std::uint64_t read_paused_ms() const;

  // Frames and bytes currently held in the log (for tests and memory checks).
  std::size_t log_frames();
  std::uint64_t log_bytes();

 private:
  void progress_locked();
  void finish_send_locked(HubMember* m);
  bool append_locked(const FrameBatch& batch, std::uint64_t sender, bool may_wait,
                     std::vector<HubMember*>* wake);
  Reason close_locked(HubMember* m, Reason reason);
  // Fanout::review, then the cuts; wakes waiting appenders if the pause ended.
  void review_locked(std::vector<HubMember*>* wake);
  // A writer's progress may have ended the pause: review once if so.
  void resume_check_locked();

  Fanout fanout_;
  ec_mutex_t mutex_;
  // The stop thread waits here for writers to drain.
  ec_cond_t drained_cond_;
  // Appenders waiting while reading is paused wait here; the review that
  // ends the pause, and close_input, broadcast it.
  ec_cond_t progress_cond_;
  int waiting_appenders_ = 0;
  // Members to cut, collected by the slow-consumer rule (kept allocated).
  std::vector<FanoutMember*> cut_;
  bool reviewing_ = false;           // review_locked is running (its cuts re-enter close_locked).
  std::vector<HubMember*> no_wake_;  // The wake list of reviews that wake nobody.
  // Writers to wake, collected under the lock by append() into the
  // caller's list and signalled after it is released (so they do not wake
  // only to block on it). leave() polls this often for late signals.
  static constexpr std::uint64_t kLeavePollMs = 1;
  ec_cond_t leave_cond_;  // Never signalled: leave() waits on it with a timeout.
  bool input_closed_ = false;
  const std::uint64_t pace_us_;
  // What owed to a dozing writer wakes it: kPaceBytes, or half the backlog
  // limit if less, so a member over the half that ends a pause (S7) is
  // never left dozing.
  const std::uint64_t pace_bytes_;
};

}  // namespace echocast

#endif  // ECHOCAST_CORE_THREADS_HUB_H
