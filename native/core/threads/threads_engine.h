// threads_engine.h — the threads engine (native-threads), the seed's model:
// one accept thread (two with a WebSocket listener), and per client a
// reader thread (blocking recv -> Connection -> hub) and a writer thread
// (sleeps on its condition variable, gathers its bytes from the log under
// the lock and sends them outside it). A reaper thread joins the threads of
// finished clients, closes their sockets and reports the disconnect, so
// finished clients cost nothing. threads_engine.cc holds the engine's face,
// accepting and reaping; threads_client.cc a client's reader and writer and
// the WebSocket handshake; threads_tls.cc its TLS stage; threads_door.cc who
// may connect. docs/architecture.md says which file owns which
// rule.
//
// The rules are the core's (connection.h, handshake_list.h, fanout.h
// through hub.h, roster.h, stop_sequence.h); these files are only the I/O
// model: threads, blocking sockets and condition variables.
//
// Closing a client: whoever decides first (reader: a recv error or an
// oversized frame; writer: a send error, or the last byte owed to a client
// that closed its side; another reader's append: slow-consumer; stop:
// server-closed) calls Hub::close_member (or the hub does), which records
// the reason and interrupts the socket under the hub's lock. That wakes both
// threads; each exits, the last one hands the client to the reaper, and
// only the reaper closes the socket, after joining both threads.
//
// End of stream (docs/contract.md S11): without allowHalfOpen the reader
// hands the client to Hub::finish_member, which closes it (client-closed)
// once it has been sent what was queued for it, at once if nothing was; the
// reaper then frees its slot. With allowHalfOpen it keeps receiving until a
// send fails.
//
// Flow control (S7) needs nothing per client here: readers block in recv,
// and while reading is paused their next append waits in the hub.
//
// WebSocket clients (docs/contract.md §6), with a WebSocket listener: a
// second accept thread takes its connections; each gets its reader thread
// at once, which reads the request head while the connection awaits its
// upgrade in the handshake list (handshake_list.h): no id, no event, no
// writer; the reaper interrupts one still there after handshake_timeout_ms. On an
// upgrade the reader sends the 101 itself and admits the client through the
// roster (Connection::admit; a refusal: close 1013 server-full, reported as
// for TCP); the page or an error status is sent the same way, then the
// connection ends. Admitted, it is a hub member with `ws` set: its writer
// gathers [header][payload] per frame from the log, pongs reach the writer
// through the hub (sent between batches, so at a frame boundary), and its
// close frame is sent when it is closed, if Connection::close_frame_due
// says so and the socket takes it at once.
//
// Who may connect (docs/contract.md S15; the rules are core/access.h and
// Connection's door): a peer refused by address is closed by the accept
// thread. With a token or a hook a TCP connection gets its reader at once,
// which reads its first frame while it waits in the handshake list (holding
// a client slot); waiting for the hook, the reader sleeps on the client's
// condition variable (door_cond, under the engine's mutex) until
// authorize_answer() leaves the answer there or the deadline passes: that
// connection's own thread is the only one that waits (the accept thread
// never does). Admitted, it gets its writer, its connection event, and its
// held bytes are fed first.
//
// TLS (docs/contract.md S17; the stage is Connection's): a connection on
// either listener gets its reader at accept, listed in its TLS handshake
// (a TCP one holding a client slot); the reader does the handshake, then
// reads plaintext (recv_plain). The writer seals each batch outside the
// hub's lock, under the client's tls_lock.
#ifndef ECHOCAST_CORE_THREADS_THREADS_ENGINE_H
#define ECHOCAST_CORE_THREADS_THREADS_ENGINE_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "../connection.h"
#include "../engine.h"
#include "../handshake_list.h"
#include "../listening.h"
#include "../roster.h"
#include "hub.h"

