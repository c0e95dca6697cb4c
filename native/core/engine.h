// engine.h — the interface between an I/O model (the threads engine, or the
// poll engine) and whoever drives it (the Node-API wrapper, or tests). Both
// engines share one semantics core (fanout.h, roster.h, stop_sequence.h).
// Nothing here knows about Node-API: engines report through EventSink.
#ifndef ECHOCAST_CORE_ENGINE_H
#define ECHOCAST_CORE_ENGINE_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../platform/platform.h"
#include "access.h"
#include "framer.h"
#include "fanout.h"
#include "frame_batch.h"
#include "tls/tls.h"

namespace echocast {

// Server options after validation (the TypeScript layer validates and fills
// defaults; the wrapper only backstops types).
struct EngineOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  Framing framing = Framing::Line;
  std::uint32_t replay = 1;
  bool echo_to_sender = true;
  std::uint64_t max_frame_bytes = 64u * 1024u;
  std::uint64_t max_backlog_bytes = 16u * 1024u * 1024u;
  // docs/contract.md S7: how long reading may stay paused before the
  // clients still over max_backlog_bytes are cut (0: cut at once).
  std::uint64_t slow_consumer_ms = 2000;
  // docs/contract.md S11: a client's FIN leaves it receiving (true) instead
  // of flushing and closing it (false).
  bool allow_half_open = false;
  std::uint32_t max_clients = 10000;
  // docs/contract.md §6: how long a connection may take, from its accept,
  // to finish its handshake (a WebSocket upgrade's request head) before it
  // is dropped, never admitted (handshake-limit).
  std::uint64_t handshake_timeout_ms = 10000;
  // docs/contract.md §6: a second listener for WebSocket clients (ws_port
  // -1: none; 0: any free port) on ws_host, upgrading on ws_path and
  // serving ws_page (the built-in page's HTML) there to plain GETs.
  int ws_port = -1;
  std::string ws_host = "127.0.0.1";
  std::string ws_path = "/";
  std::string ws_page;
  // Header lines (each ending in CRLF) sent with the page, beside its type
  // and length: its Content-Security-Policy and the like (src/ws/page.ts).
  std::string ws_page_headers;
  bool has_ws() const { return ws_port >= 0; }
  // docs/contract.md S15, who may connect: the address lists (both
  // listeners, at accept), foreign origins a WebSocket upgrade may come
  // from (normalised, or "*"), the token ('' for none), whether JS's
  // authorize hook decides, how long a peer may wait to be decided, and
  // whether a TCP client's first frame may not be an HTTP request line.
  AddressList allow;
  AddressList deny;
  std::vector<std::string> ws_origins;
  std::string auth_token;
  bool authorize = false;
  std::uint64_t auth_timeout_ms = 10000;
  bool refuse_http = true;
  // docs/contract.md S17: both listeners speak TLS with this material (the
  // wrapper makes the context from it: Engine::set_tls).
  bool has_tls = false;
  tls::TlsMaterial tls;
  // Whether a TCP client waits to be decided (its first frame, then the
  // hook) before it is admitted.
  bool tcp_door() const { return !auth_token.empty() || authorize; }
  bool address_lists() const { return !allow.empty() || !deny.empty(); }
};

// docs/contract.md S15: what the authorize hook is told about a waiting
// connection; JS answers with Engine::authorize_answer(ticket, ...).
struct AuthorizeRequest {
  std::uint64_t ticket = 0;
  bool ws = false;
  std::string address;
  int port = 0;
  // WebSocket: the path without its query, the raw query, and the header
  // fields as received ([name, value, ...]).
  std::string path;
  std::string query;
  std::vector<std::string> headers;
  // TCP: the first frame's payload.
  std::vector<std::uint8_t> first_frame;
};

// Where engine threads report what happens. Every method may be called from
// any engine thread (never from two threads for the same client at once),
// and must not call back into the engine.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // A client was accepted (ids start at 1 and increase).
  virtual void on_connection(std::uint64_t id, const std::string& address, int port) = 0;
  // Whether message events are wanted right now; checked per received chunk
  // so that nothing is copied or queued while JS does not listen.
  virtual bool wants_messages() = 0;
  // A frame from client `id` was received (and, unless forwarding, entered
  // the log). With may_wait (reader threads) it blocks the caller while too
  // many event bytes wait for JS (backpressure on that client); without it
  // (the poll engine's one thread) it never blocks, and the engine checks
  // events_room() before reading instead.
  virtual void on_message(std::uint64_t id, const FrameRef& frame, bool may_wait) = 0;
  // Cluster mode: `frames` complete frames of client `id`, in wire form
  // (delimiters and prefixes included), from one read. They did not enter
  // the log. Bounded like on_message (same may_wait rule).
  virtual void on_frames(std::uint64_t id, const std::uint8_t* data, std::size_t len,
                         std::size_t frames, bool may_wait) = 0;
  // Whether the event bytes waiting for JS are under the bound (or the
  // bound is lifted). The poll engine stops reading a client while this is
  // false and resumes when Engine::events_drained() is called. A false
  // answer counts as a hold (stats().eventHolds): ask it only to hold.
  virtual bool events_room() { return true; }
  // A client is gone (its threads are joined and its socket closed), or a
  // connection was refused (server-full).
  virtual void on_disconnect(std::uint64_t id, const char* reason) = 0;
  // An asynchronous server error (e.g. accept failing hard).
  virtual void on_error(const ec_error& err, const char* syscall) = 0;
  // docs/contract.md S15: a peer was refused (counted by the engine before
  // this call; the event may be dropped under pressure, the count never).
  virtual void on_refusal(Refusal cause, bool ws, const std::string& address, int port,
                          const std::string& detail) {
    (void)cause, (void)ws, (void)address, (void)port, (void)detail;
  }
  // A connection waits for the authorize hook's answer (never blocks).
  virtual void on_authorize(AuthorizeRequest&& request) { (void)request; }
};

