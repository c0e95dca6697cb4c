// loadgen.cc — see loadgen.h.
#include "loadgen.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace echocast {
namespace bench {

namespace {

constexpr std::uint32_t kConnectBatch = 50;              // Connects in flight at most.
constexpr std::uint64_t kConnectTimeoutUs = 10000000;    // Per batch.
constexpr std::uint64_t kAdmitIntervalUs = 20000;        // Publisher 0's probe frames.
constexpr std::uint64_t kAdmitTimeoutUs = 15000000;
constexpr std::uint64_t kSettleUs = 50000;               // After the last admission.
constexpr std::uint64_t kDrainTimeoutUs = 10000000;
constexpr std::uint64_t kTickUs = 1000;                  // Pacing tick (rate > 0).
constexpr std::size_t kRecvBytes = 64 * 1024;            // One read.
constexpr std::size_t kFillBytes = 64 * 1024;            // Rate 0: refill below this.
// Rate 0: bytes offered but not yet received by the slowest client, at most.
// Without this closed loop, "as fast as the server takes them" outruns the
// fan-out, every backlog grows to the server's limit and clients are cut.
constexpr std::uint64_t kMaxLagBytes = 512 * 1024;
constexpr std::size_t kOutCapBytes = 256 * 1024;         // Pending bytes per publisher.
constexpr std::size_t kMaxEvents = 256;

// Histogram layout: exact below 2048; then, per power of two, 1024 buckets.
constexpr std::uint64_t kExact = 2048;
constexpr std::uint64_t kMaxValue = (std::uint64_t(1) << 42) - 1;  // ~51 days in µs.
constexpr std::size_t kBuckets = 33 * 1024;

int msb(std::uint64_t v) {
  int r = 0;
  if (v >> 32) { v >>= 32; r += 32; }
  if (v >> 16) { v >>= 16; r += 16; }
  if (v >> 8) { v >>= 8; r += 8; }
  if (v >> 4) { v >>= 4; r += 4; }
  if (v >> 2) { v >>= 2; r += 2; }
  if (v >> 1) r += 1;
  return r;
}

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

std::string endpoint(const LoadGenOptions& o) {
  return o.host + ":" + std::to_string(o.port);
}

void fail_with(LoadGenFailure* f, const ec_error& err, const char* syscall,
               const std::string& what) {
  f->code = ec_err_name(err.code);
  f->syscall = syscall;
  // Node's wording: "connect ECONNREFUSED 127.0.0.1:3000".
  f->message = std::string(syscall ? syscall : "loadgen") + " " + f->code;
  if (what.empty()) f->message += ": " + ec_error_message(err);
  else f->message += " " + what;
}

}  // namespace

std::string validate_options(const LoadGenOptions& o) {
  if (o.port < 1 || o.port > 65535) return "port must be from 1 to 65535";
  if (o.host.empty()) return "host must not be empty";
  if (o.clients < 1 || o.clients > kMaxClients)
    return "clients must be from 1 to " + std::to_string(kMaxClients);
  if (o.publishers < 1 || o.publishers > o.clients || o.publishers > kMaxPublishers)
    return "publishers must be from 1 to the number of clients";
  if (o.size < kMinFrameBytes || o.size > kMaxFrameBytes)
    return "size must be from " + std::to_string(kMinFrameBytes) + " to " +
           std::to_string(kMaxFrameBytes) + " bytes";
  if (!(o.rate >= 0) || o.rate > 1e9) return "rate must be from 0 to 1e9 frames/s";
  if (o.auditors > o.clients) return "auditors must be at most the number of clients";
  if (o.rcvlowat > 16u * 1024u * 1024u) return "rcvlowat must be at most 16 MiB";
  return std::string();
}

// ---------------------------------------------------------------------------
// LatencyHistogram.
// ---------------------------------------------------------------------------

LatencyHistogram::LatencyHistogram() : counts_(kBuckets, 0) {}

std::size_t LatencyHistogram::index_of(std::uint64_t v) {
  if (v > kMaxValue) v = kMaxValue;
  if (v < kExact) return static_cast<std::size_t>(v);
  int e = msb(v) - 10;
  return static_cast<std::size_t>(e) * 1024 + static_cast<std::size_t>(v >> e);
}

std::uint64_t LatencyHistogram::value_at(std::size_t i) {
  if (i < kExact) return i;
  std::size_t e = i / 1024 - 1;
  return static_cast<std::uint64_t>(i - e * 1024) << e;
}

void LatencyHistogram::record(std::uint64_t v) {
  counts_[index_of(v)] += 1;
  total_ += 1;
  if (v > max_) max_ = v;
}

void LatencyHistogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = 0;
  max_ = 0;
}

