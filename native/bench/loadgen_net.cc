// loadgen_net.cc — the load generator's sockets: connecting in batches,
// reading, and the auditors' check of order and latency (see loadgen.h).
#include <algorithm>
#include <cstring>

#include "../platform/bench.h"
#include "loadgen.h"
#include "loadgen_internal.h"

namespace echocast {
namespace bench {

namespace {

// Reads decimal digits up to ':' from [*p, end); false when malformed.
bool get_uint(const char** p, const char* end, std::uint64_t* out) {
  const char* s = *p;
  std::uint64_t v = 0;
  const char* start = s;
  while (s < end && *s >= '0' && *s <= '9') {
    v = v * 10 + static_cast<std::uint64_t>(*s - '0');
    ++s;
  }
  if (s == start || s == end || *s != ':' || s - start > 19) return false;
  *out = v;
  *p = s + 1;
  return true;
}

}  // namespace

void LoadGen::set_interest(Client& c, unsigned events) {
  if (c.interest == events || c.sock == EC_INVALID_SOCKET) return;
  ec_poller_modify(poller_, c.sock, events, &c);
  c.interest = events;
}

void LoadGen::close_client(Client& c) {
  if (c.state == Client::Idle || c.state == Client::Closed) return;
  if (c.state == Client::Connecting || c.state == Client::Upgrading) in_flight_ -= 1;
  if (c.state == Client::Open) open_ -= 1;
  if (c.interest != 0) ec_poller_remove(poller_, c.sock);
  ec_socket_close(c.sock);
  c.sock = EC_INVALID_SOCKET;
  c.interest = 0;
  c.lowat = false;
  c.state = Client::Closed;
  // Frames it had not sent never will be; keep only whole frames counted.
  c.out.clear();
  c.out_head = 0;
  c.preamble = 0;
}

void LoadGen::close_all() {
  for (Client& c : clients_) close_client(c);
}

bool LoadGen::begin_connect(Client& c, LoadGenFailure* failure) {
  bool pending = false;
  const char* syscall = "connect";
  ec_error err =
      ec_connect_start(options_.host.c_str(), options_.port, &c.sock, &pending, &syscall);
  if (!err.ok()) {
    c.sock = EC_INVALID_SOCKET;
    fail_with(failure, err, syscall, endpoint(options_));
    return false;
  }
  unsigned events = pending ? EC_POLL_OUT : EC_POLL_IN;
  err = ec_poller_add(poller_, c.sock, events, &c);
  if (!err.ok()) {
    ec_socket_close(c.sock);
    c.sock = EC_INVALID_SOCKET;
    fail_with(failure, err, "poller", endpoint(options_));
    return false;
  }
  c.interest = events;
  if (!pending && options_.websocket) {
    c.state = Client::Connecting;  // Connected: in flight until upgraded.
    in_flight_ += 1;
    return ws_start(c, failure);
  }
  if (pending) {
    c.state = Client::Connecting;
    in_flight_ += 1;
    return true;
  }
  c.state = Client::Open;
  open_ += 1;
  return send_token(c, failure);
}

bool LoadGen::on_connected(Client& c, LoadGenFailure* failure) {
  ec_error err = ec_connect_result(c.sock);
  if (err.code == EC_EAGAIN) return true;  // Not yet.
  if (!err.ok()) {
    close_client(c);
    fail_with(failure, err, "connect", endpoint(options_));
    return false;
  }
  if (options_.websocket) return ws_start(c, failure);  // In flight until upgraded.
  c.state = Client::Open;
  in_flight_ -= 1;
  open_ += 1;
  set_interest(c, EC_POLL_IN);
  return send_token(c, failure);
}

bool LoadGen::send_token(Client& c, LoadGenFailure* failure) {
  if (options_.token.empty()) return true;
  // docs/contract.md S15: the first line is the token. Queued first and sent
  // like a frame (what the kernel does not take now goes out on the next
  // writable event, still ahead of everything), but counted as none.
  c.out.assign(options_.token.begin(), options_.token.end());
  c.out.push_back('\n');
  c.out_head = 0;
  c.preamble = c.out.size();
  if (flush(c)) return true;
  failure->code = "ECONNRESET";
  failure->message =
      "the server closed a connection before it took the token (" + endpoint(options_) + ")";
  return false;
}

bool LoadGen::step_connecting(std::uint64_t now, LoadGenFailure* failure) {
  if (in_flight_ > 0) {
    if (now < deadline_) return true;
    fail_with(failure, ec_error{EC_ETIMEDOUT, 0}, "connect", endpoint(options_));
    return false;
  }
  const std::uint32_t n = options_.clients;
  if (next_connect_ >= n) return true;
  // The next batch: at most kConnectBatch handshakes at once, so the
  // server's accept queue is never overrun.
  std::uint32_t end = std::min(n, next_connect_ + kConnectBatch);
  deadline_ = now + kConnectTimeoutUs;
  for (; next_connect_ < end; ++next_connect_)
    if (!begin_connect(clients_[next_connect_], failure)) return false;
  return true;
}

std::size_t LoadGen::throttle_allowance(Client& c, std::uint64_t now) {
  const double rate = options_.throttle_bytes_per_sec;
  const double burst =
      std::max(kThrottleMinBurst, rate * static_cast<double>(kThrottleBurstUs) / 1e6);
  if (c.credit_at == 0) c.credit = burst;  // A full bucket to begin with.
  else if (now > c.credit_at)
    c.credit = std::min(burst, c.credit + rate * static_cast<double>(now - c.credit_at) / 1e6);
  c.credit_at = now;
  if (c.credit >= 1) return static_cast<std::size_t>(c.credit);
  // Out of credit: no reads (the server's backlog for it grows, as for a
  // slow link) until a read's worth is back.
  c.waiting = true;
  c.resume_at =
      now + static_cast<std::uint64_t>((std::min(burst, 16384.0) - c.credit) * 1e6 / rate) + 1;
  // Throttled readers never publish: reading is their only interest, so they
  // leave the poller while they wait.
  if (c.interest != 0) ec_poller_remove(poller_, c.sock);
  c.interest = 0;
  return 0;
}

std::uint64_t LoadGen::resume_throttled(std::uint64_t now, std::uint64_t limit) {
  std::uint64_t next = limit;
  for (std::uint32_t t = 0; t < options_.throttled_clients; ++t) {
    Client& c = clients_[options_.publishers + t];
    if (!c.waiting || c.state != Client::Open) continue;
    if (now >= c.resume_at || phase_ == Phase::Draining) {
      c.waiting = false;
      if (ec_poller_add(poller_, c.sock, EC_POLL_IN, &c).ok()) c.interest = EC_POLL_IN;
      else close_client(c);
    } else {
      next = std::min(next, c.resume_at);
    }
  }
  return next;
}

bool LoadGen::read_client(Client& c, std::uint64_t now) {
  std::size_t room = recv_buf_.size();
  // After the window, throttled readers read at full speed: what the kernel
  // holds for one the server cut would otherwise take longer than the drain
  // to read up to the end of the stream, and the cut to be seen.
  if (c.throttled && phase_ != Phase::Draining) {
    if (c.waiting) return true;
    room = std::min(room, throttle_allowance(c, now));
    if (room == 0) return true;
  }
  std::size_t got = 0;
  ec_error err = ec_socket_try_recv(c.sock, recv_buf_.data(), room, &got);
  if (err.code == EC_EAGAIN) return true;
  if (!err.ok() || got == 0) {
    close_client(c);
    return false;
  }
  // A throttled reader spends what it read on the wire, WebSocket headers
  // included, before the WebSocket hook decodes it (the link is what is slow).
  if (c.throttled) c.credit -= static_cast<double>(got);
  if (c.ws)
    return ws_received(c, reinterpret_cast<const std::uint8_t*>(recv_buf_.data()), got, now);
  c.bytes += got;
  bytes_ += got;
  if (c.auditor != nullptr) audit(*c.auditor, recv_buf_.data(), got, now - epoch_);
  return true;
}

void LoadGen::set_lowat(bool on) {
  for (Client& c : clients_) {
    if (c.state != Client::Open || c.auditor != nullptr || c.throttled || c.lowat == on) continue;
    bool ok = ec_socket_set_rcvlowat(c.sock, on ? options_.rcvlowat : 1);
    c.lowat = on && ok;
  }
}

void LoadGen::sweep(std::uint64_t now) {
  for (Client& c : clients_) {
    if (!c.lowat) continue;
    for (;;) {
      std::uint64_t before = c.bytes;
      if (!read_client(c, now) || c.bytes - before < recv_buf_.size()) break;
    }
  }
}

void LoadGen::audit(Auditor& a, const char* data, std::size_t len, std::uint64_t now_rel) {
  const char* p = data;
  const char* end = data + len;
  if (!a.carry.empty()) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', len));
    if (nl == nullptr) {
      if (a.carry.size() + len > 2 * static_cast<std::size_t>(kMaxFrameBytes)) {
        a.carry.clear();  // Not a frame of ours: bounded, and counted.
        a.violations += 1;
      } else {
        a.carry.insert(a.carry.end(), p, end);
      }
      return;
    }
    a.carry.insert(a.carry.end(), p, nl);
    audit_line(a, a.carry.data(), a.carry.size(), now_rel);
    a.carry.clear();
    p = nl + 1;
  }
  while (p < end) {
    const char* nl =
        static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    if (nl == nullptr) {
      a.carry.assign(p, end);
      break;
    }
    audit_line(a, p, static_cast<std::size_t>(nl - p), now_rel);
    p = nl + 1;
  }
}

void LoadGen::audit_line(Auditor& a, const char* line, std::size_t len, std::uint64_t now_rel) {
  const char* p = line;
  const char* end = line + len;
  std::uint64_t pub = 0, seq = 0, sent = 0;
  if (len < 1 || *p != 'p') {
    a.violations += 1;
    return;
  }
  ++p;
  if (!get_uint(&p, end, &pub) || !get_uint(&p, end, &seq) || !get_uint(&p, end, &sent) ||
      pub >= a.last.size()) {
    a.violations += 1;
    return;
  }
  std::int64_t s = static_cast<std::int64_t>(seq);
  // A client joins mid-stream: its first frame of a publisher sets the baseline.
  std::int64_t prev = a.last[pub] < 0 ? s - 1 : a.last[pub];
  if (s != prev + 1) a.violations += 1;
  a.last[pub] = s;
  a.hash =
      a.hash * 31u + static_cast<std::uint32_t>(pub) * 1000003u + static_cast<std::uint32_t>(seq);
  a.frames += 1;
  latency_.record(now_rel > sent ? now_rel - sent : 0);
}

}  // namespace bench
}  // namespace echocast
