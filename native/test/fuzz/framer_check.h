// framer_check.h — the framer's invariants, checked against a byte-at-a-time
// reference splitter. Shared by the libFuzzer target (fuzz_framer.cc), which
// aborts on a violation, and by the unit tests (test_fuzz_regressions.cc),
// which replay every committed corpus and regression file through it.
//
// One input is a case:
//   byte 0      framing: b % 3 (0 line, 1 raw, 2 length); '0' '1' '2' work
//   byte 1      max_frame_bytes: the value itself below 0xF8, else one of
//               0, 1, 4, 64 KiB, 2^32-2, 2^32-1, 2^32, SIZE_MAX/2
//   bytes 2-3   seed of the chunking (a small PRNG cuts the stream into
//               chunks of 0 to 1024 bytes, or the whole rest)
//   byte 4      b % 4 == 0: the connection is reset at chunk (b / 4) % n and
//               a new connection (a new Framer) carries the rest
//   the rest    the byte stream
// Missing header bytes count as 0. The seed corpus keeps the header
// printable ("0@ab-" is line framing, limit 64) so the files stay text.
//
// Invariants (each violation is reported with a message):
// - the frames delivered are exactly the reference's frames, bytes and
//   payload bounds, in order, each as soon as the chunk completing it is fed;
// - no frame over the limit is delivered;
// - feed() returns false exactly for the chunk where the reference sees the
//   limit broken, and every later feed() (a misuse the engines avoid)
//   returns false and delivers nothing;
// - buffered() is the reference's partial frame, never more than the limit
//   (+4 for a length prefix); a partial frame left at a reset is never
//   delivered, and the next connection starts clean;
// - split_encoded() yields the reference's frames with no limit (raw: the
//   whole buffer as one frame).
#ifndef ECHOCAST_TEST_FUZZ_FRAMER_CHECK_H
#define ECHOCAST_TEST_FUZZ_FRAMER_CHECK_H

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "../../core/framer.h"

