// inbox.h — commands handed from other threads (the JS thread's broadcast,
// inject, disconnect and set_forward, and stop) to the poll engine's I/O
// thread, applied by it in the order they were posted.
//
// A plain queue behind a lock. Posting wakes the I/O thread through a Waker
// (the poller's wake-up channel), called under the inbox's lock so that it
// cannot race with the waker being detached when the poller goes away.
#ifndef ECHOCAST_CORE_INBOX_H
#define ECHOCAST_CORE_INBOX_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../../platform/platform.h"
#include "../frame_batch.h"
#include "../reasons.h"

namespace echocast {

// One command, applied by the I/O thread.
struct Command {
  enum Type { Frames, Disconnect, Forward, Stop, Answer } type = Frames;
  FrameBatch frames;     // Frames: wire form and extents,
  std::uint64_t id = 0;  // Frames: their sender; Disconnect: the client; Answer: the ticket.
  Reason reason = Reason::ClientError;  // Disconnect.
  bool on = false;                      // Forward; Answer: admitted.
  std::string detail;                   // Answer: the refusal's detail.
  std::uint64_t deadline_ms = 0;        // Stop.
};

class Inbox {
 public:
  // Wakes the I/O thread.
  class Waker {
   public:
    virtual ~Waker() = default;
    virtual void wake() = 0;
  };

  Inbox();
  ~Inbox();
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  // Sets (or, with nullptr, removes) the waker posts call.
  void attach(Waker* waker);

  // Queues frames sent by `origin` (0: none). Returns false, dropping them,
  // when there are none or a stop was queued (input is closed).
  bool post_frames(FrameBatch&& frames, std::uint64_t origin);
  void post_disconnect(std::uint64_t id, Reason reason);
  void post_forward(bool on);
  // docs/contract.md S15: the authorize hook's answer for `ticket`.
  void post_answer(std::uint64_t ticket, bool ok, const std::string& detail);
  // Queues the stop; frames posted after it are refused.
  void post_stop(std::uint64_t deadline_ms);

  // Wakes the I/O thread without a command (e.g. room for events again).
  void wake();

  // Whether commands wait (cheap: read by the I/O thread every turn).
  bool pending() const { return pending_.load(std::memory_order_acquire); }

  // Moves the queued commands, in order, into *out (which is cleared).
  void take(std::vector<Command>* out);

  // Sleeps until a command is queued or timeout_ms pass (the I/O thread
  // after its poller failed: it then serves commands only, until stop).
  void wait(std::uint64_t timeout_ms);

 private:
  void post_locked(Command&& cmd);

  ec_mutex_t mutex_;  // Guards everything below but pending_.
  ec_cond_t posted_;
  std::vector<Command> queue_;
  Waker* waker_ = nullptr;
  bool closed_ = false;
  std::atomic<bool> pending_{false};
};

}  // namespace echocast

#endif  // ECHOCAST_CORE_INBOX_H