namespace echocast {
namespace threads {

class ThreadsEngine;

// Bytes read per recv(). Also bounds raw framing's chunk size.
constexpr std::size_t kRecvBytes = 64 * 1024;

// A WebSocket connection refused by the hook: how long it has to take its
// 403 and end.
constexpr std::uint64_t kAnswerLingerMs = 1000;

// One connection: its hub membership, its rules and state (Connection),
// its socket and two threads.
struct Client : public HubMember, public Connection {
  Client(Framing framing, std::size_t max_frame) : Connection(framing, max_frame) {
    ec_cond_init(&door_cond);
    ec_mutex_init(&tls_lock);
  }
  ~Client() override {
    ec_cond_destroy(&door_cond);
    ec_mutex_destroy(&tls_lock);
  }
  ThreadsEngine* engine = nullptr;
  ec_socket_t sock = EC_INVALID_SOCKET;
  ec_thread_t reader;
  ec_thread_t writer;
  bool reader_started = false;
  bool writer_started = false;
  // Threads still running, plus one held by admit() until it has written
  // the fields above; guarded by the engine's mutex.
  int alive = 0;
  // docs/contract.md S15: its reader waits here (engine mutex) for the
  // authorize hook's answer, which authorize_answer() leaves below.
  ec_cond_t door_cond;
  bool hook_answered = false;
  bool hook_ok = false;
  std::string hook_detail;
  // docs/contract.md S17: its TLS session is driven by its reader (input)
  // and its writer (output, sealed outside the hub's lock), so each holds
  // this while it uses it. Lock order: the hub's, then this one (on_close
  // seals the close frame); never the other way.
  ec_mutex_t tls_lock;
  // Plaintext that came with the end of the TLS handshake, read before the
  // socket (recv_plain).
  std::vector<std::uint8_t> early_plain;

 protected:
  // A stopping server, and a finished client (everything owed was sent:
  // FanoutMember::finishing), end connections gracefully (the peer still
  // reads what was flushed); every other reason cuts the client at once.
  // A WebSocket client is first sent its close frame when
  // Connection::close_frame_due says so and the socket takes it now; after
  // it, the end is graceful so that the frame arrives.
  void on_close(Reason reason) override;
};

class ThreadsEngine : public Engine {
 public:
  ThreadsEngine(const EngineOptions& options, EventSink* sink);
  ~ThreadsEngine() override;

  // Engine (see engine.h).
  ListenResult start() override;
  void broadcast(const std::uint8_t* data, std::size_t len) override { inject(data, len, 0); }
  void set_forward(bool on) override { forward_ = on; }
  void inject(const std::uint8_t* data, std::size_t len, std::uint64_t origin) override;
  void disconnect(std::uint64_t id, const char* reason) override;
  void close_input() override { hub_.close_input(); }
  void authorize_answer(std::uint64_t ticket, bool ok, const std::string& detail) override;
  void stop(std::uint64_t deadline_ms) override;
  EngineStats stats() override;
  void set_tls(std::shared_ptr<tls::TlsContext> context) override { tls_.set(std::move(context)); }

 private:
  static void accept_main(void* arg) {
    ThreadsEngine* e = static_cast<ThreadsEngine*>(arg);
    e->accept_loop(e->listener_, false);
  }
  static void ws_accept_main(void* arg) {
    ThreadsEngine* e = static_cast<ThreadsEngine*>(arg);
    e->accept_loop(e->ws_listener_, true);
  }
  static void reaper_main(void* arg) { static_cast<ThreadsEngine*>(arg)->reaper_loop(); }
  static void reader_main(void* arg) {
    Client* c = static_cast<Client*>(arg);
    c->engine->reader_loop(c);
  }
  static void writer_main(void* arg) {
    Client* c = static_cast<Client*>(arg);
    c->engine->writer_loop(c);
  }

  // ---- Accepting and reaping (threads_engine.cc) ----------------------------

  // Lets the reaper finish what it has and joins it: the last thread.
  void end_reaper();
  // An accept thread's body, on one listener (the TCP one, or the WebSocket
  // one: ws).
  void accept_loop(ec_listener* listener, bool ws);
  // Admits one TCP connection through the roster, or refuses it.
  void admit(const Accepted& a);
  // Called by each client thread as it finishes (and on behalf of a thread
  // that could not be created). The last one hands the client to the reaper.
  void thread_done(Client* c);
  void reaper_loop();
  // Joins a finished client's threads, closes its socket and reports it.
  void finish(Client* c);

  // ---- A client's threads (threads_client.cc) -------------------------------

  void reader_loop(Client* c);
  void writer_loop(Client* c);

  // Under mutex_: a connection accepted to wait (a handshake, or the
  // door) gets its socket, its peer, and two owners (its reader, and the
  // accepting function until start_reader).
  void enlist(Client* c, const Accepted& a);
  // Starts an enlisted connection's reader, then lets the accepting
  // function's hold go (thread_done).
  void start_reader(Client* c);
  // On its reader, once a waiting connection is admitted and announced:
  // starts its writer. False when it could not (reported; the client is
  // closed, client-error).
  bool start_writer(Client* c);
  // A connection on the WebSocket listener: its reader reads the request
  // head while it is in the handshake list; dropped when the list is full.
  void accept_ws(const Accepted& a);
  // The handshake of a WebSocket connection, on its reader thread. Returns
  // true when the client was admitted (its writer runs); *leftover is then
  // how many bytes at the start of buf are its first WebSocket bytes.
  // False: the connection is over (answered, refused or dropped).
  bool handshake(Client* c, std::uint8_t* buf, std::size_t* leftover);
  // After the answer: the send side is shut, and the peer's end of stream
  // (or the handshake's deadline, which interrupts the socket) ends it.
  void linger(Client* c, std::uint8_t* buf);
  // Interrupts every connection in its handshake (under mutex_).
  void interrupt_handshakes();

