// loadgen_wrap.cc — see loadgen_wrap.h.
#include "loadgen_wrap.h"

#include <algorithm>
#include <string>
#include <utility>

#include "core/error_codes.h"
#include "js_options.h"
#include "server_wrap.h"  // MakeError

namespace echocast {

Napi::Function LoadGenWrap::Define(Napi::Env env) {
  // The generator's life, in order.
  return DefineClass(
      env, "LoadGen",
      {InstanceMethod<&LoadGenWrap::Prepare>("prepare"),
       InstanceMethod<&LoadGenWrap::Begin>("begin"), InstanceMethod<&LoadGenWrap::Mark>("mark"),
       InstanceMethod<&LoadGenWrap::Finish>("finish")});
}

LoadGenWrap::LoadGenWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LoadGenWrap>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(env, "LoadGen(options) expects an object");
  Napi::Object o = info[0].As<Napi::Object>();
  read_string(o, "host", &options_.host, Field::Optional);
  std::uint32_t port = 0;
  read_u32(o, "port", &port);
  options_.port = static_cast<int>(port);
  read_u32(o, "clients", &options_.clients, Field::Optional);
  read_u32(o, "publishers", &options_.publishers, Field::Optional);
  read_u32(o, "size", &options_.size, Field::Optional);
  read_number(o, "rate", &options_.rate, Field::Optional);
  std::string arrivals = "ticks";
  read_string(o, "arrivals", &arrivals, Field::Optional);
  if (arrivals != "ticks" && arrivals != "poisson")
    throw Napi::TypeError::New(env, "arrivals must be 'ticks' or 'poisson'");
  options_.poisson = arrivals == "poisson";
  read_u32(o, "rcvlowat", &options_.rcvlowat, Field::Optional);
  read_u32(o, "auditors", &options_.auditors, Field::Optional);
  read_u32(o, "throttledClients", &options_.throttled_clients, Field::Optional);
  read_number(o, "throttleBytesPerSecond", &options_.throttle_bytes_per_sec, Field::Optional);
  // WebSocket clients (port is then the server's WebSocket port).
  read_bool(o, "websocket", &options_.websocket, Field::Optional);
  read_string(o, "wsPath", &options_.ws_path, Field::Optional);
  // The server's token (docs/contract.md S15): every client presents it; '' for none.
  read_string(o, "token", &options_.token, Field::Optional);
  // The server skips the sender (echoToSender: false): a publisher is owed every frame but its own.
  read_bool(o, "echoToSender", &options_.echo_to_sender, Field::Optional);
  // As in loadgen.ts: at most every client audits.
  options_.auditors = std::min(options_.auditors, options_.clients);
  // The one range check: the core's (LoadGen::start() refuses the same).
  std::string bad = bench::validate_options(options_);
  if (!bad.empty()) throw Napi::Error(env, MakeError(env, bad, kErrInvalidOption));
  ec_mutex_init(&mailbox_mutex_);  // Last: a constructor that threw destroys nothing.
}

LoadGenWrap::~LoadGenWrap() {
  // Collected without finish() (or at env teardown): end the thread first,
  // so nothing can call into this object any more.
  if (gen_) gen_->abort();
  pump_.Close();
  if (cleanup_hook_) napi_remove_env_cleanup_hook(env_, &LoadGenWrap::EnvCleanup, this);
  cleanup_hook_ = false;
  ec_mutex_destroy(&mailbox_mutex_);
}

void LoadGenWrap::EnvCleanup(void* arg) {
  // Runs before Node finalizes the pump's thread-safe function (hooks run
  // last in, first out, and this one was added after the function was
  // created): the thread is ended and joined while the function it may post
  // to still exists.
  LoadGenWrap* self = static_cast<LoadGenWrap*>(arg);
  self->cleanup_hook_ = false;
  self->pump_.Forget();  // Node finalizes it.
  if (self->gen_) self->gen_->abort();
}

void LoadGenWrap::Hold() {
  if (!held_) Ref();
  held_ = true;
}

void LoadGenWrap::Letgo() {
  if (held_) Unref();
  held_ = false;
}

Napi::Value LoadGenWrap::Prepare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction())
    throw Napi::TypeError::New(env, "prepare(cb) expects a function");
  Napi::Function cb = info[0].As<Napi::Function>();
  if (state_ != State::Idle)
    throw Napi::Error(
        env, MakeError(env, "prepare() may be called once, before finish()", kErrBadState));
  pump_.Open(env, "echocast.loadgen", this);
  gen_.reset(new bench::LoadGen(options_, this));
  bench::LoadGenFailure failure;
  if (!gen_->start(&failure)) {
    pump_.Close();
    state_ = State::Done;
    CallOnNextTick(env, cb, {MakeError(env, failure.message, failure.code, failure.syscall)});
    return env.Undefined();
  }
  // After the pump's function, so that at teardown this hook runs before
  // Node finalizes that function.
  napi_add_env_cleanup_hook(env, &LoadGenWrap::EnvCleanup, this);
  cleanup_hook_ = true;
  prepare_cb_ = Napi::Persistent(cb);
  Hold();
  state_ = State::Preparing;
  return env.Undefined();
}

Napi::Value LoadGenWrap::Begin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::Prepared)
    throw Napi::Error(
        env, MakeError(env, "begin() needs a completed prepare() and no finish()", kErrBadState));
  gen_->begin();
  return env.Undefined();
}