std::uint64_t LatencyHistogram::percentile(double p) const {
  if (total_ == 0) return 0;
  double want = p / 100.0 * static_cast<double>(total_);
  std::uint64_t rank = static_cast<std::uint64_t>(want);
  if (static_cast<double>(rank) < want) rank += 1;
  if (rank < 1) rank = 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(value_at(i), max_);
  }
  return max_;
}

// ---------------------------------------------------------------------------
// LoadGen.
// ---------------------------------------------------------------------------

struct LoadGen::Auditor {
  std::vector<char> carry;          // A frame split across reads.
  std::vector<std::int64_t> last;   // Last seq per publisher; -1: none yet.
  std::uint32_t hash = 0;           // Rolling hash of the order seen.
  std::uint64_t frames = 0;
  std::uint64_t violations = 0;
};

struct LoadGen::Client {
  enum State : std::uint8_t { Idle, Connecting, Open, Closed };
  ec_socket_t sock = EC_INVALID_SOCKET;
  State state = Idle;
  unsigned interest = 0;        // 0: not registered.
  bool lowat = false;           // SO_RCVLOWAT raised.
  std::uint64_t bytes = 0;
  std::uint64_t baseline = 0;
  Auditor* auditor = nullptr;
  // Publishers: frames not yet taken by the kernel, and what it took.
  std::vector<char> out;
  std::size_t out_head = 0;
  std::uint64_t written = 0;
  std::size_t pending() const { return out.size() - out_head; }
};

LoadGen::LoadGen(const LoadGenOptions& options, LoadGenListener* listener)
    : options_(options), listener_(listener) {
  ec_mutex_init(&mutex_);
  ec_cond_init(&cond_);
}

LoadGen::~LoadGen() {
  abort();
  ec_cond_destroy(&cond_);
  ec_mutex_destroy(&mutex_);
}

bool LoadGen::start(LoadGenFailure* failure) {
  if (started_) {
    failure->code = "ERR_INVALID_STATE";
    failure->message = "the load generator was started already";
    return false;
  }
  std::string bad = validate_options(options_);
  if (!bad.empty()) {
    failure->code = "ERR_INVALID_ARG_VALUE";
    failure->message = bad;
    return false;
  }
  ec_error err = ec_net_acquire();
  if (!err.ok()) {
    fail_with(failure, err, "WSAStartup", "");
    return false;
  }
  err = ec_poller_create(&poller_);
  if (!err.ok()) {
    ec_net_release();
    fail_with(failure, err, "poller", "");
    return false;
  }
  const std::uint32_t n = options_.clients;
  clients_.resize(n);
  auditors_.resize(options_.auditors);
  for (std::uint32_t a = 0; a < options_.auditors; ++a) {
    auditors_[a].last.assign(options_.publishers, -1);
    clients_[n - options_.auditors + a].auditor = &auditors_[a];
  }
  seqs_.assign(options_.publishers, 0);
  credit_.assign(options_.publishers, 0.0);
  due_.assign(options_.publishers, 0);
  sub_ms_ = options_.poisson && ec_poller_sub_ms(poller_);
  recv_buf_.resize(kRecvBytes);
  epoch_ = ec_now_micros();
  err = ec_thread_create(&thread_, &LoadGen::thread_main, this, EC_THREAD_STACK_BYTES);
  if (!err.ok()) {
    ec_poller_destroy(poller_);
    poller_ = nullptr;
    ec_net_release();
    fail_with(failure, err, "thread_create", "");
    return false;
  }
  net_ = true;
  started_ = true;
  return true;
}

void LoadGen::wake() {
  if (started_ && !joined_) ec_poller_wake(poller_);
}

void LoadGen::begin() {
  begin_req_.store(true, std::memory_order_release);
  wake();
}

void LoadGen::finish() {
  finish_req_.store(true, std::memory_order_release);
  wake();
}

void LoadGen::abort() {
  if (!running()) return;
  abort_req_.store(true, std::memory_order_release);
  wake();
  join();
}

void LoadGen::join() {
  if (!started_ || joined_) return;
  ec_thread_join(&thread_);
  joined_ = true;
  ec_poller_destroy(poller_);
  poller_ = nullptr;
  if (net_) ec_net_release();
  net_ = false;
}

