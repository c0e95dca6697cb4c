// threads_tls.cc — a threads-engine client's TLS stage (docs/contract.md
// S17; the session is Connection's): the handshake on its reader, then the
// plaintext its reader reads (recv_plain), and the control bytes a reader
// sends before its writer exists, sealed when the connection has TLS (see
// threads_engine.h; docs/architecture.md says which file owns which rule).
#include <cstring>
#include <string>
#include <vector>

#include "threads_engine.h"

namespace echocast {
namespace threads {

namespace {

// Sends all of `data` on a client's socket (before its writer exists).
bool send_bytes(ec_socket_t s, const std::vector<std::uint8_t>& data) {
  ec_iovec piece = {data.data(), data.size()};
  return ec_socket_send_all(s, &piece, 1).ok();
}

}  // namespace

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
