// loadgen.h — the bench's load generator: many TCP clients of a broadcast
// server driven by one I/O thread (ec_poller), so that the generator costs
// far less CPU than the server it measures, and reports what it did cost.
//
// No Node-API here (loadgen_wrap.{h,cc} is the JS face) and no OS header:
// everything goes through platform/platform.h.
//
// Life: start() (connect, admit, baseline: then LoadGenListener::on_prepared
// from the I/O thread), begin() (publish), mark() (synchronous snapshot, any
// time), finish() (stop publishing, drain: then on_finished, sockets closed;
// the thread ends) and join(). abort() (also from the destructor) ends the
// thread at once without reporting anything.
//
// Wire format (same as src/bench/loadgen.ts): line frames of exactly `size`
// bytes, "p<publisher>:<seq>:<send time, µs since the generator's epoch>:"
// then '.' padding and '\n'. With `websocket` (loadgen_ws.cc) each client
// upgrades to a WebSocket first and each frame travels as one masked text
// message whose payload is the frame without its '\n'; each message
// received is one delivery, audited like a TCP frame. With a `token`, each
// client presents it first (see LoadGenOptions::token).
#ifndef ECHOCAST_BENCH_LOADGEN_H
#define ECHOCAST_BENCH_LOADGEN_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../platform/platform.h"
#include "histogram.h"

namespace echocast {
namespace bench {

// The smallest frame that always holds the header (p<5 digits>:<10>:<12>:).
constexpr std::uint32_t kMinFrameBytes = 32;
constexpr std::uint32_t kMaxFrameBytes = 1024 * 1024;
constexpr std::uint32_t kMaxClients = 100000;
constexpr std::uint32_t kMaxPublishers = 99999;

struct LoadGenOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  std::uint32_t clients = 50;
  // The first `publishers` clients send (and receive, like every client).
  std::uint32_t publishers = 5;
  // Bytes per frame, '\n' included.
  std::uint32_t size = 64;
  // Frames per second offered by all publishers together; 0: as fast as the
  // server takes them.
  double rate = 10000;
  // How frames arrive at a rate > 0. false (ticks): every publisher sends
  // what it owes each 1 ms tick, so the server sees synchronized bursts.
  // true (Poisson): each publisher sends one frame at a time at exponentially
  // distributed intervals, independent of the others, like publishers that
  // do not share a clock.
  bool poisson = false;
  // The last `auditors` clients parse every frame (order, latency); the
  // others only count bytes.
  std::uint32_t auditors = 2;
  // While publishing, have the clients that only count bytes reported
  // readable only once this many bytes are queued (SO_RCVLOWAT, POSIX only;
  // 0 or 1: off). At 16 KiB it cut the generator's CPU about 3x in a test
  // (most of it is kernel time: each loopback read runs the TCP ACK path),
  // but the server's CPU per delivery rose with it (the loopback TCP work
  // and the server's batching shift), so it is off by default: opt in only
  // when the generator is the bottleneck. mark() and the drain read what it
  // holds back.
  std::uint32_t rcvlowat = 0;
  // Readers on slower links: the `throttled_clients` clients right after the
  // publishers (never a publisher nor an auditor) read at most
  // `throttle_bytes_per_sec` bytes per second each. They are left out of
  // rate 0's closed loop (the server's flow control paces the publishers to
  // them, or cuts them), and one the server closes is not counted as lost.
  // They are throttled until finish(); the drain reads them at full speed.
  std::uint32_t throttled_clients = 0;
  double throttle_bytes_per_sec = 0;
  // WebSocket clients instead of TCP ones (loadgen_ws.cc): `port` is then
  // the server's WebSocket port and `ws_path` the path they upgrade on.
  // Byte counts (LoadGenMark::bytes, LoadGenResult::bytes) then count
  // `size` per message received, what the same delivery costs over TCP,
  // so that bytes / size is deliveries either way. rcvlowat must be 0.
  bool websocket = false;
  std::string ws_path = "/";
  // The server's token (docs/contract.md S15); empty: none. Every client
  // presents it: a TCP client sends it as its first line right after it
  // connects, before anything else (the server never broadcasts it, so no
  // byte count includes it); a WebSocket client sends it in its upgrade
  // request as `Authorization: Bearer <token>`.
  std::string token;
  // The server echoes a frame to its sender (echoToSender, docs/contract.md
  // S1). false: a publisher is owed every frame but its own (the drain, the
  // lost count, rate 0's closed loop), and the admission probes of client 0
  // admit every client but client 0 (they never come back to it).
  bool echo_to_sender = true;
};

// What is wrong with the options, or an empty string.
std::string validate_options(const LoadGenOptions& o);

// A snapshot for the bench's measured window.
struct LoadGenMark {
  std::uint64_t bytes = 0;            // Received by all clients so far.
  std::uint64_t cpu_micros = 0;       // The I/O thread's CPU time so far.
  std::uint64_t frames_sent = 0;      // Written by the publishers since the baseline.
  std::uint64_t throttled_bytes = 0;  // Received by the throttled clients so far.
};

struct LoadGenResult {
  std::uint64_t frames_sent = 0;  // Since the baseline.
  std::uint64_t lost = 0;         // Frames owed and not received, over clients.
  std::uint64_t order_violations = 0;
  std::uint64_t latency_count = 0;          // Frames the auditors timed.
  std::uint64_t p50 = 0, p99 = 0, max = 0;  // µs.
  std::uint64_t cpu_micros = 0;             // The I/O thread's CPU time in all.
  std::uint64_t bytes = 0;                  // Received by all clients in all.
  std::uint64_t throttled_closed = 0;       // Throttled clients the server closed (cut).
};

// Why prepare failed: a Node-style code ("ECONNREFUSED", "ETIMEDOUT",
// "ECANCELED", ...), a message, and the syscall when an OS call failed.
struct LoadGenFailure {
  std::string code;
  std::string message;
  const char* syscall = nullptr;
};

// Completions, called on the I/O thread. `last` says the thread reports
// nothing more and is about to end (join() will not block for long).
class LoadGenListener {
 public:
  virtual ~LoadGenListener() = default;
  // failure == nullptr: every client is connected and admitted.
  virtual void on_prepared(const LoadGenFailure* failure, bool last) = 0;
  // After finish(): the drain is over and every socket is closed. Always last.
  virtual void on_finished(const LoadGenResult& result) = 0;
};

class LoadGen {
 public:
  LoadGen(const LoadGenOptions& options, LoadGenListener* listener);
  ~LoadGen();  // abort() + join() if still running.
  LoadGen(const LoadGen&) = delete;
  LoadGen& operator=(const LoadGen&) = delete;

