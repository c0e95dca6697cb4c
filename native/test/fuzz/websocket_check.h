// websocket_check.h — the checks of the WebSocket fuzz target
// (fuzz_websocket.cc), kept in a header so the unit tests replay the seeds in
// corpus-websocket/ through them with the system compiler.
//
// Input: byte 0 picks max_message_bytes (low 3 bits) and a mask key's bytes
// (the rest); byte 1 seeds the chunking; the rest, P, is fed to:
//   - a Decoder in each role, in one feed and in chunks: both must give the
//     same events and code; no message over the limit, text messages and
//     close reasons valid UTF-8, pings <= 125 bytes, nothing after a close or
//     an error, an error sticks, codes only 0/1002/1007/1009;
//   - encode_header + mask round trips: P as one message (each role, whole
//     and in three fragments with a ping between) decodes back to P, or to
//     1009 / 1007 as the limit and UTF-8 say;
//   - a Handshake, whole and in chunks: same result, status, response and
//     bytes taken; consumed <= len; a decision sticks; every response but
//     101 has Content-Length and Connection: close;
//   - message_to_frames in each framing: the frames re-split by a Framer
//     give the same frames, and their bytes are the message as specified.
// check_case returns "" or what went wrong.
#ifndef ECHOCAST_TEST_FUZZ_WEBSOCKET_CHECK_H
#define ECHOCAST_TEST_FUZZ_WEBSOCKET_CHECK_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../../core/framer.h"
#include "../../core/ws/decoder.h"
#include "../../core/ws/frame.h"
#include "../../core/ws/handshake.h"
#include "../../core/ws/message_to_frames.h"
#include "../../core/ws/primitives.h"

