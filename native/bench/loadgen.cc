// loadgen.cc — see loadgen.h: the generator's life (start, commands, mark,
// result) and its I/O thread's main loop. Connections and reads are in
// loadgen_net.cc, frames and pacing in loadgen_pace.cc.
#include "loadgen.h"

#include <algorithm>
#include <string>

#include "../core/error_codes.h"
#include "loadgen_internal.h"

#include "../platform/bench.h"

namespace echocast {
namespace bench {

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
  if (o.throttled_clients > 0) {
    if (static_cast<std::uint64_t>(o.publishers) + o.throttled_clients + o.auditors > o.clients)
      return "throttled clients must be neither publishers nor auditors";
    if (!(o.throttle_bytes_per_sec >= 1) || o.throttle_bytes_per_sec > 1e12)
      return "throttleBytesPerSecond must be from 1 to 1e12";
  }
  if (o.websocket) {
    if (o.rcvlowat > 1) return "rcvlowat does not apply to WebSocket clients";
    if (o.ws_path.empty() || o.ws_path[0] != '/' || o.ws_path.size() > 1024 ||
        o.ws_path.find_first_of(" \t\r\n") != std::string::npos)
      return "ws_path must start with '/' and hold no space or line break";
  }
  // It travels as a line (TCP) or in a header (WebSocket).
  if (o.token.size() > 4096 || o.token.find_first_of("\r\n") != std::string::npos)
    return "token must be at most 4096 bytes and hold no line break";
  return std::string();
}

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
    failure->code = kErrBadState;
    failure->message = "the load generator was started already";
    return false;
  }
  std::string bad = validate_options(options_);
  if (!bad.empty()) {
    failure->code = kErrInvalidOption;
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
  for (std::uint32_t t = 0; t < options_.throttled_clients; ++t)
    clients_[options_.publishers + t].throttled = true;
  seqs_.assign(options_.publishers, 0);
  credit_.assign(options_.publishers, 0.0);
  due_.assign(options_.publishers, 0);
  sub_ms_ = options_.poisson && ec_poller_sub_ms(poller_);
  recv_buf_.resize(kRecvBytes);
  wire_frame_ = options_.websocket ? ws_message_bytes(options_.size) : options_.size;
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
  for (std::uint32_t t = 0; t < options_.throttled_clients; ++t)
    m.throttled_bytes += clients_[options_.publishers + t].bytes;
  m.cpu_micros = ec_thread_cpu_micros();
  std::uint64_t written = frames_written();
  m.frames_sent =
      phase_ >= Phase::Ready && written >= frames_before_ ? written - frames_before_ : 0;
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
    frames += clients_[p].written / wire_frame_;
  return frames;
}

std::uint64_t LoadGen::own_bytes(const Client& c) const {
  if (options_.echo_to_sender ||
      &c - clients_.data() >= static_cast<std::ptrdiff_t>(options_.publishers))
    return 0;
  return (c.written / wire_frame_ - c.written_before / wire_frame_) * options_.size;
}

bool LoadGen::drained() const {
  for (std::uint32_t p = 0; p < options_.publishers; ++p)
    if (clients_[p].state == Client::Open && clients_[p].pending() > 0) return false;
  std::uint64_t owed = (frames_written() - frames_before_) * options_.size;
  for (const Client& c : clients_)
    if (c.state == Client::Open && c.bytes + own_bytes(c) < c.baseline + owed) return false;
  return true;
}

LoadGenResult LoadGen::result() const {
  LoadGenResult r;
  std::uint64_t written = frames_written();
  r.frames_sent = written >= frames_before_ ? written - frames_before_ : 0;
  std::uint64_t owed = r.frames_sent * options_.size;
  std::uint64_t missing = 0;
  for (const Client& c : clients_) {
    // A throttled reader the server cut is owed nothing: the row counts it as cut.
    if (c.throttled && c.state == Client::Closed) {
      r.throttled_closed += 1;
      continue;
    }
    std::uint64_t want = c.baseline + owed;
    std::uint64_t got = c.bytes + own_bytes(c);
    if (got < want) missing += want - got;
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
        // Without echoToSender client 0's probes never come back to it.
        if (admitted + (options_.echo_to_sender ? 0 : 1) >= n) {
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
          for (Client& c : clients_) {
            c.baseline = c.bytes;
            c.written_before = c.written;
          }
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
    // Throttled readers whose wait is over read again; the next wait ending wakes the loop.
    if (options_.throttled_clients > 0) wake_at = resume_throttled(now, wake_at);
    now = ec_now_micros();
    std::size_t count = 0;
    bool woken = false;
    ec_error err;
    if (sub_ms_) {  // Poisson intervals are tens of µs: sleep to the µs.
      err = ec_poller_wait_us(poller_, events, kMaxEvents,
                              wake_at > now ? static_cast<std::int64_t>(wake_at - now) : 0, &count,
                              &woken);
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
      if (c.state == Client::Upgrading) {  // WebSocket clients (loadgen_ws.cc).
        std::uint64_t before = c.bytes;
        failed = !ws_upgrading(c, ev, now, &failure);
        if (!failed && before == 0 && c.bytes > 0) admitted += 1;
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
            failure.message =
                "the server closed a connection while the load generator was preparing (" +
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