// The result of start().
struct ListenResult {
  ec_error err;
  const char* syscall = "";  // Which call failed, when err is set.
  ec_bound_address bound;
  // With a WebSocket listener: where it is bound; ws_failed says the error
  // above is that listener's.
  ec_bound_address ws_bound;
  bool ws_failed = false;
};

// Counters for stats().
struct EngineStats {
  std::uint64_t clients = 0;
  std::uint64_t ws_clients = 0;  // Of clients, those on the WebSocket listener.
  FanoutCounters counters;
  // Flow control (docs/contract.md S7): pause episodes so far, and their
  // total length in ms (a running one counts up to now).
  std::uint64_t read_pauses = 0;
  std::uint64_t read_paused_ms = 0;
  std::map<std::string, std::uint64_t> disconnects;
  // Refusals by cause, every cause listed (docs/contract.md S15).
  std::map<std::string, std::uint64_t> refusals;
};

// One running server. start() and stop() are called once each, from one
// thread; broadcast() and stats() from any thread.
class Engine {
 public:
  virtual ~Engine() = default;
  // Binds, listens and starts the engine's threads. Synchronous and quick.
  virtual ListenResult start() = 0;
  // Appends already-encoded frames with no sender (id 0): the same as
  // inject(data, len, 0).
  virtual void broadcast(const std::uint8_t* data, std::size_t len) = 0;
  // Cluster mode: while on, complete frames from clients do not enter the
  // log; they go to EventSink::on_frames, one call per read.
  virtual void set_forward(bool on) = 0;
  // Splits already-encoded frames (the server's framing; "a\nb\n" is two
  // line frames, raw framing takes the buffer as one frame) and appends them
  // in order with sender `origin` (0: no local sender), so echoToSender:
  // false skips that client. Counted as framesIn. Never blocks.
  virtual void inject(const std::uint8_t* data, std::size_t len, std::uint64_t origin) = 0;
  // Cuts client `id` with `reason`, a reason name (reasons.h), e.g.
  // "cluster-unavailable"; a no-op if the client is gone or the name is not
  // a reason.
  virtual void disconnect(std::uint64_t id, const char* reason) = 0;
  // Called by the wrapper (any thread) when event bytes waiting for JS were
  // released, so an engine that paused reading (events_room() false) can
  // resume. Must not block.
  virtual void events_drained() {}
  // docs/contract.md S15: JS's answer for the connection waiting under
  // `ticket` (an unknown or expired ticket is ignored). Any thread; never
  // blocks: the engine hands it to the connection's I/O side.
  virtual void authorize_answer(std::uint64_t ticket, bool ok, const std::string& detail) {
    (void)ticket, (void)ok, (void)detail;
  }
  // docs/contract.md S17: the TLS context connections accepted from now on
  // get (before start(), and again for a reload); any thread. Connected
  // sessions keep the context they started with.
  virtual void set_tls(std::shared_ptr<tls::TlsContext> context) { (void)context; }
  // close() began (docs/contract.md S14): from now on no frame from a client
  // is accepted, even before stop() runs on its own thread. Called on the JS
  // thread just before stop(); quick, never blocks for long.
  virtual void close_input() = 0;
  // Stops accepting, lets writers flush for up to deadline_ms, closes every
  // client ("server-closed"), and joins every thread. Blocks until done, so
  // the wrapper calls it off the JS thread. Safe if start() failed.
  virtual void stop(std::uint64_t deadline_ms) = 0;
  // A snapshot of the counters.
  virtual EngineStats stats() = 0;
};

// The threads engine (native-threads): an accept thread, and per client a
// reader and a writer thread.
std::unique_ptr<Engine> make_threads_engine(const EngineOptions& options, EventSink* sink);

// The poll engine (native-poll): one I/O thread multiplexing every socket
// (epoll on Linux, WSAPoll on Windows, poll elsewhere), with no lock on the
// data path.
std::unique_ptr<Engine> make_poll_engine(const EngineOptions& options, EventSink* sink);

}  // namespace echocast

#endif  // ECHOCAST_CORE_ENGINE_H