Napi::Value LoadGenWrap::Mark(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bench::LoadGenMark m;
  if (gen_) m = gen_->mark();
  Napi::Object out = Napi::Object::New(env);
  out.Set("bytes", static_cast<double>(m.bytes));
  out.Set("cpuMicros", static_cast<double>(m.cpu_micros));
  out.Set("framesSent", static_cast<double>(m.frames_sent));
  return out;
}

Napi::Value LoadGenWrap::Finish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Function cb;
  if (info.Length() > 0 && info[0].IsFunction()) cb = info[0].As<Napi::Function>();
  else if (info.Length() > 0 && !info[0].IsUndefined())
    throw Napi::TypeError::New(env, "finish(cb) expects a function");
  switch (state_) {
    case State::Idle:
      state_ = State::Done;  // Never started: nothing to stop, zeros to report.
      if (!cb.IsEmpty()) CallOnNextTick(env, cb, {env.Null(), ResultObject(env)});
      break;
    case State::Done:
      if (!cb.IsEmpty()) CallOnNextTick(env, cb, {env.Null(), ResultObject(env)});
      break;
    case State::Preparing:
    case State::Prepared:
    case State::Finishing:
      if (!cb.IsEmpty()) finish_cbs_.push_back(Napi::Persistent(cb));
      if (!finish_requested_) {
        finish_requested_ = true;
        if (state_ == State::Prepared) {
          state_ = State::Finishing;
          pump_.Ref(env);  // A completion is awaited again.
          Hold();
        }
        gen_->finish();
      }
      break;
  }
  return env.Undefined();
}

void LoadGenWrap::on_prepared(const bench::LoadGenFailure* failure, bool last) {
  Completion c;
  c.ok = failure == nullptr;
  if (failure != nullptr) c.failure = *failure;
  c.last = last;
  Post(std::move(c));
}

void LoadGenWrap::on_finished(const bench::LoadGenResult& result) {
  Completion c;
  c.finished = true;
  c.result = result;
  c.last = true;
  Post(std::move(c));
}

void LoadGenWrap::Post(Completion&& c) {
  {
    ec_lock_guard lock(&mailbox_mutex_);
    mailbox_.push_back(std::move(c));
  }
  pump_.Ring();  // On failure the completion waits for the next ring.
}

void LoadGenWrap::OnPump(Napi::Env env, Napi::Function) {
  std::vector<Completion> got;
  {
    ec_lock_guard lock(&mailbox_mutex_);
    got.swap(mailbox_);
  }
  for (const Completion& c : got) Complete(env, c);
}

Napi::Object LoadGenWrap::ResultObject(Napi::Env env) const {
  const bench::LoadGenResult& r = result_;
  Napi::Object out = Napi::Object::New(env);
  out.Set("framesSent", static_cast<double>(r.frames_sent));
  out.Set("lost", static_cast<double>(r.lost));
  out.Set("orderViolations", static_cast<double>(r.order_violations));
  Napi::Object latency = Napi::Object::New(env);
  latency.Set("p50", static_cast<double>(r.p50));
  latency.Set("p99", static_cast<double>(r.p99));
  latency.Set("max", static_cast<double>(r.max));
  out.Set("latencyUs", latency);
  out.Set("cpuMicros", static_cast<double>(r.cpu_micros));
  out.Set("bytes", static_cast<double>(r.bytes));
  out.Set("latencyCount", static_cast<double>(r.latency_count));
  out.Set("throttledClosed", static_cast<double>(r.throttled_closed));
  return out;
}

void LoadGenWrap::Wind(Napi::Env env) {
  gen_->join();
  if (cleanup_hook_) napi_remove_env_cleanup_hook(env, &LoadGenWrap::EnvCleanup, this);
  cleanup_hook_ = false;
  pump_.Close();  // The process may exit once nothing else runs.
  state_ = State::Done;
  Letgo();
}

void LoadGenWrap::Complete(Napi::Env env, const Completion& c) {
  Napi::HandleScope scope(env);
  if (!c.finished) {
    Napi::Function cb = prepare_cb_.IsEmpty() ? Napi::Function() : prepare_cb_.Value();
    prepare_cb_.Reset();
    if (c.ok) {
      if (finish_requested_) {
        state_ = State::Finishing;  // finish() came first: its completion follows.
      } else {
        state_ = State::Prepared;
        pump_.Unref(env);  // Nothing awaited until finish().
        Letgo();
      }
      if (!cb.IsEmpty()) CallOnNextTick(env, cb, {env.Null()});
      return;
    }
    // Prepare failed (or was cancelled by finish()): the thread has ended.
    result_ = bench::LoadGenResult();
    result_.cpu_micros = gen_->mark().cpu_micros;
    result_.bytes = gen_->mark().bytes;
    Wind(env);
    if (!cb.IsEmpty()) {
      const bench::LoadGenFailure& f = c.failure;
      CallOnNextTick(env, cb, {MakeError(env, f.message, f.code, f.syscall)});
    }
  } else {
    result_ = c.result;
    Wind(env);
  }
  std::vector<Napi::FunctionReference> cbs;
  cbs.swap(finish_cbs_);
  for (Napi::FunctionReference& f : cbs)
    CallOnNextTick(env, f.Value(), {env.Null(), ResultObject(env)});
}

}  // namespace echocast
