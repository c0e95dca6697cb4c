// poll_engine.h — the poll engine (native-poll), shared by poll_engine.cc
// (its face to other threads), poll_loop.cc (the loop), poll_client.cc
// (one client's reads, sends and handshake), poll_door.cc (who may
// connect, docs/contract.md S15) and poll_tls.cc (the TLS stage,
// docs/contract.md S17): one I/O thread multiplexes
// every socket (ec_poller: epoll on Linux, WSAPoll on Windows, poll
// elsewhere).
//
// The loop, per turn: wait for readiness; take the commands JS queued
// (inbox.h: broadcast/inject, disconnect, set_forward, stop), which reach
// the loop through the poller's wake-up channel; accept; read each readable
// client once (framer -> log, or to JS in cluster mode); then, when the
// coalescer (coalescer.h) says the sends are due, gather every client's
// unsent frames straight from the log into one writev/WSASend; then apply
// flow control and the slow-consumer rule and trim the log (one pass,
// Fanout::review). Everything the loop touches is its own, so there are no
// locks on the data path (only the inbox and the counters JS reads are
// shared).
//
// The rules are the core's (connection.h, handshake_list.h, fanout.h,
// roster.h, stop_sequence.h); these files are only the I/O model.
// docs/architecture.md says which file owns which rule. Flow control (docs/contract.md S7): while a
// client's backlog is over maxBacklogBytes the review pauses reading, and
// the loop closes the poller's input gate (EC_POLL_GATED: no system call on
// epoll, poll or WSAPoll, however many clients), so no client socket is
// read and publishers feel TCP backpressure; the listener still accepts.
// The wait is bounded by the pause's deadline, which the loop's timeout
// includes. Within a turn, Fanout::input_open() stops reads once what was
// appended could take a backlog past the limit, so a turn overshoots by one
// read at most: its frames as a backlog counts them (docs/contract.md S16),
// up to ~8 MiB of entries for kRecvBytes of 1-byte frames.
//
// End of stream (S11): without allowHalfOpen a client is sent what was
// queued for it at that moment, then closed (client-closed) and its slot
// freed; at once when nothing was queued.
//
// Sockets are level-triggered. Interest: IN (gated) while reading (off after
// end of stream, or while held: JS has too many event bytes queued), OUT only
// while a send would block. A closed client is unregistered and its socket
// closed at once, but its memory is freed only at the end of the turn,
// because events of the same batch may still point at it.
//
// WebSocket clients (docs/contract.md §6), with a WebSocket listener: a
// connection on it awaits its upgrade (no id, no event, not a fanout
// member, input not gated; Connection::State::AwaitingUpgrade) in the
// handshake list (handshake_list.h: at most max_handshakes(), each for at
// most handshake_timeout_ms). An upgrade is admitted through the roster
// (Connection::admit); a page, an error status or a server-full refusal
// (101, then close 1013) is answered before admission, then its send side
// is shut and it is dropped at the peer's end of stream (or the deadline).
// An admitted WebSocket client is a fanout member with `ws` set (each frame
// one message, header and payload gathered from the log); its control bytes
// (the 101, pongs) go out before the next data gather at a frame boundary,
// and its close frame (Connection::close_frame_due) is sent, when the
// socket takes it at once, just before the socket is closed.
//
// Who may connect (docs/contract.md S15; the rules are core/access.h and
// Connection's door): a peer refused by address is closed at accept. With a
// token or a hook a TCP connection waits at the door in the handshake list
// (input not gated, holding a client slot) until its first frame decides;
// waiting for the hook its interest is off (reading stopped) and the answer
// comes through the inbox (Command::Answer, by ticket); the deadline comes
// from the same list. Admitted, it is enrolled as any client and fed what
// it held.
//
// TLS (docs/contract.md S17; the stage is Connection's): a connection on
// either listener is listed from accept in its TLS handshake
// (AwaitingTls, handshake_timeout_ms; a TCP one holds a client slot), its
// answers sent from its wire. Its reads go through the session first
// (decrypt, plain_); its sends are whole gathered frames sealed onto the
// wire in one pass (send_tls), the fanout advanced once they are out.
#ifndef ECHOCAST_CORE_POLL_POLL_ENGINE_H
#define ECHOCAST_CORE_POLL_POLL_ENGINE_H

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "coalescer.h"
#include "../connection.h"
#include "../engine.h"
#include "../handshake_list.h"
#include "inbox.h"
#include "../listening.h"
#include "../roster.h"
#include "../stop_sequence.h"

