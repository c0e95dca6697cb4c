// ws/frame.cc — see frame.h. RFC 6455 §5 (framing) and §7.4 (close codes).
#include "frame.h"

#include <cstring>

namespace echocast {
namespace ws {

std::size_t encode_header(Opcode opcode, std::uint64_t len, std::uint8_t out[kMaxHeader],
                          const std::uint8_t* mask_key) {
  out[0] = static_cast<std::uint8_t>(0x80 | opcode);
  std::uint8_t mask_bit = mask_key != nullptr ? 0x80 : 0x00;
  std::size_t n;
  if (len < 126) {
    out[1] = static_cast<std::uint8_t>(mask_bit | len);
    n = 2;
  } else if (len <= 0xFFFF) {
    out[1] = static_cast<std::uint8_t>(mask_bit | 126);
    out[2] = static_cast<std::uint8_t>(len >> 8);
    out[3] = static_cast<std::uint8_t>(len);
    n = 4;
  } else {
    out[1] = static_cast<std::uint8_t>(mask_bit | 127);
    for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<std::uint8_t>(len >> (56 - 8 * i));
    n = 10;
  }
  if (mask_key != nullptr) {
    std::memcpy(out + n, mask_key, 4);
    n += 4;
  }
  return n;
}

void mask(std::uint8_t* data, std::size_t len, const std::uint8_t key[4], std::size_t offset) {
  std::size_t k = offset & 3;
  std::size_t i = 0;
  // Align the key, then eight bytes at a time with the key repeated.
  for (; i < len && k != 0; ++i, k = (k + 1) & 3) data[i] ^= key[k];
  if (len - i >= 8) {
    std::uint8_t rep[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
    std::uint64_t kw;
    std::memcpy(&kw, rep, 8);
    for (; i + 8 <= len; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, data + i, 8);
      w ^= kw;
      std::memcpy(data + i, &w, 8);
    }
  }
  for (; i < len; ++i, k = (k + 1) & 3) data[i] ^= key[k];
}

std::vector<std::uint8_t> close_frame(std::uint16_t code, const char* reason) {
  std::vector<std::uint8_t> payload;
  if (code != 0) {
    payload.push_back(static_cast<std::uint8_t>(code >> 8));
    payload.push_back(static_cast<std::uint8_t>(code));
    if (reason != nullptr) {
      std::size_t n = std::strlen(reason);
      if (n > 123) {
        // Cut at a character boundary, so a valid UTF-8 reason stays valid.
        n = 123;
        while (n > 0 && (static_cast<std::uint8_t>(reason[n]) & 0xC0) == 0x80) --n;
      }
      payload.insert(payload.end(), reason, reason + n);
    }
  }
  std::uint8_t header[kMaxHeader];
  std::size_t h = encode_header(kClose, payload.size(), header);
  std::vector<std::uint8_t> frame(header, header + h);
  frame.insert(frame.end(), payload.begin(), payload.end());
  return frame;
}

std::vector<std::uint8_t> pong_frame(const std::uint8_t* data, std::size_t len) {
  if (len > 125) len = 125;
  std::uint8_t header[kMaxHeader];
  std::size_t h = encode_header(kPong, len, header);
  // Sized once and copied into (an insert after the header makes GCC 12
  // see a 2-byte source at -O3 and warn, -Warray-bounds, falsely).
  std::vector<std::uint8_t> frame(h + len);
  std::memcpy(frame.data(), header, h);
  if (len > 0) std::memcpy(frame.data() + h, data, len);
  return frame;
}

std::uint16_t close_code_for(const char* reason) {
  struct Entry {
    const char* name;
    std::uint16_t code;
  };
  static const Entry kCodes[] = {
      {"client-closed", kCloseNormal},
      {"client-error", kCloseInternal},
      {"frame-too-large", kCloseTooBig},
      {"slow-consumer", kClosePolicy},
      {"server-full", 1013},
      {"server-closed", kCloseGoingAway},
      {"cluster-unavailable", kClosePolicy},
      {"protocol-error", kCloseProtocolError},
  };
  if (reason != nullptr) {
    for (const Entry& e : kCodes)
      if (std::strcmp(reason, e.name) == 0) return e.code;
  }
  return kCloseInternal;  // Not a reason: our own fault.
}

}  // namespace ws
}  // namespace echocast