  // Starts the I/O thread, which connects and admits every client and then
  // calls on_prepared. False (with *failure) if the thread could not start;
  // nothing is reported then.
  bool start(LoadGenFailure* failure);
  // Starts publishing (ignored unless prepared and not finishing).
  void begin();
  // A snapshot taken by the I/O thread (it answers within one turn of its
  // loop); zeros before start(), the final numbers after the thread ended.
  LoadGenMark mark();
  // Stops publishing and drains (every client gets what it is owed, or
  // 10 s pass), then on_finished. Before prepare completed: on_prepared
  // with ECANCELED, then on_finished.
  void finish();
  // Ends the thread without reporting, closing every socket, and joins it.
  void abort();
  // Joins the thread (after the `last` completion) and frees the poller.
  void join();
  bool running() const { return started_ && !joined_; }

 private:
  struct Client;
  struct Auditor;
  struct WsConn;
  enum class Phase { Connecting, Admitting, Settling, Ready, Publishing, Draining };

  static void thread_main(void* arg);
  void run();
  void wake();

  // I/O thread.
  bool step_connecting(std::uint64_t now, LoadGenFailure* failure);
  bool begin_connect(Client& c, LoadGenFailure* failure);
  bool on_connected(Client& c, LoadGenFailure* failure);
  // A TCP client just connected: its token's line, before anything else.
  bool send_token(Client& c, LoadGenFailure* failure);
  void set_interest(Client& c, unsigned events);
  void close_client(Client& c);
  // Reads once; false when the client is gone (closed here).
  bool read_client(Client& c, std::uint64_t now);
  // Raises (or restores) SO_RCVLOWAT on the clients that only count bytes.
  void set_lowat(bool on);
  // A throttled client: how many bytes it may read now (0: it waits, its
  // reads are off until c.resume_at).
  std::size_t throttle_allowance(Client& c, std::uint64_t now);
  // Turns reading back on for throttled clients whose wait is over; returns
  // the earliest wait still running (or `limit`).
  std::uint64_t resume_throttled(std::uint64_t now, std::uint64_t limit);
  // Reads what SO_RCVLOWAT holds back.
  void sweep(std::uint64_t now);
  void audit(Auditor& a, const char* data, std::size_t len, std::uint64_t now_rel);
  void audit_line(Auditor& a, const char* line, std::size_t len, std::uint64_t now_rel);
  void generate(Client& c, std::uint32_t publisher, std::uint64_t count);
  // Sends what a publisher has pending; false when the client is gone.
  bool flush(Client& c);
  void pace(std::uint64_t now);
  // Poisson arrivals: an exponential interval for one publisher, µs.
  std::uint64_t next_interval();
  // Rate 0: bytes the publishers may still offer (kMaxLagBytes closed loop).
  std::uint64_t lag_room();