namespace echocast {
namespace poll {

// Bytes read per recv(). Under saturation a larger read means more frames
// per turn and so fuller sends. Raw framing keeps 64 KiB chunks, as
// node:net reads them, since there a chunk is a frame.
constexpr std::size_t kRecvBytes = 256 * 1024;
constexpr std::size_t kRawRecvBytes = 64 * 1024;
// Readiness events taken per wait.
constexpr std::size_t kMaxEvents = 256;
// Bytes gathered per send (at least one frame), and sends per client per
// turn: a client with a large backlog does not hold the loop for long.
constexpr std::size_t kGatherBytes = 256 * 1024;
constexpr int kSendsPerTurn = 4;
// Connections accepted per turn.
constexpr int kAcceptsPerTurn = 128;
// After a poller failure the loop serves commands only; it looks this often.
constexpr std::uint64_t kBrokenWaitMs = 100;
// A WebSocket connection refused when its deadline passed: how long it has
// to take its 403 and end.
constexpr std::uint64_t kAnswerLingerMs = 1000;

// One connection, owned by the loop thread: its rules and state are the
// Connection's (connection.h); what is here is the poll loop's own.
struct PollClient : public FanoutMember, public Connection {
  PollClient(Framing framing, std::size_t max_frame) : Connection(framing, max_frame) {}
  ec_socket_t sock = EC_INVALID_SOCKET;
  unsigned interest = 0;    // What the poller watches now.
  bool registered = false;  // In the poller.
  bool held = false;        // Not read until JS takes its events (not S7's pause).
  bool blocked = false;     // The last send would block: wait for OUT.
};

class PollEngine;

// Receives a client's complete frames from its framer.
class ReadSink : public FrameSink {
 public:
  explicit ReadSink(PollEngine* engine) : engine_(engine) {}
  void on_frame(const FrameView& v) override;
  PollClient* client = nullptr;
  bool forward = false;
  bool messages = false;

 private:
  PollEngine* engine_;
};

// The engine. Its Engine methods (poll_engine.cc) run on other threads and
// reach the loop only through the inbox; everything else runs on the loop
// thread (poll_loop.cc, poll_client.cc, poll_door.cc, poll_tls.cc).
class PollEngine : public Engine, private Inbox::Waker {
 public:
  PollEngine(const EngineOptions& options, EventSink* sink)
      : options_(options),
        sink_(sink),
        fanout_(fanout_options(options)),
        roster_(options.max_clients),
        coalescer_(&ec_now_micros),
        handshakes_(max_handshakes(options), options.handshake_timeout_ms),
        read_sink_(this) {
    ws_config_ = handshake_config(options);
  }
  ~PollEngine() override { stop(0); }

  // Engine (see engine.h).
  ListenResult start() override;
  void broadcast(const std::uint8_t* data, std::size_t len) override;
  void set_forward(bool on) override { inbox_.post_forward(on); }
  void inject(const std::uint8_t* data, std::size_t len, std::uint64_t origin) override;
  void disconnect(std::uint64_t id, const char* reason) override;
  void events_drained() override;
  void authorize_answer(std::uint64_t ticket, bool ok, const std::string& detail) override {
    inbox_.post_answer(ticket, ok, detail);
  }
  void close_input() override { input_closed_.store(true, std::memory_order_relaxed); }
  void set_tls(std::shared_ptr<tls::TlsContext> context) override { tls_.set(std::move(context)); }
  void stop(std::uint64_t deadline_ms) override;
  EngineStats stats() override;

  // A frame from the client being read (ReadSink): into the log, or kept
  // for JS in cluster mode; and a message event if JS listens.
  void on_client_frame(PollClient* c, const FrameView& v, bool forward, bool messages);

 private:
  static void loop_main(void* arg) { static_cast<PollEngine*>(arg)->loop(); }

  // Inbox::Waker, called under the inbox's lock while attached.
  void wake() override { ec_poller_wake(poller_); }

  // Detaches the inbox from the poller, then destroys it.
  void close_poller() {
    inbox_.attach(nullptr);
    if (poller_ != nullptr) ec_poller_destroy(poller_);
    poller_ = nullptr;
  }

  // ---- The loop (poll_loop.cc) ---------------------------------------------

  // The loop thread's body, until the stop sequence is done.
  void loop();
  // How long this turn may sleep: 0 while work waits, else until the next
  // stop or accept deadline (-1: no limit).
  int timeout_ms() const;
  // The wait of this turn in microseconds: timeout_ms(), shortened to when
  // the sends the coalescer holds are due.
  std::int64_t timeout_us() const;
  // Whether this turn sends: frames just appended may wait for more.
  bool flush_now();
  // One readiness event: the listener, or a client's input or output.
  void handle(const ec_poll_event& ev);

