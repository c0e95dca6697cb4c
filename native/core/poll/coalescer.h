// coalescer.h — when the poll engine sends: send coalescing as a pure state
// machine over an injected microsecond clock.
//
// Each send costs the kernel a whole TCP transmit and receive (about 4 us
// on loopback, over 90% of the loop's CPU) whatever its size, so fewer,
// fuller sends are what lowers the CPU per delivery. After a turn that
// appended frames, the sends wait until input has been quiet for kGapUs
// (publishers that write at one moment arrive microseconds apart), at most
// kWindowUs after the first new frame, and no longer than it takes kBytes to
// pile up; then one gathered send per client carries them all. Disabled
// where the poller cannot wait under a millisecond (WSAPoll): frames are
// then sent in the turn they arrive, as is anything due anyway (a client
// that became writable, a replay, stop).
#ifndef ECHOCAST_CORE_COALESCER_H
#define ECHOCAST_CORE_COALESCER_H

#include <algorithm>
#include <cstdint>

namespace echocast {

class Coalescer {
 public:
  static constexpr std::uint64_t kGapUs = 50;
  static constexpr std::uint64_t kWindowUs = 300;
  static constexpr std::uint64_t kBytes = 32 * 1024;

  // A microsecond clock (ec_now_micros, or a test's own).
  typedef std::uint64_t (*Clock)();

  explicit Coalescer(Clock clock, bool enabled = false) : clock_(clock), enabled_(enabled) {}

  void enable(bool on) { enabled_ = on; }
  bool enabled() const { return enabled_; }

  // A turn ended in which the log grew to head_bytes (bytes ever appended).
  // Returns whether the sends go now; `urgent` says something is due anyway.
  bool due(std::uint64_t head_bytes, bool urgent) {
    if (!enabled_ || urgent || head_bytes - flushed_bytes_ >= kBytes) {
      due_us_ = 0;
      return true;
    }
    std::uint64_t now = clock_();
    if (due_us_ == 0) {  // The first new frames: a window opens.
      window_end_us_ = now + kWindowUs;
      due_us_ = std::min(window_end_us_, now + kGapUs);
      seen_bytes_ = head_bytes;
      return false;
    }
    if (head_bytes != seen_bytes_) {  // More input: wait for a quiet gap again.
      seen_bytes_ = head_bytes;
      due_us_ = std::min(window_end_us_, now + kGapUs);
    }
    if (now < due_us_) return false;
    due_us_ = 0;
    return true;
  }

  // The sends went, up to head_bytes: no window is open.
  void flushed(std::uint64_t head_bytes) {
    due_us_ = 0;
    flushed_bytes_ = head_bytes;
  }

  // Microseconds the loop may sleep before held sends are due (0: due now),
  // or -1 when none are held.
  std::int64_t wait_us() const {
    if (due_us_ == 0) return -1;
    std::uint64_t now = clock_();
    return now >= due_us_ ? 0 : static_cast<std::int64_t>(due_us_ - now);
  }

 private:
  Clock clock_;
  bool enabled_;
  std::uint64_t due_us_ = 0;         // When the held sends are due; 0: none held.
  std::uint64_t window_end_us_ = 0;  // The latest they may be held to.
  std::uint64_t seen_bytes_ = 0;     // head_bytes when due_us_ was last set.
  std::uint64_t flushed_bytes_ = 0;  // head_bytes at the last flush.
};

}  // namespace echocast

#endif  // ECHOCAST_CORE_COALESCER_H