  // WebSocket clients (loadgen_ws.cc; options_.websocket only).
  // A connected socket sends its upgrade request; it stays in flight
  // (Client::Upgrading) until the 101 is checked. False (with *failure)
  // when the upgrade failed (the client is closed).
  bool ws_start(Client& c, LoadGenFailure* failure);
  bool ws_upgrading(Client& c, unsigned events, std::uint64_t now, LoadGenFailure* failure);
  // Decodes what a client received; false when it is gone (closed here).
  bool ws_received(Client& c, const std::uint8_t* data, std::size_t len, std::uint64_t now);
  // Rewrites the `count` line frames generate() just wrote at c.out[at..]
  // as masked WebSocket messages.
  void ws_encode(Client& c, std::size_t at, std::uint64_t count);
  std::uint64_t frames_written() const;
  // Bytes of a publisher's own frames since the baseline, which a server
  // without echoToSender never sends back to it; 0 for every other client.
  std::uint64_t own_bytes(const Client& c) const;
  bool drained() const;
  LoadGenMark snapshot() const;
  LoadGenResult result() const;
  void close_all();
  void publish_mark();

  LoadGenOptions options_;
  LoadGenListener* listener_;
  ec_poller* poller_ = nullptr;
  ec_thread_t thread_;
  bool net_ = false;
  bool started_ = false;
  bool joined_ = false;

  // Commands from the JS thread.
  std::atomic<bool> begin_req_{false};
  std::atomic<bool> finish_req_{false};
  std::atomic<bool> abort_req_{false};
  std::atomic<bool> mark_req_{false};

  // mark(): the JS thread asks and waits; the I/O thread answers.
  ec_mutex_t mutex_;
  ec_cond_t cond_;
  std::uint64_t mark_asked_ = 0;     // Under mutex_.
  std::uint64_t mark_answered_ = 0;  // Under mutex_.
  LoadGenMark mark_;                 // Under mutex_.
  bool exited_ = false;              // Under mutex_: the loop is over.

  // I/O thread state.
  Phase phase_ = Phase::Connecting;
  std::vector<Client> clients_;
  std::vector<Auditor> auditors_;
  std::vector<std::uint64_t> seqs_;  // Next seq per publisher.
  std::vector<double> credit_;       // Frames owed per publisher (rate > 0).
  std::vector<char> recv_buf_;
  LatencyHistogram latency_;
  std::uint64_t epoch_ = 0;          // ec_now_micros() at start.
  std::uint64_t bytes_ = 0;          // Received by all clients.
  std::uint64_t frames_before_ = 0;  // frames_written() at the baseline.
  std::uint32_t next_connect_ = 0;
  std::uint32_t in_flight_ = 0;
  std::uint32_t open_ = 0;
  std::uint64_t deadline_ = 0;     // Of the current phase, µs.
  std::uint64_t next_action_ = 0;  // Admission sends, settle end.
  std::uint64_t last_tick_ = 0;
  bool sub_ms_ = false;                        // Waits to the µs (Poisson, where the poller can).
  std::vector<std::uint64_t> due_;             // Next frame's time per publisher (Poisson), µs.
  std::uint64_t rng_ = 0x9e3779b97f4a7c15ull;  // Poisson intervals (xorshift64*).
  std::uint64_t generated_ = 0;                // Frames generated while publishing.
  std::uint64_t slowest_ = 0;                  // Least any open client received since the baseline.
  std::uint64_t wire_frame_ =
      0;  // Bytes a frame takes on the wire (size, or its WebSocket message).
};

}  // namespace bench
}  // namespace echocast

#endif  // ECHOCAST_BENCH_LOADGEN_H