LoadGenMark LoadGen::mark() {
  if (!started_) return LoadGenMark();
  ec_lock_guard lock(&mutex_);
  if (exited_ || joined_) return mark_;
  std::uint64_t want = ++mark_asked_;
  mark_req_.store(true, std::memory_order_release);
  ec_poller_wake(poller_);
  std::uint64_t t0 = ec_now_ms();
  while (mark_answered_ < want && !exited_) {
    std::uint64_t waited = ec_now_ms() - t0;
    if (waited >= 2000) break;  // Backstop: the loop answers within a turn.
    ec_cond_timed_wait(&cond_, &mutex_, 2000 - waited);
  }
  return mark_;
}

void LoadGen::thread_main(void* arg) { static_cast<LoadGen*>(arg)->run(); }

LoadGenMark LoadGen::snapshot() const {
  LoadGenMark m;
  m.bytes = bytes_;
  m.cpu_micros = ec_thread_cpu_micros();
  std::uint64_t written = frames_written();
  m.frames_sent = phase_ >= Phase::Ready && written >= frames_before_ ? written - frames_before_ : 0;
  return m;
}

void LoadGen::publish_mark() {
  LoadGenMark m = snapshot();
  ec_lock_guard lock(&mutex_);
  mark_ = m;
  mark_answered_ = mark_asked_;
  ec_cond_broadcast(&cond_);
}

std::uint64_t LoadGen::frames_written() const {
  std::uint64_t frames = 0;
  for (std::uint32_t p = 0; p < options_.publishers; ++p)
    frames += clients_[p].written / options_.size;
  return frames;
}

void LoadGen::set_interest(Client& c, unsigned events) {
  if (c.interest == events || c.sock == EC_INVALID_SOCKET) return;
  ec_poller_modify(poller_, c.sock, events, &c);
  c.interest = events;
}

void LoadGen::close_client(Client& c) {
  if (c.state == Client::Idle || c.state == Client::Closed) return;
  if (c.state == Client::Connecting) in_flight_ -= 1;
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
}

void LoadGen::close_all() {
  for (Client& c : clients_) close_client(c);
}

bool LoadGen::begin_connect(Client& c, LoadGenFailure* failure) {
  bool pending = false;
  const char* syscall = "connect";
  ec_error err = ec_connect_start(options_.host.c_str(), options_.port, &c.sock, &pending, &syscall);
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
  if (pending) {
    c.state = Client::Connecting;
    in_flight_ += 1;
  } else {
    c.state = Client::Open;
    open_ += 1;
  }
  return true;
}

