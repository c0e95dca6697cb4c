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
        enroll_locked(c, id);
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

}  // namespace threads
}  // namespace echocast
