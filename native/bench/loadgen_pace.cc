// loadgen_pace.cc — the load generator's frames and their schedule: writing
// frames, sending them, ticks, Poisson arrivals and the closed loop of rate 0
// (see loadgen.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "loadgen.h"
#include "loadgen_internal.h"

namespace echocast {
namespace bench {

namespace {

// Writes v in decimal at p; returns the end.
char* put_uint(char* p, std::uint64_t v) {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) *p++ = tmp[--n];
  return p;
}

}  // namespace

void LoadGen::generate(Client& c, std::uint32_t publisher, std::uint64_t count) {
  if (count == 0) return;
  if (c.out_head > 0) {
    c.out.erase(c.out.begin(), c.out.begin() + static_cast<std::ptrdiff_t>(c.out_head));
    c.out_head = 0;
  }
  const std::size_t size = options_.size;
  std::size_t at = c.out.size();
  const std::size_t first = at;
  c.out.resize(at + static_cast<std::size_t>(count) * size);
  std::uint64_t t = ec_now_micros() - epoch_;
  std::uint64_t& seq = seqs_[publisher];
  if (phase_ == Phase::Publishing) generated_ += count;
  for (std::uint64_t k = 0; k < count; ++k, at += size) {
    char* frame = c.out.data() + at;
    char* p = frame;
    *p++ = 'p';
    p = put_uint(p, publisher);
    *p++ = ':';
    p = put_uint(p, seq++);
    *p++ = ':';
    p = put_uint(p, t);
    *p++ = ':';
    char* last = frame + size - 1;
    if (p < last) std::memset(p, '.', static_cast<std::size_t>(last - p));
    *last = '\n';
  }
  if (c.ws) ws_encode(c, first, count);
}

bool LoadGen::flush(Client& c) {
  while (c.pending() > 0) {
    ec_iovec piece{c.out.data() + c.out_head, c.pending()};
    std::size_t sent = 0;
    ec_error err = ec_socket_try_send(c.sock, &piece, 1, &sent);
    if (err.code == EC_EAGAIN) break;
    if (!err.ok()) {
      close_client(c);
      return false;
    }
    c.out_head += sent;
    const std::size_t own = std::min(sent, c.preamble);  // The token's bytes: no frame.
    c.preamble -= own;
    c.written += sent - own;
    if (sent < piece.len) break;  // The socket is full: the next try would block.
  }
  if (c.pending() == 0) {
    c.out.clear();
    c.out_head = 0;
  }
  bool want_out = c.pending() > 0 || (options_.rate == 0 && phase_ == Phase::Publishing);
  set_interest(c, EC_POLL_IN | (want_out ? EC_POLL_OUT : 0u));
  return true;
}

void LoadGen::pace(std::uint64_t now) {
  const std::uint32_t pubs = options_.publishers;
  const std::size_t size = options_.size;
  if (options_.rate == 0) {
    // As fast as the server delivers them: keep kFillBytes offered per
    // socket while the slowest client lags less than kMaxLagBytes.
    std::uint64_t room = lag_room();
    for (std::uint32_t p = 0; p < pubs && room >= size; ++p) {
      Client& c = clients_[p];
      if (c.state != Client::Open || c.pending() >= kFillBytes) continue;
      std::uint64_t n = (kFillBytes - c.pending() + size - 1) / size;
      n = std::min<std::uint64_t>(n, room / size);
      room -= n * size;
      generate(c, p, n);
      flush(c);
    }
    return;
  }
  std::size_t cap = std::max(kOutCapBytes, 4 * size);
  if (options_.poisson) {
    for (std::uint32_t p = 0; p < pubs; ++p) {
      Client& c = clients_[p];
      if (c.state != Client::Open) continue;
      std::uint64_t n = 0;
      while (due_[p] <= now) {
        due_[p] += next_interval();
        ++n;
      }
      std::size_t pending = c.pending();
      std::uint64_t room = pending < cap ? (cap - pending) / size : 0;
      n = std::min(n, room);  // Blocked: those frames are not offered.
      if (n == 0) continue;
      generate(c, p, n);
      flush(c);
    }
    return;
  }
  if (now < last_tick_ + kTickUs) return;
  double elapsed = static_cast<double>(now - last_tick_) / 1e6;
  last_tick_ = now;
  double per = options_.rate / pubs * elapsed;
  for (std::uint32_t p = 0; p < pubs; ++p) {
    Client& c = clients_[p];
    if (c.state != Client::Open) continue;
    credit_[p] += per;
    if (credit_[p] < 1) continue;
    std::size_t pending = c.pending();
    std::uint64_t room = pending < cap ? (cap - pending) / size : 0;
    std::uint64_t n = std::min(static_cast<std::uint64_t>(credit_[p]), room);
    if (n == 0) continue;  // Blocked: the credit waits (a burst later).
    credit_[p] -= static_cast<double>(n);
    generate(c, p, n);
    flush(c);
  }
}

std::uint64_t LoadGen::next_interval() {
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  double u =
      static_cast<double>((rng_ * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;  // [0, 1)
  double mean_us = 1e6 * options_.publishers / options_.rate;
  return static_cast<std::uint64_t>(-std::log(1.0 - u) * mean_us) + 1;
}

std::uint64_t LoadGen::lag_room() {
  std::uint64_t offered = generated_ * options_.size;
  // slowest_ only grows, so a stale value errs on the safe side: look again
  // only when it leaves less than a refill's room.
  if (offered - std::min(offered, slowest_) + kFillBytes > kMaxLagBytes) {
    std::uint64_t least = std::numeric_limits<std::uint64_t>::max();
    for (const Client& c : clients_)  // Throttled readers are paced by the server, not here.
      if (c.state == Client::Open && !c.throttled)
        least = std::min(least, c.bytes + own_bytes(c) - c.baseline);
    slowest_ = least == std::numeric_limits<std::uint64_t>::max() ? offered : least;
  }
  std::uint64_t lag = offered - std::min(offered, slowest_);
  return lag < kMaxLagBytes ? kMaxLagBytes - lag : 0;
}

}  // namespace bench
}  // namespace echocast