  // ---- TLS (docs/contract.md S17; threads_tls.cc) ---------------------------

  // On its reader: the TLS handshake (sending its own answers: no writer
  // yet). True when it completed (the state is the next stage's).
  bool tls_handshake(Client* c, std::uint8_t* buf);
  // On its reader, admitted or not: the next plaintext into buf (up to
  // `want`). Without TLS a plain recv. Recv: *n bytes (0: end of stream);
  // Error: the socket failed; TlsFailed: a bad record (tls_failure()).
  enum class Read { Recv, Error, TlsFailed };
  Read recv_plain(Client* c, std::uint8_t* buf, std::size_t want, std::size_t* n);
  // Before admission (no writer): the control bytes, sealed with TLS, sent.
  bool send_control(Client* c);

  // ---- Who may connect (docs/contract.md S15; threads_door.cc) --------------

  // Whether the peer's address may connect; if not, it is closed at once
  // (nothing read or sent) and the refusal reported.
  bool address_allowed(const Accepted& a, bool ws);
  // A TCP connection that must wait (with TLS: for its handshake, listed
  // with the handshake deadline; else at the door, a token or a hook: with
  // the auth deadline), holding a client slot; its reader decides.
  void accept_waiting(const Accepted& a);
  // A waiting connection is admitted (the roster, the hub, its event, its
  // writer); false when it was not (reported).
  bool admit_waiting(Client* c);
  // A connection admitted after its upgrade or its door, under mutex_: its
  // id, its writer's share of alive, clients_, the roster's count, the hub.
  void enroll_locked(Client* c, std::uint64_t id);
  // On its reader: the first frame, the hook, then admission. True when
  // admitted (its writer runs; *leftover bytes at the start of buf are what
  // it sent after its first frame).
  bool door(Client* c, std::uint8_t* buf, std::size_t* leftover);
  // Asks the hook and waits on the client's condition variable for the
  // answer, until the deadline (the connection's own thread: its model).
  // Admit, Refuse (*cause, *detail) or NeedMore (stopping: dropped quietly).
  Connection::Door await_answer(Client* c, Refusal* cause, std::string* detail);
  // After a failed read before admission: a passed deadline is a refusal.
  void refuse_if_expired(Client* c);
  void refuse(Client* c, Refusal cause, const std::string& detail = std::string());
  // Interrupts the handshakes whose deadline passed (under mutex_); returns
  // the next deadline (0: none).
  std::uint64_t expire_handshakes_locked(std::uint64_t now);

  EngineOptions options_;
  EventSink* sink_;
  Hub hub_;
  Roster roster_;
  ec_listener* listener_ = nullptr;
  ec_thread_t accept_thread_;
  ec_listener* ws_listener_ = nullptr;  // With options_.has_ws().
  ec_thread_t ws_accept_thread_;
  ws::HandshakeConfig ws_config_;
  ec_thread_t reaper_thread_;
  bool running_ = false;  // Touched only by the thread calling start/stop.
  // Cluster mode (set_forward); read by every reader per chunk.
  std::atomic<bool> forward_{false};

  // Guards everything below, and the roster's admission. Lock order: this
  // one, then the hub's (admission joins the hub under it); never the hub's
  // first.
  ec_mutex_t mutex_;
  // The reaper sleeps here until a client is finished or it should exit.
  ec_cond_t reaper_cond_;
  // stop() sleeps here until every client is gone; the accept thread's
  // back-off wait uses it too so that stop ends it at once.
  ec_cond_t idle_cond_;
  std::map<std::uint64_t, Client*> clients_;
  std::vector<Client*> dead_;
  // WebSocket connections awaiting their upgrade (not in clients_).
  HandshakeList handshakes_;
  std::vector<Connection*> expired_;
  // Connections waiting for the hook, by ticket.
  std::map<std::uint64_t, Client*> tickets_;
  std::uint64_t next_ticket_ = 0;
  RefusalCounters refusals_;
  // docs/contract.md S17: the context new connections get.
  TlsContextSlot tls_;
  bool stopping_ = false;
  bool reaper_exit_ = false;
};

}  // namespace threads
}  // namespace echocast

#endif  // ECHOCAST_CORE_THREADS_THREADS_ENGINE_H
