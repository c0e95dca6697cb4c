// ws/decoder.cc — see decoder.h. RFC 6455 §5 (framing), §7.4 (close codes).
#include "decoder.h"

#include <cstring>

#include "primitives.h"

namespace echocast {
namespace ws {

namespace {

// Close codes a peer may send (RFC 6455 §7.4.1 and §7.4.2, and the IANA
// registry's 1012-1014, which our own server sends: server-full is 1013).
bool valid_close_code(std::uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;
  if (code < 1000 || code > 1014) return false;
  return code != 1004 && code != 1005 && code != 1006;
}

// A message buffer keeps at most this much capacity between messages (a
// server keeps one per WebSocket client: thousands of idle clients must not
// each hold their largest message).
constexpr std::size_t kKeepCapacity = 4 * 1024;

void release(std::vector<std::uint8_t>* v) { std::vector<std::uint8_t>().swap(*v); }

}  // namespace

Decoder::Decoder(Role role, std::size_t max_message_bytes) : role_(role), max_(max_message_bytes) {}

void Decoder::fail(std::uint16_t code) {
  error_ = code;
  in_message_ = false;
  in_payload_ = false;
  release(&partial_);
  release(&message_);
}

std::uint16_t Decoder::feed(const std::uint8_t* data, std::size_t len, MessageSink* sink) {
  if (error_ != 0) return error_;
  std::size_t pos = 0;
  while (!closed_ && error_ == 0) {
    if (!in_payload_) {
      if (pos == len) break;
      pos += read_header(data + pos, len - pos);
      if (!in_payload_) continue;  // Header incomplete (pos == len), or an error.
    }
    // A zero-length payload completes here with no byte left.
    pos += read_payload(data + pos, len - pos, sink);
    if (in_payload_) break;  // The rest of the payload is still to come.
  }
  if (closed_) {
    release(&partial_);
    release(&message_);
  }
  return error_;
}

// Takes header bytes; on the last one, checks the frame and starts its
// payload (in_payload_). Returns the bytes taken.
std::size_t Decoder::read_header(const std::uint8_t* data, std::size_t len) {
  std::size_t used = 0;
  for (;;) {
    std::size_t need = 2;
    if (header_len_ >= 2) {
      std::uint8_t l7 = header_[1] & 0x7F;
      need += (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((header_[1] & 0x80) ? 4 : 0);
    }
    if (header_len_ == need) break;
    if (used == len) return used;
    std::size_t take = need - header_len_;
    if (take > len - used) take = len - used;
    std::memcpy(header_ + header_len_, data + used, take);
    header_len_ += take;
    used += take;
    if (header_len_ == 2) {
      // All that two bytes can tell, before the rest arrives.
      std::uint8_t b0 = header_[0], b1 = header_[1];
      std::uint8_t op = b0 & 0x0F;
      bool fin = (b0 & 0x80) != 0;
      bool masked = (b1 & 0x80) != 0;
      bool control = (op & 0x8) != 0;
      bool known = op == kContinuation || op == kText || op == kBinary || op == kClose ||
                   op == kPing || op == kPong;
      if ((b0 & 0x70) != 0 || !known || masked != (role_ == Role::Server) ||
          (control && (!fin || (b1 & 0x7F) > 125)) || (op == kContinuation && !in_message_) ||
          ((op == kText || op == kBinary) && in_message_)) {
        fail(kCloseProtocolError);
        return used;
      }
    }
  }
  // The whole header is here.
  std::uint8_t l7 = header_[1] & 0x7F;
  std::size_t at = 2;
  std::uint64_t n = l7;
  if (l7 == 126) {
    n = (static_cast<std::uint64_t>(header_[2]) << 8) | header_[3];
    at = 4;
  } else if (l7 == 127) {
    n = 0;
    for (int i = 0; i < 8; ++i) n = (n << 8) | header_[2 + i];
    at = 10;
    if (n >> 63) {
      fail(kCloseProtocolError);
      return used;
    }
  }
  opcode_ = header_[0] & 0x0F;
  fin_ = (header_[0] & 0x80) != 0;
  masked_ = (header_[1] & 0x80) != 0;
  if (masked_) std::memcpy(key_, header_ + at, 4);
  header_len_ = 0;
  if ((opcode_ & 0x8) == 0) {
    // A data frame: the message so far and this frame must fit the limit.
    if (n > static_cast<std::uint64_t>(max_ - message_.size())) {
      fail(kCloseTooBig);
      return used;
    }
    if (opcode_ != kContinuation) {
      in_message_ = true;
      message_text_ = opcode_ == kText;
    }
  }
  payload_len_ = n;
  payload_done_ = 0;
  in_payload_ = true;
  return used;
}

// Takes payload bytes of the current frame; on the last one, acts on the
// frame. Returns the bytes taken.
std::size_t Decoder::read_payload(const std::uint8_t* data, std::size_t len, MessageSink* sink) {
  std::uint64_t left = payload_len_ - payload_done_;
  std::size_t take = left < len ? static_cast<std::size_t>(left) : len;
  bool whole_here = payload_done_ == 0 && take == payload_len_;

  if (opcode_ & 0x8) {
    if (whole_here && !masked_) {
      // Unmasked and complete in the caller's buffer: no copy.
      in_payload_ = false;
      control(data, take, sink);
      return take;
    }
    if (payload_done_ == 0) partial_.reserve(static_cast<std::size_t>(payload_len_));
    std::size_t old = partial_.size();
    partial_.insert(partial_.end(), data, data + take);
    if (masked_) mask(partial_.data() + old, take, key_, old);
    payload_done_ += take;
    if (payload_done_ == payload_len_) {
      in_payload_ = false;
      control(partial_.data(), partial_.size(), sink);
      partial_.clear();
    }
    return take;
  }

  if (whole_here && fin_ && !masked_ && message_.empty()) {
    // A whole message, unmasked, in the caller's buffer: no copy.
    in_payload_ = false;
    in_message_ = false;
    deliver(data, take, message_text_, sink);
    return take;
  }
  // Into the message buffer (unmasked on the way). It grows with the bytes
  // that arrive, never past this frame's end, which the limit bounds.
  std::size_t old = message_.size();
  std::size_t need = old + take;
  if (message_.capacity() < need) {
    std::size_t frame_end = old + static_cast<std::size_t>(left);
    std::size_t cap = message_.capacity();
    std::size_t grow = cap > frame_end / 2 ? frame_end : cap * 2;
    message_.reserve(grow > need ? grow : need);
  }
  message_.insert(message_.end(), data, data + take);
  if (masked_) mask(message_.data() + old, take, key_, static_cast<std::size_t>(payload_done_));
  payload_done_ += take;
  if (payload_done_ == payload_len_) {
    in_payload_ = false;
    if (fin_) {
      in_message_ = false;
      deliver(message_.data(), message_.size(), message_text_, sink);
      if (message_.capacity() > kKeepCapacity) {
        release(&message_);
      } else {
        message_.clear();
      }
    }
  }
  return take;
}

void Decoder::deliver(const std::uint8_t* data, std::size_t len, bool text, MessageSink* sink) {
  if (text && !valid_utf8(data, len)) {
    fail(kCloseInvalidData);
    return;
  }
  sink->on_message(data, len, text);
}

void Decoder::control(const std::uint8_t* payload, std::size_t len, MessageSink* sink) {
  if (opcode_ == kPing) {
    sink->on_ping(payload, len);
  } else if (opcode_ == kClose) {
    if (len == 0) {
      closed_ = true;
      sink->on_close(1005, payload, 0);
      return;
    }
    if (len == 1) {
      fail(kCloseProtocolError);
      return;
    }
    std::uint16_t code = static_cast<std::uint16_t>((payload[0] << 8) | payload[1]);
    if (!valid_close_code(code)) {
      fail(kCloseProtocolError);
      return;
    }
    if (!valid_utf8(payload + 2, len - 2)) {
      fail(kCloseInvalidData);
      return;
    }
    closed_ = true;
    sink->on_close(code, payload + 2, len - 2);
  }
  // A pong: accepted and ignored.
}

}  // namespace ws
}  // namespace echocast
