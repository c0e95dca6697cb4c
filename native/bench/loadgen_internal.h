// loadgen_internal.h — what the load generator's source files share: its
// timings and sizes, its per-client state, and how a failure is worded. Only
// loadgen.cc (life and main loop), loadgen_net.cc (connections, reads,
// audits), loadgen_pace.cc (frames, pacing, arrivals) and loadgen_ws.cc
// (WebSocket clients) include it.
#ifndef ECHOCAST_BENCH_LOADGEN_INTERNAL_H
#define ECHOCAST_BENCH_LOADGEN_INTERNAL_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/ws/decoder.h"
#include "loadgen.h"

namespace echocast {
namespace bench {

// The generator's timings (µs) and sizes.
inline constexpr std::uint32_t kConnectBatch = 50;            // Connects in flight at most.
inline constexpr std::uint64_t kConnectTimeoutUs = 10000000;  // Per batch.
inline constexpr std::uint64_t kAdmitIntervalUs = 20000;      // Publisher 0's probe frames.
inline constexpr std::uint64_t kAdmitTimeoutUs = 15000000;
inline constexpr std::uint64_t kSettleUs = 50000;  // After the last admission.
inline constexpr std::uint64_t kDrainTimeoutUs = 10000000;
inline constexpr std::uint64_t kTickUs = 1000;        // Pacing tick (rate > 0).
inline constexpr std::size_t kRecvBytes = 64 * 1024;  // One read.
inline constexpr std::size_t kFillBytes = 64 * 1024;  // Rate 0: refill below this.
// Rate 0: bytes offered but not yet received by the slowest client, at most.
// Without this closed loop, "as fast as the server takes them" outruns the
// fan-out, every backlog grows to the server's limit and clients are cut.
inline constexpr std::uint64_t kMaxLagBytes = 512 * 1024;
inline constexpr std::size_t kOutCapBytes = 256 * 1024;  // Pending bytes per publisher.
inline constexpr std::size_t kMaxEvents = 256;           // Poller events per wait.
// A throttled reader's bucket holds this long of its rate (at least
// kThrottleMinBurst bytes): reads stay small and the rate smooth.
inline constexpr std::uint64_t kThrottleBurstUs = 5000;
inline constexpr double kThrottleMinBurst = 4096;

// One auditor's view of the stream: order per publisher, and a hash of the
// order of all frames, compared between auditors at the end.
struct LoadGen::Auditor {
  std::vector<char> carry;         // A frame split across reads.
  std::vector<std::int64_t> last;  // Last seq per publisher; -1: none yet.
  std::uint32_t hash = 0;          // Rolling hash of the order seen.
  std::uint64_t frames = 0;
  std::uint64_t violations = 0;
};

// A WebSocket client's side of the protocol (loadgen_ws.cc): its upgrade,
// its mask key and its decoder, whose messages go to `sink`.
struct LoadGen::WsConn {
  struct Sink : ws::MessageSink {
    LoadGen* gen = nullptr;
    Client* client = nullptr;
    std::uint64_t now_rel = 0;  // Of the bytes being decoded.
    void on_message(const std::uint8_t* data, std::size_t len, bool text) override;
    void on_ping(const std::uint8_t* data, std::size_t len) override;
    void on_close(std::uint16_t code, const std::uint8_t* reason, std::size_t len) override;
  };
  WsConn(LoadGen* gen, Client* client, std::size_t max_message)
      : decoder(ws::Role::Client, max_message) {
    sink.gen = gen;
    sink.client = client;
  }
  std::string request;  // The upgrade request; what is not yet sent.
  std::size_t request_sent = 0;
  std::string head;          // The response head as it arrives.
  std::uint8_t key[4] = {};  // This client's mask key.
  ws::Decoder decoder;
  Sink sink;
};

// Bytes one frame of `size` takes as a masked WebSocket message.
std::uint64_t ws_message_bytes(std::uint32_t size);

// One client of the generator, on the I/O thread only.
struct LoadGen::Client {
  // Upgrading: connected, its WebSocket upgrade under way (still in flight).
  enum State : std::uint8_t { Idle, Connecting, Upgrading, Open, Closed };
  ec_socket_t sock = EC_INVALID_SOCKET;
  State state = Idle;
  unsigned interest = 0;  // 0: not registered.
  bool lowat = false;     // SO_RCVLOWAT raised.
  // Throttled readers (LoadGenOptions::throttled_clients): a token bucket.
  bool throttled = false;
  bool waiting = false;         // Out of credit: reads are off until resume_at.
  double credit = 0;            // Bytes it may read now.
  std::uint64_t credit_at = 0;  // When credit was last topped up, µs.
  std::uint64_t resume_at = 0;
  std::uint64_t bytes = 0;
  std::uint64_t baseline = 0;
  Auditor* auditor = nullptr;
  // Publishers: frames not yet taken by the kernel, and what it took.
  std::vector<char> out;
  std::size_t out_head = 0;
  std::uint64_t written = 0;         // Frame bytes only.
  std::uint64_t written_before = 0;  // `written` at the baseline.
  // Bytes at the head of `out` that are no frame (the token's line, queued
  // first): sent like the rest, but never counted in `written`.
  std::size_t preamble = 0;
  std::size_t pending() const { return out.size() - out_head; }
  std::unique_ptr<WsConn> ws;  // WebSocket clients only.
};

// "host:port", for messages.
inline std::string endpoint(const LoadGenOptions& o) {
  return o.host + ":" + std::to_string(o.port);
}

// Fills *f with a Node-style code and message for a failed call.
inline void fail_with(LoadGenFailure* f, const ec_error& err, const char* syscall,
                      const std::string& what) {
  f->code = ec_err_name(err.code);
  f->syscall = syscall;
  // Node's wording: "connect ECONNREFUSED 127.0.0.1:3000".
  f->message = std::string(syscall ? syscall : "loadgen") + " " + f->code;
  if (what.empty()) f->message += ": " + ec_error_message(err);
  else f->message += " " + what;
}

}  // namespace bench
}  // namespace echocast

#endif  // ECHOCAST_BENCH_LOADGEN_INTERNAL_H
