// stop_sequence.h — the order in which a native engine stops, in one place:
// stop accepting and close input (begin), flush what was accepted up to the
// deadline, close every client gracefully ("server-closed": the peer reads
// what was flushed, then end of stream), and linger a moment for peers to
// answer before cutting whoever remains (docs/contract.md S12).
//
// Pure: the engine passes the time and what it observes; the threads engine
// walks it with blocking waits, the poll loop once per turn.
#ifndef ECHOCAST_CORE_STOP_SEQUENCE_H
#define ECHOCAST_CORE_STOP_SEQUENCE_H

#include <algorithm>
#include <cstdint>

namespace echocast {

class StopSequence {
 public:
  // How long at least peers get to answer a graceful close before their
  // connections are cut.
  static constexpr std::uint64_t kLingerMs = 250;

  // Begins the stop at now_ms with `deadline_ms` to flush. The engine stops
  // accepting and closes input as it calls this. False if already begun.
  bool begin(std::uint64_t now_ms, std::uint64_t deadline_ms) {
    if (stopping_) return false;
    stopping_ = true;
    flush_until_ = now_ms + deadline_ms;
    return true;
  }

  bool stopping() const { return stopping_; }
  // The graceful close has begun.
  bool closing() const { return closing_; }
  // The end of the flush phase.
  std::uint64_t flush_until() const { return flush_until_; }

  // While flushing: whether the graceful close starts now (every client was
  // sent everything, or the deadline passed). When it does, the linger runs
  // to the later of the deadline and kLingerMs from now, and the engine
  // closes every client gracefully.
  bool close_now(std::uint64_t now_ms, bool drained) {
    if (!stopping_ || closing_) return false;
    if (!drained && now_ms < flush_until_) return false;
    closing_ = true;
    linger_until_ = std::max(flush_until_, now_ms + kLingerMs);
    return true;
  }

  // While closing: whether the engine may end, cutting whoever remains
  // (no client left, or the linger is over).
  bool done(std::uint64_t now_ms, bool no_clients) const {
    return closing_ && (no_clients || now_ms >= linger_until_);
  }

  // When the engine must look again without other news: the flush deadline,
  // then the end of the linger; 0 while not stopping.
  std::uint64_t next_ms() const {
    if (!stopping_) return 0;
    return closing_ ? linger_until_ : std::max<std::uint64_t>(flush_until_, 1);
  }

 private:
  bool stopping_ = false;
  bool closing_ = false;
  std::uint64_t flush_until_ = 0;
  std::uint64_t linger_until_ = 0;
};

}  // namespace echocast

#endif  // ECHOCAST_CORE_STOP_SEQUENCE_H
