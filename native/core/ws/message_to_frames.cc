// ws/message_to_frames.cc — see message_to_frames.h (docs/contract.md §6).
#include "message_to_frames.h"

#include <cstring>

namespace echocast {
namespace ws {

std::size_t message_to_frames(Framing framing, const std::uint8_t* data, std::size_t len,
                              std::vector<std::uint8_t>* scratch, FrameSink* sink) {
  switch (framing) {
    case Framing::Raw:
      if (len == 0) return 0;
      sink->on_frame(FrameView{data, len, 0, len});
      return 1;
    case Framing::Length: {
      if (static_cast<std::uint64_t>(len) > 0xFFFFFFFFull) return 0;  // Cannot be prefixed.
      scratch->resize(4 + len);
      (*scratch)[0] = static_cast<std::uint8_t>(len >> 24);
      (*scratch)[1] = static_cast<std::uint8_t>(len >> 16);
      (*scratch)[2] = static_cast<std::uint8_t>(len >> 8);
      (*scratch)[3] = static_cast<std::uint8_t>(len);
      if (len > 0) std::memcpy(scratch->data() + 4, data, len);
      sink->on_frame(FrameView{scratch->data(), 4 + len, 4, len});
      return 1;
    }
    case Framing::Line: {
      std::size_t count = 0;
      std::size_t pos = 0;
      while (pos < len) {
        const void* nl = std::memchr(data + pos, '\n', len - pos);
        if (nl == nullptr) break;
        std::size_t end = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - data) + 1;
        // A line with its '\n' in the message: relayed from it, no copy.
        sink->on_frame(FrameView{data + pos, end - pos, 0, end - pos - 1});
        ++count;
        pos = end;
      }
      if (pos < len || len == 0) {
        // The last line has no '\n' (or the message is empty): add one.
        scratch->assign(data + pos, data + len);
        scratch->push_back('\n');
        sink->on_frame(FrameView{scratch->data(), scratch->size(), 0, scratch->size() - 1});
        ++count;
      }
      return count;
    }
  }
  return 0;
}

}  // namespace ws
}  // namespace echocast
