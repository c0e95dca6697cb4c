// threads_client.cc — a threads-engine client's own threads: its reader
// (the WebSocket handshake first, then its bytes into its Connection and
// the hub) and its writer (see threads_engine.h).
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "threads_engine.h"

namespace echocast {
namespace threads {

namespace {

// Bytes read per recv(). Also bounds raw framing's chunk size.
constexpr std::size_t kRecvBytes = 64 * 1024;
// Bytes gathered into one send by a writer (at least one frame).
constexpr std::size_t kBatchBytes = 64 * 1024;
// How long a reader whose peer sent its close waits for the writer's batch in
// flight, so that our close frame follows it (Hub::close_member): a batch to
// a peer that reads takes far less; one that does not read is cut after it.
constexpr std::uint64_t kCloseAfterSendMs = 100;
// With TLS a batch is in flight longer (sealed, then sent), and the backlog
// counts it until it is out (docs/contract.md S7): at most a quarter of
// maxBacklogBytes, so that appends meanwhile do not take a client that
// keeps up past the limit; never under one record.
std::size_t tls_batch_bytes(std::uint64_t max_backlog_bytes) {
  std::uint64_t quarter = max_backlog_bytes / 4;
  if (quarter < tls::TlsSession::kRecordBytes) return tls::TlsSession::kRecordBytes;
  return quarter < kBatchBytes ? static_cast<std::size_t>(quarter) : kBatchBytes;
}

// Sends all of `data` on a client's socket (before its writer exists).
bool send_bytes(ec_socket_t s, const std::vector<std::uint8_t>& data) {
  ec_iovec piece = {data.data(), data.size()};
  return ec_socket_send_all(s, &piece, 1).ok();
}

}  // namespace

void ThreadsEngine::reader_loop(Client* c) {
  std::unique_ptr<std::uint8_t[]> buf(new (std::nothrow) std::uint8_t[kRecvBytes]);
  if (!buf) {
    if (c->admitted()) hub_.close_member(c, Reason::ClientError);
    thread_done(c);
    return;
  }
  std::size_t leftover = 0;
  if (c->state() == Connection::State::AwaitingTls) {
    // docs/contract.md S17: the TLS handshake first (no event).
    if (!tls_handshake(c, buf.get())) {
      thread_done(c);
      return;
    }
    if (c->state() == Connection::State::AwaitingToken) {
      // The door, with its own deadline.
      ec_lock_guard lock(&mutex_);
      handshakes_.hold(c, ec_now_ms() + options_.auth_timeout_ms);
      ec_cond_signal(&reaper_cond_);
    } else if (!c->websocket() && !admit_waiting(c)) {
      thread_done(c);
      return;
    }
  }
  if (c->websocket()) {
    // A WebSocket connection: its handshake first (no event).
    if (!handshake(c, buf.get(), &leftover)) {
      thread_done(c);
      return;
    }
  } else if (c->state() == Connection::State::AwaitingToken) {
    // docs/contract.md S15: the door first (no event).
    if (!door(c, buf.get(), &leftover)) {
      thread_done(c);
      return;
    }
  }
  // docs/contract.md S7, S16: one read's frames, as a backlog counts them,
  // stay within the limit (raw framing: a read is a frame, kRecvBytes).
  const std::size_t want =
      options_.framing == Framing::Raw ? kRecvBytes : hub_.read_bytes(kRecvBytes);
  FrameBatch batch;  // One read's frames, side by side in wire form.
  FrameBatchSink collect(&batch);
  std::vector<HubMember*> wake;  // Writers this reader's appends wake.
  for (;;) {
    std::size_t n = leftover;  // The first WebSocket bytes came with the head.
    leftover = 0;
    if (n == 0) {
      Read r = recv_plain(c, buf.get(), want, &n);
      if (r == Read::TlsFailed) {
        hub_.close_member(c, Reason::ProtocolError);  // docs/contract.md S17: a bad record.
        break;
      }
      if (r == Read::Error) {
        hub_.close_member(c, Reason::ClientError);  // Keeps an earlier reason.
        break;
      }
      if (n == 0) {
        // The peer shut its write side: drop any partial frame (with the
        // framer). docs/contract.md S11: it is sent what is queued for it,
        // then closed; with allowHalfOpen its writer keeps sending until
        // the socket fails (not a WebSocket: it has no half-close).
        if (c->peer_finished(options_.allow_half_open)) hub_.finish_member(c);
        break;
      }
    }
    batch.clear();
    bool ok = c->feed(buf.get(), n, &collect);
    if (c->control_pending())  // A pong, sent by the writer.
      hub_.queue_control(c, c->take_control(), WsSession::kMaxControlBytes);
    if (!batch.frames.empty()) {
      bool forward = forward_;
      // Cluster mode: the frames go to JS (and the stream), not the hub.
      bool delivered = forward || hub_.append(batch, c->id, true, &wake);
      if (delivered && sink_->wants_messages())
        for (const FrameBatch::Extent& e : batch.frames)
          sink_->on_message(c->id, batch.frame_ref(e, c->id), true);
      if (forward)
        sink_->on_frames(c->id, batch.bytes.data(), batch.bytes.size(), batch.frames.size(), true);
    }
    if (batch.bytes.capacity() > 2 * kRecvBytes) batch = FrameBatch();
    if (!ok) {
      Reason why = c->close_reason();
      if (c->refused_http()) refuse(c, Refusal::Http);  // docs/contract.md S15.
      // Our close frame after the batch in flight, if it goes soon: a peer
      // that asked to leave leaves at once (docs/contract.md §6).
      hub_.close_member(c, why, c->close_frame(why), kCloseAfterSendMs);
      break;
    }
  }
  thread_done(c);
}

void ThreadsEngine::writer_loop(Client* c) {
  ec_iovec pieces[EC_MAX_IOV];
  std::string sealed;  // TLS: one batch's records.
  const std::size_t batch = c->tls() ? tls_batch_bytes(options_.max_backlog_bytes) : kBatchBytes;
  for (;;) {
    std::size_t count = 0;
    if (hub_.next_batch(c, pieces, EC_MAX_IOV, batch, &count) == BatchResult::Closed) break;
    ec_error err;
    if (c->tls()) {
      // docs/contract.md S17: the batch sealed in one pass, outside the
      // hub's lock (the session's own lock only), then sent whole.
      sealed.clear();
      bool ok;
      {
        ec_lock_guard lock(&c->tls_lock);
        ok = c->seal_into(pieces, count, &sealed);
      }
      if (!ok) {
        hub_.send_failed(c, Reason::ClientError);
        break;
      }
      ec_iovec piece = {sealed.data(), sealed.size()};
      err = ec_socket_send_all(c->sock, &piece, 1);
      if (sealed.capacity() > 2 * kBatchBytes) std::string().swap(sealed);
    } else {
      err = ec_socket_send_all(c->sock, pieces, count);
    }
    if (!err.ok()) {
      hub_.send_failed(c, c->failure_reason());
      break;
    }
  }
  thread_done(c);
}

void ThreadsEngine::enlist(Client* c, const Accepted& a) {
  c->engine = this;
  c->sock = a.sock;
  c->set_peer(a.address, a.port);
  c->alive = 2;  // The reader, and the accepting function until it is done.
}

void ThreadsEngine::start_reader(Client* c) {
  ec_error err =
      ec_thread_create(&c->reader, &ThreadsEngine::reader_main, c, EC_THREAD_STACK_BYTES);
  c->reader_started = err.ok();
  if (!err.ok()) {
    sink_->on_error(err, "thread_create");
    thread_done(c);  // For the reader never run.
  }
  thread_done(c);  // For the accepting function, done with it.
}

bool ThreadsEngine::start_writer(Client* c) {
  ec_error err =
      ec_thread_create(&c->writer, &ThreadsEngine::writer_main, c, EC_THREAD_STACK_BYTES);
  c->writer_started = err.ok();
  if (err.ok()) return true;
  sink_->on_error(err, "thread_create");
  hub_.close_member(c, Reason::ClientError);
  thread_done(c);  // For the writer never run.
  return false;
}

void ThreadsEngine::accept_ws(const Accepted& a) {
  std::size_t max_frame = static_cast<std::size_t>(options_.max_frame_bytes);
  Client* c = nullptr;
  {
    ec_lock_guard lock(&mutex_);
    if (stopping_) {
      ec_socket_close(a.sock);
      return;
    }
    if (handshakes_.full()) {
      ec_socket_close(a.sock);
      report_refusal(&refusals_, sink_, Refusal::HandshakeLimit, true, a.address, a.port);
      return;
    }
    c = new (std::nothrow) Client(options_.framing, max_frame);
    if (c != nullptr &&
        (!c->start_websocket(&ws_config_) || (options_.has_tls && !c->start_tls(tls_.get())))) {
      delete c;
      c = nullptr;
    }
    if (c != nullptr) {
      c->ws = true;
      enlist(c, a);
      handshakes_.add(c, ec_now_ms());
      ec_cond_signal(&reaper_cond_);  // The reaper now watches a deadline.
    }
  }
  if (c == nullptr) {
    ec_socket_close(a.sock);
    return;
  }
  start_reader(c);
}

bool ThreadsEngine::handshake(Client* c, std::uint8_t* buf, std::size_t* leftover) {
  for (;;) {
    std::size_t n = 0;
    if (recv_plain(c, buf, kRecvBytes, &n) != Read::Recv || n == 0) {
      refuse_if_expired(c);  // docs/contract.md S15: its head came too late.
      return false;          // Gone before its upgrade, or dropped.
    }
    std::size_t consumed = 0;
    ws::Handshake::Result r = c->handshake(buf, n, &consumed);
    if (r == ws::Handshake::Result::NeedMore) continue;
    if (r != ws::Handshake::Result::Upgrade) {
      Refusal cause;
      if (c->handshake_refused(&cause)) refuse(c, cause);  // 403 or 401.
      // The page or an error status, then the end.
      if (send_control(c)) linger(c, buf);
      return false;
    }
    if (c->state() == Connection::State::Authorizing) {
      // docs/contract.md S15: the hook decides, the 101 waits (the bytes
      // after the head stay in buf: nothing is read meanwhile). Beyond
      // max_clients: today's server-full.
      bool room;
      {
        ec_lock_guard lock(&mutex_);
        room = roster_.has_room(clients_.size() + handshakes_.holding());
      }
      Refusal cause = Refusal::Hook;
      std::string detail;
      Connection::Door d = Connection::Door::NeedMore;
      if (room) {
        d = await_answer(c, &cause, &detail);
      } else {
        ec_lock_guard lock(&mutex_);  // As in await_answer: the reaper reads the state.
        d = c->answer(true);
        handshakes_.extend(c, ec_now_ms() + kAnswerLingerMs);
        ec_cond_signal(&reaper_cond_);
      }
      if (d == Connection::Door::Refuse) {
        refuse(c, cause, detail);
        if (send_control(c)) linger(c, buf);
        return false;
      }
      if (d != Connection::Door::Admit) return false;
    }
    if (!send_control(c)) return false;  // The 101.
    std::uint64_t id = 0;
    bool admitted = false;
    {
      ec_lock_guard lock(&mutex_);
      if (stopping_) return false;
      std::size_t waiting = handshakes_.holding() - (c->holds_slot() ? 1 : 0);
      admitted = c->admit(&roster_, clients_.size() + waiting, &id);
      if (admitted) {
        handshakes_.remove(c);
        c->id = id;
        c->alive += 1;  // The writer.
        clients_[id] = c;
        hub_.join(c);  // Under the same lock, as in admit().
      }
    }
    if (!admitted) {
      // docs/contract.md §6: the upgrade completed, then close 1013
      // server-full (queued by admit); reported as for TCP.
      sink_->on_disconnect(id, reason_name(Reason::ServerFull));
      if (send_control(c)) linger(c, buf);
      return false;
    }
    sink_->on_connection(id, c->peer_address(), c->peer_port());
    if (!start_writer(c)) return false;
    // The bytes after the head: moved to the start of buf.
    std::memmove(buf, buf + consumed, n - consumed);
    *leftover = n - consumed;
    return true;
  }
}

void ThreadsEngine::linger(Client* c, std::uint8_t* buf) {
  if (c->tls()) {
    // docs/contract.md S17: our close_notify after the answer.
    std::string out;
    {
      ec_lock_guard lock(&c->tls_lock);
      c->seal_close_notify();
      c->take_wire(&out);
    }
    ec_iovec piece = {out.data(), out.size()};
    if (!out.empty()) ec_socket_send_all(c->sock, &piece, 1);
  }
  ec_socket_shutdown_send(c->sock);
  c->answered();
  for (;;) {
    std::size_t n = 0;
    if (!ec_socket_recv(c->sock, buf, kRecvBytes, &n).ok() || n == 0) return;
  }
}

void ThreadsEngine::interrupt_handshakes() {
  for (Connection* e : handshakes_.connections()) {
    Client* c = static_cast<Client*>(e);
    ec_socket_interrupt(c->sock);
    ec_cond_signal(&c->door_cond);  // One waiting for the hook: stopping.
  }
}

std::uint64_t ThreadsEngine::expire_handshakes_locked(std::uint64_t now) {
  expired_.clear();
  std::uint64_t next = handshakes_.expire(now, &expired_);
  for (Connection* e : expired_) {
    Client* c = static_cast<Client*>(e);
    // One waiting for the hook ends its own wait (its WebSocket 403 still
    // to send); any other is interrupted and its reader sees why.
    if (c->state() == Connection::State::Authorizing) ec_cond_signal(&c->door_cond);
    else ec_socket_interrupt(c->sock);
  }
  expired_.clear();
  return next;
}

// ---- Who may connect (docs/contract.md S15) ---------------------------------

void ThreadsEngine::refuse(Client* c, Refusal cause, const std::string& detail) {
  report_refusal(&refusals_, sink_, cause, c->websocket(), c->peer_address(), c->peer_port(),
                 detail);
}

bool ThreadsEngine::address_allowed(const Accepted& a, bool ws) {
  if (address_admitted(options_, &refusals_, sink_, a.peer, ws, a.address, a.port)) return true;
  ec_socket_close(a.sock);  // Nothing read, nothing sent.
  return false;
}

void ThreadsEngine::accept_door(const Accepted& a) {
  Client* c = nullptr;
  bool full = false;
  std::uint64_t id = 0;
  {
    ec_lock_guard lock(&mutex_);
    if (stopping_) {
      ec_socket_close(a.sock);
      return;
    }
    if (!roster_.has_room(clients_.size() + handshakes_.holding())) {
      roster_.refuse(&id);  // Beyond max_clients: today's server-full.
      full = true;
    } else if (!handshakes_.full()) {
      c = new (std::nothrow)
          Client(options_.framing, static_cast<std::size_t>(options_.max_frame_bytes));
    }
    if (c != nullptr) {
      c->start_tcp(&options_);
      enlist(c, a);
      std::uint64_t now = ec_now_ms();
      handshakes_.add(c, now, options_.auth_timeout_ms);
      handshakes_.hold(c, now + options_.auth_timeout_ms);
      ec_cond_signal(&reaper_cond_);  // The reaper now watches a deadline.
    }
  }
  if (c == nullptr) {
    ec_socket_close(a.sock);
    if (full) sink_->on_disconnect(id, reason_name(Reason::ServerFull));
    else report_refusal(&refusals_, sink_, Refusal::HandshakeLimit, false, a.address, a.port);
    return;
  }
  start_reader(c);
}

void ThreadsEngine::refuse_if_expired(Client* c) {
  bool expired;
  {
    ec_lock_guard lock(&mutex_);
    expired = c->deadline_passed();
  }
  Refusal cause;
  if (expired && c->expire(&cause)) refuse(c, cause);
}

bool ThreadsEngine::door(Client* c, std::uint8_t* buf, std::size_t* leftover) {
  Connection::Door d = Connection::Door::NeedMore;
  Refusal cause = Refusal::Token;
  std::string detail;
  while (d == Connection::Door::NeedMore) {
    std::size_t n = 0;
    if (recv_plain(c, buf, kRecvBytes, &n) != Read::Recv || n == 0) {
      refuse_if_expired(c);  // No token in time; else gone: no event.
      return false;
    }
    d = c->first_frame(buf, n, &cause);
  }
  if (d == Connection::Door::Authorize) d = await_answer(c, &cause, &detail);
  if (d == Connection::Door::Refuse) refuse(c, cause, detail);  // Closed having received nothing.
  if (d != Connection::Door::Admit) return false;
  // Exactly today's admission: the connection event, replay, then what it
  // sent after its first frame (held, at most the rest of one read).
  if (!admit_waiting(c)) return false;
  std::vector<std::uint8_t> held = c->take_held();
  if (!held.empty()) std::memcpy(buf, held.data(), held.size());
  *leftover = held.size();
  return true;
}

Connection::Door ThreadsEngine::await_answer(Client* c, Refusal* cause, std::string* detail) {
  std::uint64_t due = 0;
  AuthorizeRequest request;
  {
    ec_lock_guard lock(&mutex_);
    if (stopping_) return Connection::Door::NeedMore;
    c->ticket = ++next_ticket_;
    tickets_[c->ticket] = c;
    std::uint64_t now = ec_now_ms();
    // WebSocket: auth.timeoutMs from now; TCP: still from its accept.
    due = c->websocket() || c->deadline() == 0 ? now + options_.auth_timeout_ms : c->deadline();
    if (!c->websocket() && c->deadline_passed()) due = now;
    handshakes_.hold(c, due);
    ec_cond_signal(&reaper_cond_);
    request = c->authorize_request();
  }
  sink_->on_authorize(std::move(request));
  Connection::Door d = Connection::Door::NeedMore;  // Stopping: dropped, no event.
  ec_lock_guard lock(&mutex_);
  for (;;) {
    if (c->hook_answered) {
      *cause = Refusal::Hook;
      detail->swap(c->hook_detail);
      d = c->answer(c->hook_ok);
      break;
    }
    if (stopping_) break;
    std::uint64_t now = ec_now_ms();
    if (now >= due || c->deadline_passed()) {
      if (c->expire(cause)) d = Connection::Door::Refuse;
      break;
    }
    ec_cond_timed_wait(&c->door_cond, &mutex_, due - now);
  }
  tickets_.erase(c->ticket);
  c->ticket = 0;
  if (d != Connection::Door::NeedMore) {
    // The answer leaves Authorizing under the lock the reaper reads the
    // state under, with a new deadline, in one step: else the reaper, due
    // at the same moment, would take a refused connection whose 403 is not
    // yet sent (or an admitted one whose 101 is not) for one to interrupt.
    // The reader now has a moment to send its answer and end.
    handshakes_.extend(c, ec_now_ms() + kAnswerLingerMs);
    ec_cond_signal(&reaper_cond_);
  }
  return d;
}

void ThreadsEngine::authorize_answer(std::uint64_t ticket, bool ok, const std::string& detail) {
  ec_lock_guard lock(&mutex_);
  auto it = tickets_.find(ticket);
  if (it == tickets_.end()) return;  // Expired, gone, or never asked.
  Client* c = it->second;
  tickets_.erase(it);  // The first answer is the answer.
  c->hook_answered = true;
  c->hook_ok = ok;
  c->hook_detail = detail;
  ec_cond_signal(&c->door_cond);
}

bool ThreadsEngine::admit_waiting(Client* c) {
  std::uint64_t id = 0;
  bool admitted = false;
  {
    ec_lock_guard lock(&mutex_);
    if (stopping_) return false;
    handshakes_.remove(c);
    admitted = c->admit(&roster_, clients_.size() + handshakes_.holding(), &id);
    if (admitted) {
      c->id = id;
      c->alive += 1;  // The writer.
      clients_[id] = c;
      hub_.join(c);  // Under the same lock, as in admit().
    }
  }
  if (!admitted) {
    sink_->on_disconnect(id, reason_name(Reason::ServerFull));  // Tallied by the roster.
    return false;
  }
  sink_->on_connection(id, c->peer_address(), c->peer_port());
  return start_writer(c);
}

// ---- TLS (docs/contract.md S17) ----------------------------------------------

void ThreadsEngine::accept_tls(const Accepted& a) {
  Client* c = nullptr;
  bool full = false;
  std::uint64_t id = 0;
  {
    ec_lock_guard lock(&mutex_);
    if (stopping_) {
      ec_socket_close(a.sock);
      return;
    }
    // As a client waiting at the door: it holds a slot (past max_clients:
    // today's server-full), and the handshake list is bounded.
    if (!roster_.has_room(clients_.size() + handshakes_.holding())) {
      roster_.refuse(&id);
      full = true;
    } else if (!handshakes_.full()) {
      c = new (std::nothrow)
          Client(options_.framing, static_cast<std::size_t>(options_.max_frame_bytes));
      if (c != nullptr) {
        c->start_tcp(&options_);
        if (!c->start_tls(tls_.get())) {
          delete c;
          c = nullptr;
        }
      }
    }
    if (c != nullptr) {
      enlist(c, a);
      std::uint64_t now = ec_now_ms();
      handshakes_.add(c, now, options_.handshake_timeout_ms);
      handshakes_.hold(c, now + options_.handshake_timeout_ms);
      ec_cond_signal(&reaper_cond_);  // The reaper now watches a deadline.
    }
  }
  if (c == nullptr) {
    ec_socket_close(a.sock);
    if (full) sink_->on_disconnect(id, reason_name(Reason::ServerFull));
    else report_refusal(&refusals_, sink_, Refusal::HandshakeLimit, false, a.address, a.port);
    return;
  }
  start_reader(c);
}

bool ThreadsEngine::tls_handshake(Client* c, std::uint8_t* buf) {
  for (;;) {
    std::size_t n = 0;
    ec_error err = ec_socket_recv(c->sock, buf, kRecvBytes, &n);
    if (!err.ok() || n == 0) {
      // Gone mid-handshake, or interrupted: at its deadline (a refusal),
      // or stopping (dropped, no event).
      bool expired, stopping;
      {
        ec_lock_guard lock(&mutex_);
        expired = c->deadline_passed();
        stopping = stopping_;
      }
      Refusal cause;
      if (expired) c->expire(&cause);
      if (!stopping || expired) refuse(c, Refusal::Tls, c->tls_failure());
      return false;
    }
    std::string out;
    Connection::TlsStep step;
    {
      ec_lock_guard lock(&c->tls_lock);
      step = c->receive_tls(buf, n, &c->early_plain);
      c->take_wire(&out);
    }
    bool sent = true;
    if (!out.empty()) {
      ec_iovec piece = {out.data(), out.size()};
      sent = ec_socket_send_all(c->sock, &piece, 1).ok();
    }
    if (step == Connection::TlsStep::Failed || !sent) {
      refuse(c, Refusal::Tls, c->tls_failure());
      return false;
    }
    if (step == Connection::TlsStep::Opened) return true;
  }
}

ThreadsEngine::Read ThreadsEngine::recv_plain(Client* c, std::uint8_t* buf, std::size_t want,
                                              std::size_t* n) {
  *n = 0;
  if (!c->early_plain.empty()) {
    std::size_t k = c->early_plain.size() < want ? c->early_plain.size() : want;
    std::memcpy(buf, c->early_plain.data(), k);
    c->early_plain.erase(c->early_plain.begin(), c->early_plain.begin() + k);
    *n = k;
    return Read::Recv;
  }
  if (!c->tls()) return ec_socket_recv(c->sock, buf, want, n).ok() ? Read::Recv : Read::Error;
  for (;;) {
    std::size_t got = 0;
    if (!ec_socket_recv(c->sock, buf, want, &got).ok()) return Read::Error;
    if (got == 0) return Read::Recv;  // End of stream.
    std::string out;
    Connection::TlsStep step;
    {
      ec_lock_guard lock(&c->tls_lock);
      // The plaintext is never longer than the records it came in.
      step = c->receive_tls(buf, got, &c->early_plain);
      // Before admission the reader sends the session's answers; after, the
      // writer takes them with its next batch (seal_into).
      if (!c->writer_started) c->take_wire(&out);
    }
    if (!out.empty()) {
      ec_iovec piece = {out.data(), out.size()};
      if (!ec_socket_send_all(c->sock, &piece, 1).ok()) return Read::Error;
    }
    if (step == Connection::TlsStep::Failed) return Read::TlsFailed;
    if (c->early_plain.empty()) continue;  // A record not yet whole, or no data.
    std::memcpy(buf, c->early_plain.data(), c->early_plain.size());
    *n = c->early_plain.size();
    c->early_plain.clear();
    return Read::Recv;
  }
}

bool ThreadsEngine::send_control(Client* c) {
  if (!c->tls()) return send_bytes(c->sock, c->take_control());
  std::string out;
  {
    ec_lock_guard lock(&c->tls_lock);
    c->take_wire(&out);  // The control bytes, sealed.
  }
  ec_iovec piece = {out.data(), out.size()};
  return out.empty() || ec_socket_send_all(c->sock, &piece, 1).ok();
}

}  // namespace threads
}  // namespace echocast