  // Accepts up to kAcceptsPerTurn connections on one listener (the TCP one,
  // or the WebSocket one: ws), pausing on a shortage.
  void accept_some(ec_socket_t listener, bool ws);
  // Watches the listener again after a shortage pause.
  void resume_accept();
  // Takes the listener out of the poller (stop, or a fatal accept error).
  void stop_listening();
  // Admits one connection through the roster, or refuses it.
  void admit(const Accepted& a);
  // An admitted client (TCP, or WebSocket after its upgrade) joins the
  // fanout and the roster under `id`, and is announced; replay follows at the flush.
  void enroll(PollClient* c, std::uint64_t id, const std::string& address, int port);

  // ---- WebSocket (see the top of this file; poll_client.cc) -----------------

  // A connection on the WebSocket listener: listed in the handshake list,
  // or dropped when the list is full.
  void accept_ws(const Accepted& a);
  // Readiness of a connection in its handshake.
  void handle_handshake(PollClient* c, const ec_poll_event& ev);
  // The upgrade completed: admission (roster), then the first WebSocket
  // bytes (`len` after the head).
  void upgrade(PollClient* c, const std::uint8_t* data, std::size_t len);
  // Sends the answer of a connection refused admission (or given the page
  // or an error status); once it is out, shuts the send side. False when
  // the connection was dropped.
  bool answer(PollClient* c);
  // Drops a connection never admitted (no event): unregistered, closed,
  // freed by reap().
  void drop_handshake(PollClient* c);
  // Drops the handshakes whose deadline passed.
  void expire_handshakes();
  // Watches a connection accepted to wait (a handshake, or the door): in
  // the poller, not gated. False when it could not be (`c` null or the
  // poller refused): its socket is closed and `c` freed.
  bool watch_waiting(PollClient* c, const Accepted& a);
  // Bytes that came before admission (after the head, or after the first
  // frame at the door), fed once the client is admitted and still open.
  void consume_first(PollClient* c, const std::uint8_t* data, std::size_t len);
  // Forgets the connection's question to the hook, if any.
  void forget_ticket(PollClient* c);

  // ---- TLS (docs/contract.md S17; poll_tls.cc) ------------------------------

  // Readiness of a connection in its TLS handshake.
  void handle_tls(PollClient* c, const ec_poll_event& ev);
  // Its TLS handshake completed: the next stage, with the plaintext that
  // came with it (plain_).
  void tls_opened(PollClient* c);
  // Sends what a connection not yet admitted owes on the wire (the TLS
  // handshake's bytes, an answer), watching for OUT while it cannot, for IN
  // alone once it is out. False when the connection was dropped.
  bool send_waiting(PollClient* c);
  // A waiting connection's TLS failed (or its peer left mid-handshake):
  // refused as tls with the reason, dropped.
  void refuse_tls(PollClient* c);
  // Ciphertext through the session; false (the connection dropped or
  // closed) when it failed. The plaintext is in plain_.
  bool decrypt(PollClient* c, const std::uint8_t* data, std::size_t n);
  // Up to kSendsPerTurn sends of an admitted TLS client's wire: its frames
  // gathered and sealed in one pass, the fanout advanced once they are out.
  void send_tls(PollClient* c);
  // What the upgrade's request bytes lead to (AwaitingUpgrade).
  void handshake_bytes(PollClient* c, const std::uint8_t* data, std::size_t n);

  // ---- Who may connect (docs/contract.md S15; poll_door.cc) -----------------

  // Whether the peer's address may connect; if not, it is closed at once
  // (nothing read or sent) and the refusal reported.
  bool address_allowed(const Accepted& a, bool ws);
  // A TCP connection that must wait before admission: in its TLS handshake
  // (listed with the handshake deadline), or at the door (a token or a
  // hook; the auth deadline). It holds a client slot until decided.
  void accept_waiting(const Accepted& a);
  // Readiness of a connection at the door or waiting for the hook.
  void handle_door(PollClient* c, const ec_poll_event& ev);
  // What the door said: admit, ask the hook, or refuse (`cause`, `detail`).
  void door_step(PollClient* c, Connection::Door d, Refusal cause, const std::string& detail);
  // Asks the hook (the authorize event); the connection reads nothing more.
  void ask(PollClient* c);
  // A TCP connection the door let in: admission, then what it held.
  void admit_door(PollClient* c);
  // The hook's answer (the inbox's Answer command).
  void take_answer(const Command& cmd);

  // ---- One client's I/O (poll_client.cc) -----------------------------------

