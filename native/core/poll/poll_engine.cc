// poll_engine.cc — the poll engine's face to other threads: start and
// stop, and the commands they hand to the I/O thread through the inbox. The
// loop itself is in poll_loop.cc, poll_client.cc, poll_door.cc and
// poll_tls.cc; poll_engine.h says how it works.
#include <new>
#include <utility>

#include "poll_engine.h"

namespace echocast {
namespace poll {

ListenResult PollEngine::start() {
  ListenResult result;
  if (!open_listeners(options_, &listener_, &ws_listener_, &result)) return result;
  result.err = ec_poller_create(&poller_);
  if (result.err.ok()) {
    result.err = ec_poller_add(poller_, listener_, EC_POLL_IN, &listener_);
    if (result.err.ok() && ws_listener_ != EC_INVALID_SOCKET)
      result.err = ec_poller_add(poller_, ws_listener_, EC_POLL_IN, &ws_listener_);
    if (!result.err.ok()) {
      ec_poller_destroy(poller_);
      poller_ = nullptr;
    }
  }
  if (!result.err.ok()) {
    result.syscall = "listen";
    close_listener(&listener_);
    if (ws_listener_ != EC_INVALID_SOCKET) close_listener(&ws_listener_);
    return result;
  }
  inbox_.attach(this);
  coalescer_.enable(ec_poller_sub_ms(poller_));
  listening_ = true;
  buf_.reset(new (std::nothrow) std::uint8_t[kRecvBytes]);
  if (buf_)
    result.err = ec_thread_create(&thread_, &PollEngine::loop_main, this, EC_THREAD_STACK_BYTES);
  else result.err.code = EC_ENOMEM;
  if (!result.err.ok()) {
    result.syscall = "thread_create";
    close_poller();
    close_listener(&listener_);
    if (ws_listener_ != EC_INVALID_SOCKET) close_listener(&ws_listener_);
    return result;
  }
  running_ = true;
  return result;
}

void PollEngine::broadcast(const std::uint8_t* data, std::size_t len) { inject(data, len, 0); }

void PollEngine::inject(const std::uint8_t* data, std::size_t len, std::uint64_t origin) {
  FrameBatch batch;
  split_into(options_.framing, data, len, &batch);
  std::size_t frames = batch.frames.size();
  std::uint64_t bytes = batch.bytes.size();
  // Counted now, so stats() right after broadcast() already shows it: the
  // frames have their place in the order from this moment.
  if (inbox_.post_frames(std::move(batch), origin)) fanout_.count_in(frames, bytes);
}

void PollEngine::disconnect(std::uint64_t id, const char* reason) {
  Reason r;
  if (reason_from_name(reason, &r)) inbox_.post_disconnect(id, r);
}

void PollEngine::events_drained() {
  if (!any_held_.load(std::memory_order_acquire)) return;
  room_signal_.store(true, std::memory_order_release);
  inbox_.wake();
}

void PollEngine::stop(std::uint64_t deadline_ms) {
  if (!running_) return;
  running_ = false;
  inbox_.post_stop(deadline_ms);
  ec_thread_join(&thread_);
  close_poller();
  close_listener(&listener_);
  if (ws_listener_ != EC_INVALID_SOCKET) close_listener(&ws_listener_);
}

EngineStats PollEngine::stats() {
  EngineStats s;
  s.clients = clients_count_.load(std::memory_order_relaxed);
  s.ws_clients = roster_.ws_clients();
  s.counters = fanout_.counters();
  s.read_pauses = fanout_.read_pauses();
  s.read_paused_ms = fanout_.read_paused_ms(ec_now_ms() + 1);  // The loop's clock.
  s.disconnects = roster_.tallies();
  s.refusals = refusals_.tallies();
  return s;
}

// A frame from the client being read (ReadSink).
void PollEngine::on_client_frame(PollClient* c, const FrameView& v, bool forward, bool messages) {
  if (forward) {
    forwarded_.add(v);
  } else {
    fanout_.append(v.bytes, v.size, v.payload_offset, v.payload_size, c->id);
    ++turn_frames_in_;
    turn_bytes_in_ += v.size;
    log_grew_ = true;
  }
  if (messages)
    sink_->on_message(
        c->id, make_frame_ref(c->id, v.bytes, v.size, v.payload_offset, v.payload_size), false);
}

void ReadSink::on_frame(const FrameView& v) {
  engine_->on_client_frame(client, v, forward, messages);
}

}  // namespace poll

std::unique_ptr<Engine> make_poll_engine(const EngineOptions& options, EventSink* sink) {
  return std::unique_ptr<Engine>(new poll::PollEngine(options, sink));
}

}  // namespace echocast
