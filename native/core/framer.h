// framer.h — splits a client's byte stream into frames. Pure code: no I/O, no
// locks, no allocation beyond the one buffer that holds a partial frame.
//
// Rules (the JS engine implements exactly the same ones):
// - line:   a frame is everything up to and including '\n'; bytes are relayed
//           unchanged ('\r' kept). The limit counts the whole line including
//           its '\n': a line of more than max_frame_bytes bytes is an error,
//           detected as soon as max_frame_bytes bytes without a '\n' are seen.
//           The payload (for message events) is the line without its '\n'.
// - raw:    each chunk handed to feed() is one frame (the seed's behaviour);
//           a chunk longer than max_frame_bytes is an error. An empty chunk
//           is no frame.
// - length: a 4-byte big-endian payload length, then the payload. The limit
//           counts the payload only; a prefix announcing more than
//           max_frame_bytes is an error as soon as the prefix is complete.
//           The relayed frame is prefix + payload unchanged; the payload
//           (for message events) excludes the prefix.
// Frames completed before an error in the same chunk are still emitted, in
// order, before the error is reported. A partial frame left when the stream
// ends is simply dropped with the Framer (never delivered half).
#ifndef ECHOCAST_CORE_FRAMER_H
#define ECHOCAST_CORE_FRAMER_H

#include <cstddef>
#include <cstdint>
#include <vector>

namespace echocast {

// The three ways to split a stream, as named in the options.
enum class Framing { Line, Raw, Length };

// Parses a framing name ("line", "raw", "length"); returns false if unknown.
bool parse_framing(const char* name, Framing* out);

// One complete frame: the bytes to relay and, inside them, the payload that a
// message event carries. The pointers are valid only during the callback.
struct FrameView {
  const std::uint8_t* bytes;
  std::size_t size;
  std::size_t payload_offset;
  std::size_t payload_size;
};

// The receiver of complete frames; implemented by whoever feeds the framer.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // Called once per complete frame, in stream order.
  virtual void on_frame(const FrameView& frame) = 0;
};

// The stateful splitter for one client connection.
class Framer {
 public:
  Framer(Framing framing, std::size_t max_frame_bytes);

  // Feeds the next chunk of the stream. Complete frames go to sink in order.
  // Returns false when the stream broke the size limit ("frame-too-large").
  // The error sticks: the partial frame is released, and every later feed()
  // returns false and delivers nothing (the connection is being cut, and
  // bytes after an overlong frame must never be taken for frames).
  bool feed(const std::uint8_t* data, std::size_t len, FrameSink* sink);

  // Bytes of an incomplete frame currently buffered (for tests and limits).
  std::size_t buffered() const { return partial_.size(); }

 private:
  bool feed_line(const std::uint8_t* data, std::size_t len, FrameSink* sink);
  bool feed_length(const std::uint8_t* data, std::size_t len, FrameSink* sink);

  Framing framing_;
  std::size_t max_;
  // The incomplete frame carried over from earlier chunks. Bounded by
  // max_frame_bytes (+4 for the length prefix).
  std::vector<std::uint8_t> partial_;
  // Set once feed() has returned false; see feed().
  bool failed_ = false;
};

// Splits already-encoded frames (the inject()/broadcast() input) the way the
// server's framing does, with no size limit, and passes each complete frame
// to sink. Raw framing: the whole buffer is one frame. Trailing bytes that do
// not form a complete frame are ignored. Returns the number of frames.
std::size_t split_encoded(Framing framing, const std::uint8_t* data, std::size_t len,
                          FrameSink* sink);

}  // namespace echocast

#endif  // ECHOCAST_CORE_FRAMER_H
