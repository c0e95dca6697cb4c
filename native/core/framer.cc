// framer.cc — see framer.h for the rules.
#include "framer.h"

#include <cstring>

namespace echocast {

namespace {
constexpr std::size_t kPrefix = 4;

std::size_t read_be32(const std::uint8_t* p) {
  return (static_cast<std::size_t>(p[0]) << 24) | (static_cast<std::size_t>(p[1]) << 16) |
         (static_cast<std::size_t>(p[2]) << 8) | static_cast<std::size_t>(p[3]);
}
}  // namespace

bool parse_framing(const char* name, Framing* out) {
  if (std::strcmp(name, "line") == 0) {
    *out = Framing::Line;
  } else if (std::strcmp(name, "raw") == 0) {
    *out = Framing::Raw;
  } else if (std::strcmp(name, "length") == 0) {
    *out = Framing::Length;
  } else {
    return false;
  }
  return true;
}

Framer::Framer(Framing framing, std::size_t max_frame_bytes)
    : framing_(framing), max_(max_frame_bytes) {}

bool Framer::feed(const std::uint8_t* data, std::size_t len, FrameSink* sink) {
  if (failed_) return false;
  bool ok = false;
  switch (framing_) {
    case Framing::Raw:
      if (len == 0) return true;
      ok = len <= max_;
      if (ok) sink->on_frame(FrameView{data, len, 0, len});
      break;
    case Framing::Line:
      ok = feed_line(data, len, sink);
      break;
    case Framing::Length:
      ok = feed_length(data, len, sink);
      break;
  }
  if (!ok) {
    // Found by fuzzing (native/test/fuzz/regressions/line-fed-after-error):
    // a line framer fed again after an error went on splitting, so the tail
    // of an overlong line came out as a frame. Now the error sticks.
    failed_ = true;
    std::vector<std::uint8_t>().swap(partial_);
  }
  return ok;
}

bool Framer::feed_line(const std::uint8_t* data, std::size_t len, FrameSink* sink) {
  std::size_t pos = 0;
  while (pos < len) {
    const void* nl = std::memchr(data + pos, '\n', len - pos);
    if (nl == nullptr) {
      // No end of line in the rest of the chunk: keep it, unless the line
      // can no longer fit (max_ bytes without '\n' means at least max_+1).
      std::size_t rest = len - pos;
      if (partial_.size() + rest >= max_) return false;
      partial_.insert(partial_.end(), data + pos, data + len);
      return true;
    }
    std::size_t end = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - data) + 1;
    std::size_t piece = end - pos;
    if (partial_.size() + piece > max_) return false;
    if (partial_.empty()) {
      // Common case: the whole line is inside this chunk, no copy.
      sink->on_frame(FrameView{data + pos, piece, 0, piece - 1});
    } else {
      partial_.insert(partial_.end(), data + pos, data + end);
      sink->on_frame(FrameView{partial_.data(), partial_.size(), 0, partial_.size() - 1});
      partial_.clear();
    }
    pos = end;
  }
  return true;
}

bool Framer::feed_length(const std::uint8_t* data, std::size_t len, FrameSink* sink) {
  std::size_t pos = 0;
  while (pos < len) {
    if (partial_.empty()) {
      // Fast path: a whole frame available in the chunk.
      if (len - pos >= kPrefix) {
        std::size_t payload = read_be32(data + pos);
        if (payload > max_) return false;
        if (len - pos >= kPrefix + payload) {
          sink->on_frame(FrameView{data + pos, kPrefix + payload, kPrefix, payload});
          pos += kPrefix + payload;
          continue;
        }
      }
      partial_.insert(partial_.end(), data + pos, data + len);
      return true;  // Prefix (if complete) already checked above.
    }
    // Complete the prefix first.
    if (partial_.size() < kPrefix) {
      std::size_t need = kPrefix - partial_.size();
      std::size_t take = need < len - pos ? need : len - pos;
      partial_.insert(partial_.end(), data + pos, data + pos + take);
      pos += take;
      if (partial_.size() < kPrefix) return true;
      if (read_be32(partial_.data()) > max_) return false;
    }
    std::size_t total = kPrefix + read_be32(partial_.data());
    std::size_t need = total - partial_.size();
    std::size_t take = need < len - pos ? need : len - pos;
    partial_.insert(partial_.end(), data + pos, data + pos + take);
    pos += take;
    if (partial_.size() == total) {
      sink->on_frame(FrameView{partial_.data(), total, kPrefix, total - kPrefix});
      partial_.clear();
    }
  }
  return true;
}

namespace {
// Counts the frames it passes on.
class CountingSink : public FrameSink {
 public:
  explicit CountingSink(FrameSink* next) : next_(next) {}
  void on_frame(const FrameView& frame) override {
    ++count;
    next_->on_frame(frame);
  }
  std::size_t count = 0;

 private:
  FrameSink* next_;
};
}  // namespace

std::size_t split_encoded(Framing framing, const std::uint8_t* data, std::size_t len,
                          FrameSink* sink) {
  if (len == 0) return 0;
  if (framing == Framing::Raw) {
    sink->on_frame(FrameView{data, len, 0, len});
    return 1;
  }
  // No limit: these frames come from the server itself or the cluster, and
  // were checked where they entered. A length prefix is at most 2^32-1.
  Framer framer(framing, static_cast<std::size_t>(-1) / 2);
  CountingSink counting(sink);
  framer.feed(data, len, &counting);
  return counting.count;
}

}  // namespace echocast