namespace framer_check {

using echocast::Framer;
using echocast::FrameSink;
using echocast::FrameView;
using echocast::Framing;

// One frame as delivered or expected: relayed bytes and the payload's place.
struct Frame {
  std::string bytes;
  std::size_t payload_offset;
  std::size_t payload_size;
  bool operator==(const Frame& o) const {
    return bytes == o.bytes && payload_offset == o.payload_offset && payload_size == o.payload_size;
  }
};

// What the reference expects of one connection's stream.
struct Expected {
  std::vector<Frame> frames;
  std::vector<std::size_t> frame_end;  // Stream offset just past each frame.
  bool error = false;
  std::size_t error_at = 0;  // Bytes of the stream seen when the error shows.
};

// The rules of framer.h, one byte at a time, with no shortcuts. Raw framing
// depends on the chunking, so it takes the chunk lengths.
inline Expected reference(Framing framing, std::uint64_t max, const std::uint8_t* data,
                          std::size_t len, const std::vector<std::size_t>& chunks) {
  Expected e;
  if (framing == Framing::Raw) {
    std::size_t pos = 0;
    for (std::size_t c : chunks) {
      if (c == 0) continue;
      if (c > max) {
        e.error = true;
        e.error_at = pos + c;
        return e;
      }
      e.frames.push_back(Frame{std::string(reinterpret_cast<const char*>(data) + pos, c), 0, c});
      pos += c;
      e.frame_end.push_back(pos);
    }
    return e;
  }
  std::size_t start = 0;
  for (std::size_t i = 0; i < len; ++i) {
    std::uint64_t have = i + 1 - start;  // Bytes of the current frame so far.
    if (framing == Framing::Line) {
      if (data[i] == '\n') {
        if (have > max) {
          e.error = true;
          e.error_at = i + 1;
          return e;
        }
      } else {
        if (have >= max) {  // The line will be at least have+1 bytes.
          e.error = true;
          e.error_at = i + 1;
          return e;
        }
        continue;
      }
      e.frames.push_back(Frame{std::string(reinterpret_cast<const char*>(data) + start, have), 0,
                               static_cast<std::size_t>(have - 1)});
    } else {
      if (have < 4) continue;
      const std::uint8_t* p = data + start;
      std::uint64_t payload = (std::uint64_t{p[0]} << 24) | (std::uint64_t{p[1]} << 16) |
                              (std::uint64_t{p[2]} << 8) | std::uint64_t{p[3]};
      if (have == 4 && payload > max) {
        e.error = true;
        e.error_at = i + 1;
        return e;
      }
      if (have < 4 + payload) continue;
      e.frames.push_back(Frame{std::string(reinterpret_cast<const char*>(p), have), 4,
                               static_cast<std::size_t>(payload)});
    }
    start = i + 1;
    e.frame_end.push_back(start);
  }
  return e;
}

// Records what the framer delivers, with the limit checks that need the view.
struct Recorder : FrameSink {
  std::vector<Frame> frames;
  std::string violation;
  Framing framing = Framing::Line;
  std::uint64_t max = 0;
  void on_frame(const FrameView& f) override {
    if (f.bytes == nullptr || f.size == 0 || f.payload_offset > f.size ||
        f.payload_size > f.size - f.payload_offset) {
      if (violation.empty()) violation = "malformed FrameView";
      return;
    }
    std::uint64_t counted = framing == Framing::Length ? f.payload_size : f.size;
    if (counted > max && violation.empty()) {
      std::ostringstream os;
      os << "frame over the limit delivered: " << counted << " > " << max;
      violation = os.str();
    }
    frames.push_back(Frame{std::string(reinterpret_cast<const char*>(f.bytes), f.size),
                           f.payload_offset, f.payload_size});
  }
};

// Passes frames on while counting them (for split_encoded's return value).
struct Collector : FrameSink {
  std::vector<Frame> frames;
  void on_frame(const FrameView& f) override {
    frames.push_back(Frame{std::string(reinterpret_cast<const char*>(f.bytes), f.size),
                           f.payload_offset, f.payload_size});
  }
};

// A small deterministic PRNG (xorshift32) for the chunking.
struct Rng {
  std::uint32_t s;
  std::uint32_t next() {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s;
  }
};

inline const char* framing_name(Framing f) {
  return f == Framing::Line ? "line" : f == Framing::Raw ? "raw" : "length";
}

// Feeds one connection's stream in the given chunks and checks it. Returns an
// empty string, or what went wrong.
inline std::string check_connection(Framing framing, std::uint64_t max, const std::uint8_t* data,
                                    std::size_t len, const std::vector<std::size_t>& chunks) {
  Expected exp = reference(framing, max, data, len, chunks);
  std::ostringstream where;
  where << framing_name(framing) << " max=" << max << " len=" << len << " chunks=" << chunks.size()
        << ": ";
  std::size_t cap = max < SIZE_MAX ? static_cast<std::size_t>(max) : SIZE_MAX;
  Recorder rec;
  rec.framing = framing;
  rec.max = max;
  bool failed = false;
  {
    Framer framer(framing, cap);
    std::size_t pos = 0;
    for (std::size_t ci = 0; ci < chunks.size(); ++ci) {
      std::size_t c = chunks[ci];
      std::size_t before = rec.frames.size();
      bool ok = framer.feed(data + pos, c, &rec);
      std::size_t end = pos + c;
      if (!rec.violation.empty()) return where.str() + rec.violation;
      if (failed) {
        if (ok) return where.str() + "feed() after an error returned true";
        if (rec.frames.size() != before) return where.str() + "frames delivered after an error";
        pos = end;
        continue;
      }
      bool expect_error = exp.error && exp.error_at > pos && exp.error_at <= end;
      if (ok == expect_error) {
        std::ostringstream os;
        os << "feed() of bytes [" << pos << ", " << end << ") returned " << ok
           << ", reference error at byte "
           << (exp.error ? static_cast<long long>(exp.error_at) : -1LL);
        return where.str() + os.str();
      }
      // Every frame the reference completes by the end of this chunk (and
      // before the error) has been delivered; none later.
      std::size_t due = 0;
      while (due < exp.frame_end.size() && exp.frame_end[due] <= end) ++due;
      if (rec.frames.size() != due) {
        std::ostringstream os;
        os << "after bytes [0, " << end << ") " << rec.frames.size() << " frames delivered, " << due
           << " expected";
        return where.str() + os.str();
      }
      for (std::size_t k = before; k < due; ++k) {
        if (!(rec.frames[k] == exp.frames[k])) {
          std::ostringstream os;
          os << "frame " << k << " differs: got " << rec.frames[k].bytes.size()
             << " bytes (payload " << rec.frames[k].payload_offset << "+"
             << rec.frames[k].payload_size << "), expected " << exp.frames[k].bytes.size()
             << " (payload " << exp.frames[k].payload_offset << "+" << exp.frames[k].payload_size
             << ")";
          return where.str() + os.str();
        }
      }
      if (!ok) {
        failed = true;
      } else {
        std::size_t last_end = due == 0 ? 0 : exp.frame_end[due - 1];
        std::size_t partial = framing == Framing::Raw ? 0 : end - last_end;
        if (framer.buffered() != partial) {
          std::ostringstream os;
          os << "buffered() " << framer.buffered() << " after bytes [0, " << end
             << "), reference partial frame " << partial;
          return where.str() + os.str();
        }
        if (cap < SIZE_MAX - 4 && framer.buffered() > cap + (framing == Framing::Length ? 4 : 0))
          return where.str() + "buffered() over the limit";
      }
      pos = end;
    }
    // The connection ends here (reset): the Framer and its partial frame go.
  }
  if (rec.frames.size() != exp.frames.size())
    return where.str() + "frame count at the end differs from the reference";
  return std::string();
}

// Runs one fuzz case (see the format above). Returns an empty string when
// every invariant holds, else the first violation.
inline std::string check_case(const std::uint8_t* in, std::size_t size) {
  std::uint8_t h[5] = {0, 0, 0, 0, 0};
  std::size_t hn = size < 5 ? size : 5;
  for (std::size_t i = 0; i < hn; ++i) h[i] = in[i];
  const std::uint8_t* data = in + hn;
  std::size_t len = size - hn;

  static const Framing kFramings[3] = {Framing::Line, Framing::Raw, Framing::Length};
  Framing framing = kFramings[h[0] % 3];
  static const std::uint64_t kSpecial[8] = {
      0, 1, 4, 65536, 0xFFFFFFFEu, 0xFFFFFFFFu, 0x100000000u, SIZE_MAX / 2};
  std::uint64_t max = h[1] < 0xF8 ? h[1] : kSpecial[h[1] - 0xF8];

  // Chunk lengths: mostly small, some empty, some large, some the rest.
  Rng rng{(std::uint32_t{h[2]} << 8 | h[3]) * 2654435761u + 1u};
  if (rng.s == 0) rng.s = 1;
  std::vector<std::size_t> chunks;
  std::size_t left = len;
  while (left > 0) {
    std::uint32_t r = rng.next();
    std::uint32_t k = r % 16;
    std::size_t c;
    if (k == 0) c = 0;
    else if (k < 8) c = 1 + (r >> 4) % 7;
    else if (k < 12) c = 1 + (r >> 4) % 64;
    else if (k < 15) c = 1 + (r >> 4) % 1024;
    else c = left;
    if (c > left) c = left;
    chunks.push_back(c);
    left -= c;
  }

  // A connection reset splits the stream into two connections.
  std::size_t cut = chunks.size();
  if (h[4] % 4 == 0 && !chunks.empty()) cut = (h[4] / 4) % chunks.size();
  std::vector<std::size_t> first(chunks.begin(), chunks.begin() + static_cast<std::ptrdiff_t>(cut));
  std::vector<std::size_t> second(chunks.begin() + static_cast<std::ptrdiff_t>(cut), chunks.end());
  std::size_t first_len = 0;
  for (std::size_t c : first) first_len += c;

  std::string v = check_connection(framing, max, data, first_len, first);
  if (!v.empty()) return v;
  if (!second.empty()) {
    v = check_connection(framing, max, data + first_len, len - first_len, second);
    if (!v.empty()) return "after a reset: " + v;
  }

  // split_encoded: the same frames with no limit, trailing bytes ignored;
  // raw: the whole buffer is one frame (none if empty).
  std::vector<std::size_t> whole(1, len);
  Expected exp = reference(framing, SIZE_MAX / 2, data, len, whole);
  Collector col;
  std::size_t n = echocast::split_encoded(framing, data, len, &col);
  if (n != col.frames.size() || !(col.frames == exp.frames))
    return std::string("split_encoded(") + framing_name(framing) + ") differs from the reference";
  return std::string();
}

}  // namespace framer_check

#endif  // ECHOCAST_TEST_FUZZ_FRAMER_CHECK_H
