// poll_door.cc — who may connect (docs/contract.md S15) in the poll engine,
// on the loop thread: the address lists at accept, a TCP connection that
// waits (at the door, or first in its TLS handshake), the door (its first
// frame), the hook's question and its answer by ticket, and admission once
// the door opens (see poll_engine.h). The rules are
// core/access.h and Connection's door; docs/architecture.md says which file
// owns which rule.
#include <new>
#include <string>
#include <vector>

#include "poll_engine.h"

namespace echocast {
namespace poll {

bool PollEngine::address_allowed(const Accepted& a, bool ws) {
  if (address_admitted(options_, &refusals_, sink_, a.peer, ws, a.address, a.port)) return true;
  ec_socket_close(a.sock);  // Nothing read, nothing sent.
  return false;
}

void PollEngine::accept_waiting(const Accepted& a) {
  // It holds a client slot while it waits (beyond max_clients: today's
  // server-full refusal), and the handshake list is bounded.
  if (!roster_.has_room(clients_.size() + handshakes_.holding())) {
    std::uint64_t id = 0;
    roster_.refuse(&id);
    ec_socket_close(a.sock);
    sink_->on_disconnect(id, reason_name(Reason::ServerFull));
    return;
  }
  if (handshakes_.full()) {
    ec_socket_close(a.sock);
    report_refusal(&refusals_, sink_, Refusal::HandshakeLimit, false, a.address, a.port);
    return;
  }
  PollClient* c = new (std::nothrow)
      PollClient(options_.framing, static_cast<std::size_t>(options_.max_frame_bytes));
  if (c != nullptr) {
    c->start_tcp(&options_);
    // docs/contract.md S17: its TLS handshake first, then the door if any.
    if (options_.has_tls && !c->start_tls(tls_.get())) {
      delete c;
      c = nullptr;
    }
  }
  if (!watch_waiting(c, a)) return;
  std::uint64_t wait = options_.has_tls ? options_.handshake_timeout_ms : options_.auth_timeout_ms;
  std::uint64_t now = ec_now_ms();
  handshakes_.add(c, now, wait);
  handshakes_.hold(c, now + wait);
}

void PollEngine::handle_door(PollClient* c, const ec_poll_event& ev) {
  if (c->state() == Connection::State::Authorizing) {
    // Nothing is read while the hook decides; a peer gone meanwhile is
    // dropped (never admitted: no event).
    if (ev.events & (EC_POLL_HUP | EC_POLL_ERR)) drop_handshake(c);
    return;
  }
  if (!(ev.events & (EC_POLL_IN | EC_POLL_HUP | EC_POLL_ERR))) return;
  std::size_t n = 0;
  std::size_t want = options_.framing == Framing::Raw ? kRawRecvBytes : kRecvBytes;
  ec_error err = ec_socket_try_recv(c->sock, buf_.get(), want, &n);
  if (err.code == EC_EAGAIN) return;
  if (!err.ok() || n == 0) {
    drop_handshake(c);  // Gone before it was decided: no event.
    return;
  }
  const std::uint8_t* data = buf_.get();
  if (c->tls()) {  // docs/contract.md S17: the door reads plaintext.
    if (!decrypt(c, data, n) || plain_.empty()) return;
    data = plain_.data();
    n = plain_.size();
  }
  Refusal cause = Refusal::Token;
  Connection::Door d = c->first_frame(data, n, &cause);
  door_step(c, d, cause, std::string());
}

void PollEngine::door_step(PollClient* c, Connection::Door d, Refusal cause,
                           const std::string& detail) {
  switch (d) {
    case Connection::Door::NeedMore:
      return;
    case Connection::Door::Authorize:
      ask(c);
      return;
    case Connection::Door::Refuse:
      report_refusal(&refusals_, sink_, cause, c->websocket(), c->peer_address(), c->peer_port(),
                     detail);
      if (c->state() == Connection::State::Answering) answer(c);  // WebSocket: 403.
      else drop_handshake(c);  // TCP: closed having received nothing.
      return;
    case Connection::Door::Admit:
      if (c->websocket()) {
        std::vector<std::uint8_t> held = c->take_held();
        upgrade(c, held.data(), held.size());
      } else {
        admit_door(c);
      }
      return;
  }
}

void PollEngine::ask(PollClient* c) {
  c->ticket = ++next_ticket_;
  tickets_[c->ticket] = c;
  handshakes_.hold(c, ec_now_ms() + options_.auth_timeout_ms);
  // Reading stops until the answer (errors and hang-ups still come).
  if (c->interest != 0) {
    if (!ec_poller_modify(poller_, c->sock, 0, c).ok()) {
      drop_handshake(c);
      return;
    }
    c->interest = 0;
  }
  sink_->on_authorize(c->authorize_request());
}

void PollEngine::admit_door(PollClient* c) {
  handshakes_.remove(c);
  forget_ticket(c);
  std::uint64_t id = 0;
  if (!c->admit(&roster_, clients_.size() + handshakes_.holding(), &id)) {
    sink_->on_disconnect(id, reason_name(Reason::ServerFull));  // Tallied by the roster.
    drop_handshake(c);
    return;
  }
  // Exactly today's admission: the connection event, replay at the flush,
  // then what it sent after its first frame, in order.
  enroll(c, id, c->peer_address(), c->peer_port());
  update_interest(c);
  if (c->closing) return;
  std::vector<std::uint8_t> held = c->take_held();
  consume_first(c, held.data(), held.size());
}

void PollEngine::take_answer(const Command& cmd) {
  auto it = tickets_.find(cmd.id);
  if (it == tickets_.end()) return;  // Expired, gone, or never asked.
  PollClient* c = it->second;
  tickets_.erase(it);
  c->ticket = 0;
  if (c->closing) return;
  door_step(c, c->answer(cmd.on), Refusal::Hook, cmd.detail);
}

}  // namespace poll
}  // namespace echocast