namespace websocket_check {

namespace ws = echocast::ws;

// Records a Decoder's events as text, checking each as it comes.
struct Recorder : ws::MessageSink {
  std::size_t max = 0;
  std::string log;
  std::string violation;
  bool closed = false;
  bool failed = false;  // Set by the caller once feed() returned an error.
  void bad(const char* what) {
    if (violation.empty()) violation = what;
  }
  void event(char kind, const std::uint8_t* data, std::size_t len) {
    if (closed) bad("an event after the close");
    if (failed) bad("an event after an error");
    log += kind;
    log += std::to_string(len);
    log += ':';
    if (len > 0) log.append(reinterpret_cast<const char*>(data), len);
    log += '|';
  }
  void on_message(const std::uint8_t* data, std::size_t len, bool text) override {
    if (len > max) bad("a message over max_message_bytes");
    if (text && !ws::valid_utf8(data, len)) bad("a text message that is not UTF-8");
    event(text ? 'T' : 'B', data, len);
  }
  void on_ping(const std::uint8_t* data, std::size_t len) override {
    if (len > 125) bad("a ping over 125 bytes");
    event('P', data, len);
  }
  void on_close(std::uint16_t code, const std::uint8_t* reason, std::size_t len) override {
    if (!ws::valid_utf8(reason, len)) bad("a close reason that is not UTF-8");
    if (code == 1005 && len != 0) bad("a reason with no code");
    std::string c = std::to_string(code);
    event('C', reinterpret_cast<const std::uint8_t*>(c.data()), c.size());
    log.append(reinterpret_cast<const char*>(reason), len);
    closed = true;
  }
};

// A small deterministic generator for chunk sizes.
struct Lcg {
  std::uint32_t s;
  std::uint32_t next() {
    s = s * 1103515245u + 12345u;
    return s >> 16;
  }
};

struct DecodeResult {
  std::string log;
  std::uint16_t code = 0;
  bool closed = false;
  std::string violation;
};

// Feeds `p` to a Decoder in chunks (chunk 0: one feed; else sizes drawn
// from seed), then feeds it again to check an error or a close sticks.
inline DecodeResult decode(ws::Role role, std::size_t max, const std::uint8_t* p, std::size_t n,
                           bool chunked, std::uint32_t seed) {
  DecodeResult r;
  ws::Decoder d(role, max);
  Recorder rec;
  rec.max = max;
  Lcg lcg{seed};
  std::uint32_t spread = 1 + seed % 23;
  std::size_t pos = 0;
  std::uint16_t code = 0;
  do {
    std::size_t take = n - pos;
    if (chunked) {
      std::size_t c = lcg.next() % (spread + 1);  // 0 too: an empty feed does nothing.
      if (c < take) take = c;
    }
    std::uint16_t got = d.feed(p + pos, take, &rec);
    if (code != 0 && got != code) rec.bad("an error did not stick");
    if (got != 0 && got != 1002 && got != 1007 && got != 1009) rec.bad("an unexpected code");
    if (got != 0 && d.closed()) rec.bad("closed and failed at once");
    code = got;
    if (code != 0) rec.failed = true;
    pos += take;
  } while (pos < n);
  if (d.closed() != rec.closed) rec.bad("closed() disagrees with on_close");
  // Everything again: an error must stick, a closed decoder parses nothing.
  std::size_t before = rec.log.size();
  bool was_closed = rec.closed;
  rec.closed = false;
  if (code != 0 || was_closed) {
    std::uint16_t again = d.feed(p, n, &rec);
    if (again != code) rec.bad("a later feed changed the code");
    if (rec.log.size() != before) rec.bad("events after an error or a close");
  }
  r.log = rec.log.substr(0, before);
  r.code = code;
  r.closed = was_closed;
  r.violation = rec.violation;
  return r;
}

inline std::vector<std::uint8_t> frame(std::uint8_t b0, const std::uint8_t* p, std::size_t n,
                                       const std::uint8_t* key) {
  std::uint8_t h[ws::kMaxHeader];
  std::size_t hl = ws::encode_header(static_cast<ws::Opcode>(b0 & 0x0F), n, h, key);
  h[0] = b0;
  std::vector<std::uint8_t> f(h, h + hl);
  f.insert(f.end(), p, p + n);
  if (key != nullptr && n > 0) ws::mask(f.data() + hl, n, key);
  return f;
}

inline std::string check_decoder(std::size_t max, std::uint8_t key_byte, std::uint32_t seed,
                                 const std::uint8_t* p, std::size_t n) {
  for (ws::Role role : {ws::Role::Server, ws::Role::Client}) {
    DecodeResult whole = decode(role, max, p, n, false, seed);
    if (!whole.violation.empty()) return "decoder (one feed): " + whole.violation;
    DecodeResult parts = decode(role, max, p, n, true, seed);
    if (!parts.violation.empty()) return "decoder (chunks): " + parts.violation;
    if (whole.log != parts.log || whole.code != parts.code || whole.closed != parts.closed)
      return "decoder: chunking changed the result";
  }
  // Round trips of P as one message.
  const std::uint8_t key[4] = {key_byte, static_cast<std::uint8_t>(key_byte * 7u + 1u),
                               static_cast<std::uint8_t>(seed),
                               static_cast<std::uint8_t>(~key_byte)};
  bool utf8 = ws::valid_utf8(p, n);
  for (int text = 0; text < 2; ++text) {
    for (ws::Role role : {ws::Role::Server, ws::Role::Client}) {
      const std::uint8_t* k = role == ws::Role::Server ? key : nullptr;
      std::uint8_t op = text ? 0x1 : 0x2;
      std::string want;
      std::uint16_t want_code = 0;
      if (n > max) {
        want_code = 1009;
      } else if (text && !utf8) {
        want_code = 1007;
      } else {
        want = std::string(text ? "T" : "B") + std::to_string(n) + ":" +
               std::string(reinterpret_cast<const char*>(p), n) + "|";
      }
      std::vector<std::uint8_t> one = frame(static_cast<std::uint8_t>(0x80 | op), p, n, k);
      // Three fragments, a ping between the first two.
      std::size_t a = n / 3, b = 2 * n / 3;
      std::vector<std::uint8_t> frag = frame(op, p, a, k);
      std::vector<std::uint8_t> ping = frame(0x89, p, n < 5 ? n : 5, k);
      std::vector<std::uint8_t> f2 = frame(0x00, p + a, b - a, k);
      std::vector<std::uint8_t> f3 = frame(0x80, p + b, n - b, k);
      frag.insert(frag.end(), ping.begin(), ping.end());
      frag.insert(frag.end(), f2.begin(), f2.end());
      frag.insert(frag.end(), f3.begin(), f3.end());
      std::string ping_log = "P" + std::to_string(n < 5 ? n : 5) + ":" +
                             std::string(reinterpret_cast<const char*>(p), n < 5 ? n : 5) + "|";
      for (int chunked = 0; chunked < 2; ++chunked) {
        DecodeResult r = decode(role, max, one.data(), one.size(), chunked != 0, seed);
        if (!r.violation.empty()) return "round trip: " + r.violation;
        if (r.code != want_code || r.log != want) return "round trip: one frame decoded wrongly";
        DecodeResult f = decode(role, max, frag.data(), frag.size(), chunked != 0, seed);
        if (!f.violation.empty()) return "round trip (fragments): " + f.violation;
        if (f.code != want_code) return "round trip: fragments gave the wrong code";
        // 1009 may come before the ping (the sum is known early) or after it.
        if (want_code == 0 && f.log != ping_log + want)
          return "round trip: fragments decoded wrongly";
        if (want_code == 1007 && f.log != ping_log) return "round trip: 1007 but not just the ping";
      }
    }
  }
  return "";
}

struct HandshakeRun {
  ws::Handshake::Result result = ws::Handshake::Result::NeedMore;
  int status = 0;
  std::string response;
  std::size_t consumed = 0;
  std::string violation;
};

inline HandshakeRun handshake(const std::uint8_t* p, std::size_t n, bool chunked,
                              std::uint32_t seed) {
  static const ws::HandshakeConfig config = [] {
    ws::HandshakeConfig c;
    c.path = "/chat";
    c.page = "<!doctype html><title>echocast</title>";
    return c;
  }();
  HandshakeRun r;
  ws::Handshake h(&config);
  Lcg lcg{seed};
  std::uint32_t spread = 1 + seed % 31;
  std::size_t pos = 0;
  do {
    std::size_t take = n - pos;
    if (chunked) {
      std::size_t c = lcg.next() % (spread + 1);
      if (c < take) take = c;
    }
    std::size_t used = 12345;
    ws::Handshake::Result res = h.feed(p + pos, take, &used);
    if (used > take) r.violation = "consumed > len";
    if (r.result != ws::Handshake::Result::NeedMore && (res != r.result || used != 0))
      r.violation = "a decision did not stick";
    if (res == ws::Handshake::Result::NeedMore && used != take) r.violation = "NeedMore left bytes";
    r.consumed += used;
    r.result = res;
    pos += take;
  } while (pos < n);
  r.status = h.status();
  r.response = h.response();
  if (r.consumed > ws::kMaxRequestHead) r.violation = "a head over kMaxRequestHead taken";
  switch (r.result) {
    case ws::Handshake::Result::NeedMore:
      if (r.status != 0 || !r.response.empty()) r.violation = "NeedMore with an answer";
      break;
    case ws::Handshake::Result::Upgrade:
      if (r.status != 101 || r.response.compare(0, 13, "HTTP/1.1 101 ") != 0 ||
          r.response.find("\r\nSec-WebSocket-Accept: ") == std::string::npos)
        r.violation = "a bad 101";
      break;
    case ws::Handshake::Result::Page:
    case ws::Handshake::Result::Reject:
      if ((r.result == ws::Handshake::Result::Page) != (r.status == 200))
        r.violation = "Page is not 200";
      if (r.status != 200 && r.status != 400 && r.status != 404 && r.status != 405 &&
          r.status != 426 && r.status != 431)
        r.violation = "an unexpected status";
      if (r.response.find("\r\nContent-Length: ") == std::string::npos ||
          r.response.find("\r\nConnection: close\r\n") == std::string::npos)
        r.violation = "no Content-Length or Connection: close";
      break;
  }
  return r;
}

inline std::string check_handshake(std::uint32_t seed, const std::uint8_t* p, std::size_t n) {
  HandshakeRun whole = handshake(p, n, false, seed);
  if (!whole.violation.empty()) return "handshake (one feed): " + whole.violation;
  HandshakeRun parts = handshake(p, n, true, seed);
  if (!parts.violation.empty()) return "handshake (chunks): " + parts.violation;
  if (whole.result != parts.result || whole.status != parts.status ||
      whole.response != parts.response || whole.consumed != parts.consumed)
    return "handshake: chunking changed the result";
  return "";
}

struct FrameCollect : echocast::FrameSink {
  std::vector<std::string> frames;
  std::vector<std::string> payloads;
  void on_frame(const echocast::FrameView& f) override {
    frames.emplace_back(reinterpret_cast<const char*>(f.bytes), f.size);
    payloads.emplace_back(reinterpret_cast<const char*>(f.bytes) + f.payload_offset,
                          f.payload_size);
  }
};

inline std::string check_frames(const std::uint8_t* p, std::size_t n) {
  using echocast::Framing;
  std::string msg(reinterpret_cast<const char*>(p), n);
  for (Framing fr : {Framing::Line, Framing::Raw, Framing::Length}) {
    std::vector<std::uint8_t> scratch;
    FrameCollect got;
    std::size_t count = ws::message_to_frames(fr, p, n, &scratch, &got);
    if (count != got.frames.size()) return "message_to_frames: the count is wrong";
    std::string all;
    for (const std::string& f : got.frames) all += f;
    std::string want;
    if (fr == Framing::Line) {
      want = msg;
      if (msg.empty() || msg.back() != '\n') want += '\n';
    } else if (fr == Framing::Raw) {
      want = msg;
    } else {
      want = std::string(1, static_cast<char>(n >> 24)) + static_cast<char>(n >> 16) +
             static_cast<char>(n >> 8) + static_cast<char>(n) + msg;
    }
    if (all != want) return "message_to_frames: the bytes are wrong";
    // A Framer with no practical limit splits them into the same frames.
    echocast::Framer framer(fr, n + 16);
    FrameCollect again;
    if (fr == Framing::Raw) {
      for (const std::string& f : got.frames)
        framer.feed(reinterpret_cast<const std::uint8_t*>(f.data()), f.size(), &again);
    } else {
      framer.feed(reinterpret_cast<const std::uint8_t*>(all.data()), all.size(), &again);
    }
    if (again.frames != got.frames || again.payloads != got.payloads)
      return "message_to_frames: a Framer splits them differently";
  }
  return "";
}

inline std::string check_case(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return "";
  static const std::size_t kMax[8] = {0, 1, 5, 125, 126, 300, 65536, 1 << 20};
  std::size_t max = kMax[data[0] & 7];
  std::uint8_t key_byte = static_cast<std::uint8_t>(data[0] >> 3);
  std::uint32_t seed = data[1];
  const std::uint8_t* p = data + 2;
  std::size_t n = size - 2;
  std::string v = check_decoder(max, key_byte, seed, p, n);
  if (v.empty()) v = check_handshake(seed, p, n);
  if (v.empty()) v = check_frames(p, n);
  return v;
}

}  // namespace websocket_check

#endif  // ECHOCAST_TEST_FUZZ_WEBSOCKET_CHECK_H