  // What one attempt to send a connection's wire came to.
  enum class WireSend { Sent, Waits, Failed };
  // Sends what the connection's wire holds (without TLS: its control
  // bytes) while the socket takes all of it: Sent (all of it), Waits (the
  // socket would block or took less) or Failed (the send's error).
  WireSend write_wire(PollClient* c);
  // write_wire() for an admitted client; false when not all went (blocked:
  // waiting for OUT) or the client was closed.
  bool send_wire(PollClient* c);
  // After a client's sends of this turn: closed when `finished` (all it was
  // owed, S11); else watching for OUT only while blocked, or sending again
  // next turn while frames or `owed` bytes are left.
  void sends_done(PollClient* c, bool finished, bool owed);
  // Best effort, just before the socket closes: our close frame for
  // `reason`, if the socket takes it now and we are at a frame boundary.
  void send_close_frame(PollClient* c, Reason reason);
  // Bytes a client hands to its framer or its WebSocket session.
  bool consume(PollClient* c, const std::uint8_t* data, std::size_t n);

  // One recv for a readable client, fed to its framer.
  void read_client(PollClient* c);
  // Reads again from the clients held while JS had too many event bytes.
  void release_held();
  // Applies the commands queued in the inbox, in order.
  void take_commands();

  // Sends every client what it is owed, then reviews (flow control, the
  // slow-consumer rule, the trim). Runs every turn in which something
  // changed, and while reading is paused, when the pause may end.
  void flush();
  // Fanout::review, its cuts, and the input gate to match.
  void review();
  // Up to kSendsPerTurn gathered sends to one client.
  void send_to(PollClient* c);
  // A send would block: wait for the socket to become writable.
  void block(PollClient* c);
  // What the poller should watch for this client now.
  void update_interest(PollClient* c);
  // Registers, changes or (park) removes the client's poller entry.
  void set_interest(PollClient* c, unsigned want, bool park);
  // Closes a client now (socket closed, disconnect reported); its memory is
  // freed by reap() at the end of the turn.
  void close_client(PollClient* c, Reason reason);
  // Frees the clients closed in this turn.
  void reap();
  // Adds this turn's client frames to framesIn, before the sends.
  void commit_counters();

  // ---- Stop (stop_sequence.h) ----------------------------------------------

  // The Stop command: stop accepting; input is closed from now on.
  void begin_stop(std::uint64_t deadline_ms);
  // Called every turn while stopping; true when the loop may end.
  bool stop_progress();

  EngineOptions options_;
  EventSink* sink_;
  ec_socket_t listener_ = EC_INVALID_SOCKET;
  ec_socket_t ws_listener_ = EC_INVALID_SOCKET;  // With options_.has_ws().
  ws::HandshakeConfig ws_config_;
  ec_poller* poller_ = nullptr;  // Set before the loop runs, destroyed after.
  ec_thread_t thread_;
  bool running_ = false;  // Touched only by the thread calling start/stop.
  // Shared with other threads: the rules' counters are atomic, the
  // roster's tallies too, and the inbox has its lock.
  Fanout fanout_;
  Roster roster_;
  Inbox inbox_;
  std::atomic<bool> room_signal_{false};
  std::atomic<bool> any_held_{false};
  // close() began (close_input): what clients send now is dropped, even
  // before the Stop command reaches the loop (docs/contract.md S14).
  std::atomic<bool> input_closed_{false};
  std::atomic<std::uint64_t> clients_count_{0};

  // The loop thread's own state.
  Coalescer coalescer_;
  StopSequence stop_;
  std::vector<PollClient*> clients_;
  std::unordered_map<std::uint64_t, PollClient*> by_id_;
  std::vector<PollClient*> held_;
  std::vector<FanoutMember*> cut_;
  std::vector<Command> commands_;
  std::size_t dead_ = 0;
  // WebSocket connections before admission, and those dropped this turn.
  HandshakeList handshakes_;
  std::vector<Connection*> expired_;
  std::vector<PollClient*> dead_handshakes_;
  // Refusals by cause; connections waiting for the hook, by ticket.
  RefusalCounters refusals_;
  std::unordered_map<std::uint64_t, PollClient*> tickets_;
  std::uint64_t next_ticket_ = 0;
  std::unique_ptr<std::uint8_t[]> buf_;
  // docs/contract.md S17: the context new connections get, and one read's
  // plaintext.
  TlsContextSlot tls_;
  std::vector<std::uint8_t> plain_;
  ReadSink read_sink_;
  FrameBatch forwarded_;  // Cluster mode: one read's frames.
  bool forward_ = false;  // Cluster mode (set_forward, through the inbox).
  bool listening_ = false;
  AcceptErrors accept_errors_;
  std::uint64_t accept_resume_at_ = 0;
  bool gate_open_ = true;  // The poller's input gate (follows the pause).
  bool log_grew_ = false;
  bool need_flush_ = false;
  std::uint64_t turn_frames_in_ = 0, turn_bytes_in_ = 0;
};

}  // namespace poll
}  // namespace echocast

#endif  // ECHOCAST_CORE_POLL_POLL_ENGINE_H
