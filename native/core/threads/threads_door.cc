// threads_door.cc — who may connect to the threads engine
// (docs/contract.md S15; the rules are core/access.h and Connection's door):
// a TCP connection that waits (for its TLS handshake or its first frame),
// holding a client slot; the first frame, the authorize hook's answer on the
// connection's own thread, and admission (see threads_engine.h;
// docs/architecture.md says which file owns which rule).
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "threads_engine.h"

namespace echocast {
namespace threads {

void ThreadsEngine::refuse(Client* c, Refusal cause, const std::string& detail) {
  report_refusal(&refusals_, sink_, cause, c->websocket(), c->peer_address(), c->peer_port(),
                 detail);
}

bool ThreadsEngine::address_allowed(const Accepted& a, bool ws) {
  if (address_admitted(options_, &refusals_, sink_, a.peer, ws, a.address, a.port)) return true;
  ec_socket_close(a.sock);  // Nothing read, nothing sent.
  return false;
}

void ThreadsEngine::accept_waiting(const Accepted& a) {
  // TLS: the handshake's deadline (the door, if any, gets its own after
  // it); else the door's.
  const std::uint64_t timeout =
      options_.has_tls ? options_.handshake_timeout_ms : options_.auth_timeout_ms;
  Client* c = nullptr;
  bool full = false;
  std::uint64_t id = 0;
  {
    ec_lock_guard lock(&mutex_);
    if (stopping_) {
      ec_socket_close(a.sock);
      return;
    }
    // It holds a client slot while it waits (past max_clients: today's
    // server-full), and the handshake list is bounded.
    if (!roster_.has_room(clients_.size() + handshakes_.holding())) {
      roster_.refuse(&id);
      full = true;
    } else if (!handshakes_.full()) {
      c = new (std::nothrow)
          Client(options_.framing, static_cast<std::size_t>(options_.max_frame_bytes));
      if (c != nullptr) {
        c->start_tcp(&options_);
        if (options_.has_tls && !c->start_tls(tls_.get())) {
          delete c;
          c = nullptr;
        }
      }
    }
    if (c != nullptr) {
      enlist(c, a);
      std::uint64_t now = ec_now_ms();
      handshakes_.add(c, now, timeout);
      handshakes_.hold(c, now + timeout);
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

void ThreadsEngine::enroll_locked(Client* c, std::uint64_t id) {
  c->id = id;
  c->alive += 1;  // The writer.
  clients_[id] = c;
  roster_.joined(c->websocket());
  hub_.join(c);  // Under the same lock, as in admit().
}

bool ThreadsEngine::admit_waiting(Client* c) {
  std::uint64_t id = 0;
  bool admitted = false;
  {
    ec_lock_guard lock(&mutex_);
    if (stopping_) return false;
    handshakes_.remove(c);
    admitted = c->admit(&roster_, clients_.size() + handshakes_.holding(), &id);
    if (admitted) enroll_locked(c, id);
  }
  if (!admitted) {
    sink_->on_disconnect(id, reason_name(Reason::ServerFull));  // Tallied by the roster.
    return false;
  }
  sink_->on_connection(id, c->peer_address(), c->peer_port());
  return start_writer(c);
}

}  // namespace threads
}  // namespace echocast
