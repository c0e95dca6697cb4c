// frame_batch.h — frames gathered from one read or one inject() call before
// they enter the log together, and the frames message events carry.
#ifndef ECHOCAST_CORE_FRAME_BATCH_H
#define ECHOCAST_CORE_FRAME_BATCH_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "framer.h"

namespace echocast {

// One frame as relayed on the wire, plus where its payload lies inside it
// (for message events) and who sent it (0 = the server's broadcast()).
struct HubFrame {
  std::uint64_t sender = 0;
  std::vector<std::uint8_t> bytes;
  std::size_t payload_offset = 0;
  std::size_t payload_size = 0;
};

// A message event's frame, shared with the queue of events waiting for JS.
// Made only while JS listens for messages; the log itself stores bytes.
typedef std::shared_ptr<const HubFrame> FrameRef;

// A copy of one frame for a message event.
inline FrameRef make_frame_ref(std::uint64_t sender, const std::uint8_t* bytes, std::size_t size,
                               std::size_t payload_offset, std::size_t payload_size) {
  auto f = std::make_shared<HubFrame>();
  f->sender = sender;
  f->bytes.assign(bytes, bytes + size);
  f->payload_offset = payload_offset;
  f->payload_size = payload_size;
  return f;
}

// Frames side by side in wire form, with their extents. Reused across
// reads, so it allocates only when a read brings more than ever before.
struct FrameBatch {
  struct Extent {
    std::size_t offset, size, payload_offset, payload_size;
  };
  std::vector<std::uint8_t> bytes;
  std::vector<Extent> frames;

  void clear() {
    bytes.clear();
    frames.clear();
  }
  // Appends a copy of one frame.
  void add(const FrameView& v) {
    frames.push_back(Extent{bytes.size(), v.size, v.payload_offset, v.payload_size});
    bytes.insert(bytes.end(), v.bytes, v.bytes + v.size);
  }
  const std::uint8_t* data(const Extent& e) const { return bytes.data() + e.offset; }
  FrameRef frame_ref(const Extent& e, std::uint64_t sender) const {
    return make_frame_ref(sender, data(e), e.size, e.payload_offset, e.payload_size);
  }
};

// A FrameSink that adds every frame to a FrameBatch.
class FrameBatchSink : public FrameSink {
 public:
  explicit FrameBatchSink(FrameBatch* batch) : batch_(batch) {}
  void on_frame(const FrameView& v) override { batch_->add(v); }

 private:
  FrameBatch* batch_;
};

// Splits already-encoded frames (inject()) into `batch`, as split_encoded().
inline void split_into(Framing framing, const std::uint8_t* data, std::size_t len,
                       FrameBatch* batch) {
  FrameBatchSink sink(batch);
  split_encoded(framing, data, len, &sink);
}

}  // namespace echocast

#endif  // ECHOCAST_CORE_FRAME_BATCH_H