bool LoadGen::on_connected(Client& c, LoadGenFailure* failure) {
  ec_error err = ec_connect_result(c.sock);
  if (err.code == EC_EAGAIN) return true;  // Not yet.
  if (!err.ok()) {
    close_client(c);
    fail_with(failure, err, "connect", endpoint(options_));
    return false;
  }
  c.state = Client::Open;
  in_flight_ -= 1;
  open_ += 1;
  set_interest(c, EC_POLL_IN);
  return true;
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

bool LoadGen::read_client(Client& c, std::uint64_t now) {
  std::size_t got = 0;
  ec_error err = ec_socket_try_recv(c.sock, recv_buf_.data(), recv_buf_.size(), &got);
  if (err.code == EC_EAGAIN) return true;
  if (!err.ok() || got == 0) {
    close_client(c);
    return false;
  }
  c.bytes += got;
  bytes_ += got;
  if (c.auditor != nullptr) audit(*c.auditor, recv_buf_.data(), got, now - epoch_);
  return true;
}

void LoadGen::set_lowat(bool on) {
  for (Client& c : clients_) {
    if (c.state != Client::Open || c.auditor != nullptr || c.lowat == on) continue;
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
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
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
  a.hash = a.hash * 31u + static_cast<std::uint32_t>(pub) * 1000003u + static_cast<std::uint32_t>(seq);
  a.frames += 1;
  latency_.record(now_rel > sent ? now_rel - sent : 0);
}

void LoadGen::generate(Client& c, std::uint32_t publisher, std::uint64_t count) {
  if (count == 0) return;
  if (c.out_head > 0) {
    c.out.erase(c.out.begin(), c.out.begin() + static_cast<std::ptrdiff_t>(c.out_head));
    c.out_head = 0;
  }
  const std::size_t size = options_.size;
  std::size_t at = c.out.size();
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
    c.written += sent;
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
  double u = static_cast<double>((rng_ * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;  // [0, 1)
  double mean_us = 1e6 * options_.publishers / options_.rate;
  return static_cast<std::uint64_t>(-std::log(1.0 - u) * mean_us) + 1;
}

std::uint64_t LoadGen::lag_room() {
  std::uint64_t offered = generated_ * options_.size;
  // slowest_ only grows, so a stale value errs on the safe side: look again
  // only when it leaves less than a refill's room.
  if (offered - std::min(offered, slowest_) + kFillBytes > kMaxLagBytes) {
    std::uint64_t least = std::numeric_limits<std::uint64_t>::max();
    for (const Client& c : clients_)
      if (c.state == Client::Open) least = std::min(least, c.bytes - c.baseline);
    slowest_ = least == std::numeric_limits<std::uint64_t>::max() ? offered : least;
  }
  std::uint64_t lag = offered - std::min(offered, slowest_);
  return lag < kMaxLagBytes ? kMaxLagBytes - lag : 0;
}

bool LoadGen::drained() const {
  for (std::uint32_t p = 0; p < options_.publishers; ++p)
    if (clients_[p].state == Client::Open && clients_[p].pending() > 0) return false;
  std::uint64_t owed = (frames_written() - frames_before_) * options_.size;
  for (const Client& c : clients_)
    if (c.state == Client::Open && c.bytes < c.baseline + owed) return false;
  return true;
}

LoadGenResult LoadGen::result() const {
  LoadGenResult r;
  std::uint64_t written = frames_written();
  r.frames_sent = written >= frames_before_ ? written - frames_before_ : 0;
  std::uint64_t owed = r.frames_sent * options_.size;
  std::uint64_t missing = 0;
  for (const Client& c : clients_) {
    std::uint64_t want = c.baseline + owed;
    if (c.bytes < want) missing += want - c.bytes;
  }
  r.lost = (missing + options_.size / 2) / options_.size;
  for (const Auditor& a : auditors_) r.order_violations += a.violations;
  // Two complete auditors (the same number of frames) must have seen one order.
  for (const Auditor& a : auditors_) {
    if (a.frames == auditors_[0].frames && a.hash != auditors_[0].hash) {
      r.order_violations += 1;
      break;
    }
  }
  r.latency_count = latency_.count();
  r.p50 = latency_.percentile(50);
  r.p99 = latency_.percentile(99);
  r.max = latency_.max();
  r.cpu_micros = ec_thread_cpu_micros();
  r.bytes = bytes_;
  return r;
}

void LoadGen::run() {
  enum class End { Aborted, PrepareFailed, Finished } how = End::Aborted;
  LoadGenFailure failure;
  ec_poll_event events[kMaxEvents];
  const std::uint32_t n = options_.clients;
  std::uint32_t admitted = 0;  // Clients that have received something.
  auto preparing = [this] { return phase_ < Phase::Ready; };

  for (;;) {
    if (abort_req_.load(std::memory_order_acquire)) break;
    std::uint64_t now = ec_now_micros();
    if (mark_req_.exchange(false, std::memory_order_acq_rel)) {
      sweep(now);  // Bytes held back by SO_RCVLOWAT count too.
      publish_mark();
    }

    // Commands.
    if (finish_req_.load(std::memory_order_acquire)) {
      if (preparing()) {
        failure.code = "ECANCELED";
        failure.message = "finish() was called before prepare completed";
        how = End::PrepareFailed;
        break;
      }
      if (phase_ != Phase::Draining) {
        phase_ = Phase::Draining;
        deadline_ = now + kDrainTimeoutUs;
        set_lowat(false);
        sweep(now);
        for (std::uint32_t p = 0; p < options_.publishers; ++p)
          if (clients_[p].state == Client::Open) flush(clients_[p]);
      }
    } else if (phase_ == Phase::Ready && begin_req_.load(std::memory_order_acquire)) {
      phase_ = Phase::Publishing;
      last_tick_ = now;
      if (options_.poisson && options_.rate > 0)
        for (std::uint32_t p = 0; p < options_.publishers; ++p) due_[p] = now + next_interval();
      if (options_.rcvlowat > 1) set_lowat(true);
    }

    // The phase's work.
    bool failed = false;
    switch (phase_) {
      case Phase::Connecting:
        if (!step_connecting(now, &failure)) {
          failed = true;
        } else if (in_flight_ == 0 && next_connect_ >= n) {
          phase_ = Phase::Admitting;
          deadline_ = now + kAdmitTimeoutUs;
          next_action_ = now;
        }
        break;
      case Phase::Admitting:
        if (admitted == n) {
          phase_ = Phase::Settling;
          next_action_ = now + kSettleUs;
        } else if (now >= deadline_) {
          failure.code = "ETIMEDOUT";
          failure.message = "clients were not all admitted within 15 s (" +
                            std::to_string(admitted) + " of " + std::to_string(n) + ")";
          failed = true;
        } else if (now >= next_action_) {
          generate(clients_[0], 0, 1);
          flush(clients_[0]);
          next_action_ = now + kAdmitIntervalUs;
        }
        break;
      case Phase::Settling:
        if (now >= next_action_) {
          for (Client& c : clients_) c.baseline = c.bytes;
          frames_before_ = frames_written();
          latency_.reset();  // Only the load counts, not the admission probes.
          phase_ = Phase::Ready;
          listener_->on_prepared(nullptr, false);
        }
        break;
      case Phase::Ready:
        break;
      case Phase::Publishing:
        pace(now);
        break;
      case Phase::Draining:
        if (drained() || now >= deadline_) how = End::Finished;
        break;
    }
    if (failed) {
      how = End::PrepareFailed;
      break;
    }
    if (how == End::Finished) break;

    // How long to sleep.
    std::uint64_t wake_at = now + 100000;
    switch (phase_) {
      case Phase::Connecting:
        wake_at = std::min(wake_at, std::max(deadline_, now));
        break;
      case Phase::Admitting:
      case Phase::Settling:
        wake_at = std::max(next_action_, now);
        break;
      case Phase::Publishing:
        if (options_.rate > 0 && options_.poisson) {
          for (std::uint32_t p = 0; p < options_.publishers; ++p)
            if (clients_[p].state == Client::Open) wake_at = std::min(wake_at, due_[p]);
        } else if (options_.rate > 0) {
          wake_at = last_tick_ + kTickUs;
        }
        break;
      case Phase::Draining:
        wake_at = now + 10000;
        break;
      case Phase::Ready:
        break;
    }
    now = ec_now_micros();
    std::size_t count = 0;
    bool woken = false;
    ec_error err;
    if (sub_ms_) {  // Poisson intervals are tens of µs: sleep to the µs.
      err = ec_poller_wait_us(poller_, events, kMaxEvents,
                              wake_at > now ? static_cast<std::int64_t>(wake_at - now) : 0,
                              &count, &woken);
    } else {
      int timeout = 0;
      if (wake_at > now) timeout = static_cast<int>((wake_at - now + 999) / 1000);
      err = ec_poller_wait(poller_, events, kMaxEvents, timeout, &count, &woken);
    }
    if (!err.ok()) {
      if (preparing()) {
        fail_with(&failure, err, "poll", "");
        how = End::PrepareFailed;
      } else {
        how = End::Finished;  // Nothing left to wait with: report what there is.
      }
      break;
    }
    now = ec_now_micros();
    for (std::size_t i = 0; i < count && !failed; ++i) {
      Client& c = *static_cast<Client*>(events[i].data);
      unsigned ev = events[i].events;
      if (c.state == Client::Connecting) {
        if (ev & (EC_POLL_OUT | EC_POLL_ERR | EC_POLL_HUP)) failed = !on_connected(c, &failure);
        continue;
      }
      if (c.state != Client::Open) continue;
      if (ev & (EC_POLL_IN | EC_POLL_ERR | EC_POLL_HUP)) {
        std::uint64_t before = c.bytes;
        bool alive = read_client(c, now);
        if (alive && before == c.bytes && !(ev & EC_POLL_IN)) {
          close_client(c);  // An error or hang-up with nothing to read.
          alive = false;
        }
        if (before == 0 && c.bytes > 0) admitted += 1;
        if (!alive) {
          if (preparing()) {
            failure.code = "ECONNRESET";
            failure.message = "the server closed a connection while the load generator was preparing (" +
                              endpoint(options_) + ")";
            failed = true;
          }
          continue;
        }
      }
      if ((ev & EC_POLL_OUT) && c.pending() > 0) flush(c);
    }
    if (failed) {
      how = End::PrepareFailed;
      break;
    }
  }

  LoadGenResult r;
  if (how == End::Finished) r = result();
  close_all();
  {
    ec_lock_guard lock(&mutex_);
    mark_ = snapshot();
    mark_answered_ = mark_asked_;
    exited_ = true;
    ec_cond_broadcast(&cond_);
  }
  if (how == End::PrepareFailed) listener_->on_prepared(&failure, true);
  if (how == End::Finished) listener_->on_finished(r);
}

}  // namespace bench
}  // namespace echocast
