// loadgen_wrap.cc — see loadgen_wrap.h.
#include "loadgen_wrap.h"

#include <cmath>
#include <string>
#include <utility>

#include "server_wrap.h"  // MakeError

namespace echocast {

namespace {

double get_number(const Napi::Object& o, const char* key, double fallback, double min,
                  double max, bool integer) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min) || d > max || (integer && std::floor(d) != d))
    throw Napi::RangeError::New(o.Env(), std::string(key) + " is out of range");
  return d;
}

}  // namespace

Napi::Function LoadGenWrap::Define(Napi::Env env) {
  return DefineClass(env, "LoadGen",
                     {
                         InstanceMethod<&LoadGenWrap::Prepare>("prepare"),
                         InstanceMethod<&LoadGenWrap::Begin>("begin"),
                         InstanceMethod<&LoadGenWrap::Mark>("mark"),
                         InstanceMethod<&LoadGenWrap::Finish>("finish"),
                     });
}

LoadGenWrap::LoadGenWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LoadGenWrap>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(env, "LoadGen(options) expects an object");
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value host = o.Get("host");
  if (!host.IsUndefined()) {
    if (!host.IsString()) throw Napi::TypeError::New(env, "host must be a string");
    options_.host = host.As<Napi::String>().Utf8Value();
  }
  if (o.Get("port").IsUndefined()) throw Napi::TypeError::New(env, "port is required");
  options_.port = static_cast<int>(get_number(o, "port", 0, 1, 65535, true));
  options_.clients =
      static_cast<std::uint32_t>(get_number(o, "clients", 50, 1, bench::kMaxClients, true));
  options_.publishers = static_cast<std::uint32_t>(
      get_number(o, "publishers", 5, 1, bench::kMaxPublishers, true));
  options_.size = static_cast<std::uint32_t>(
      get_number(o, "size", 64, bench::kMinFrameBytes, bench::kMaxFrameBytes, true));
  options_.rate = get_number(o, "rate", 10000, 0, 1e9, false);
  Napi::Value arrivals = o.Get("arrivals");
  if (!arrivals.IsUndefined()) {
    std::string a = arrivals.IsString() ? arrivals.As<Napi::String>().Utf8Value() : "";
    if (a != "ticks" && a != "poisson")
      throw Napi::TypeError::New(env, "arrivals must be 'ticks' or 'poisson'");
    options_.poisson = a == "poisson";
  }
  options_.rcvlowat =
      static_cast<std::uint32_t>(get_number(o, "rcvlowat", 0, 0, 16 * 1024 * 1024, true));
  double auditors = get_number(o, "auditors", 2, 0, 4294967295.0, true);
  // As in loadgen.ts: at most every client audits.
  options_.auditors = static_cast<std::uint32_t>(std::min<double>(auditors, options_.clients));
  std::string bad = bench::validate_options(options_);
  if (!bad.empty()) throw Napi::RangeError::New(env, bad);
}

LoadGenWrap::~LoadGenWrap() {
  // Collected without finish() (or at env teardown): end the thread first,
  // so nothing can call into this object any more.
  if (gen_) gen_->abort();
  if (tsfn_live_ && !torn_down_) tsfn_.Release();
  tsfn_live_ = false;
  if (cleanup_hook_) napi_remove_env_cleanup_hook(env_, &LoadGenWrap::EnvCleanup, this);
  cleanup_hook_ = false;
}

void LoadGenWrap::EnvCleanup(void* arg) {
  // Runs before Node finalizes the thread-safe function (hooks run last in,
  // first out, and this one was added after the TSFN was created): the thread
  // is ended and joined while the TSFN it may post to still exists.
  LoadGenWrap* self = static_cast<LoadGenWrap*>(arg);
  self->cleanup_hook_ = false;
  self->torn_down_ = true;
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

void LoadGenWrap::NextTick(Napi::Env env, const Napi::Function& fn,
                           const std::vector<napi_value>& args) {
  Napi::Object process = env.Global().Get("process").As<Napi::Object>();
  std::vector<napi_value> all;
  all.reserve(args.size() + 1);
  all.push_back(fn);
  for (napi_value v : args) all.push_back(v);
  process.Get("nextTick").As<Napi::Function>().Call(process, all);
}

Napi::Value LoadGenWrap::Prepare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction())
    throw Napi::TypeError::New(env, "prepare(cb) expects a function");
  Napi::Function cb = info[0].As<Napi::Function>();
  if (state_ != State::Idle)
    throw Napi::Error(env, MakeError(env, "prepare() may be called once, before finish()",
                                     "ERR_INVALID_STATE"));
  tsfn_ = Tsfn::New(env, "echocast.loadgen", 0, 1, this);
  tsfn_live_ = true;
  gen_.reset(new bench::LoadGen(options_, this));
  bench::LoadGenFailure failure;
  if (!gen_->start(&failure)) {
    tsfn_.Release();
    tsfn_live_ = false;
    state_ = State::Done;
    NextTick(env, cb, {MakeError(env, failure.message, failure.code, failure.syscall)});
    return env.Undefined();
  }
  // After the TSFN, so that at teardown this hook runs before Node
  // finalizes the TSFN.
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
    throw Napi::Error(env, MakeError(env, "begin() needs a completed prepare() and no finish()",
                                     "ERR_INVALID_STATE"));
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
      if (!cb.IsEmpty()) NextTick(env, cb, {env.Null(), ResultObject(env)});
      break;
    case State::Done:
      if (!cb.IsEmpty()) NextTick(env, cb, {env.Null(), ResultObject(env)});
      break;
    case State::Preparing:
    case State::Prepared:
    case State::Finishing:
      if (!cb.IsEmpty()) finish_cbs_.push_back(Napi::Persistent(cb));
      if (!finish_requested_) {
        finish_requested_ = true;
        if (state_ == State::Prepared) {
          state_ = State::Finishing;
          tsfn_.Ref(env);  // A completion is awaited again.
          Hold();
        }
        gen_->finish();
      }
      break;
  }
  return env.Undefined();
}

void LoadGenWrap::on_prepared(const bench::LoadGenFailure* failure, bool last) {
  Completion* c = new Completion();
  c->ok = failure == nullptr;
  if (failure != nullptr) c->failure = *failure;
  c->last = last;
  if (tsfn_.NonBlockingCall(c) != napi_ok) delete c;
}

void LoadGenWrap::on_finished(const bench::LoadGenResult& result) {
  Completion* c = new Completion();
  c->finished = true;
  c->result = result;
  c->last = true;
  if (tsfn_.NonBlockingCall(c) != napi_ok) delete c;
}

void LoadGenWrap::CallJs(Napi::Env env, Napi::Function, LoadGenWrap* self, Completion* c) {
  if (env == nullptr || self == nullptr) {  // Tearing down.
    delete c;
    return;
  }
  std::unique_ptr<Completion> owned(c);
  self->Complete(env, owned.get());
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
  return out;
}

void LoadGenWrap::Wind(Napi::Env env) {
  gen_->join();
  if (cleanup_hook_) napi_remove_env_cleanup_hook(env, &LoadGenWrap::EnvCleanup, this);
  cleanup_hook_ = false;
  if (tsfn_live_) tsfn_.Release();  // The process may exit once nothing else runs.
  tsfn_live_ = false;
  state_ = State::Done;
  Letgo();
}

void LoadGenWrap::Complete(Napi::Env env, Completion* c) {
  Napi::HandleScope scope(env);
  if (!c->finished) {
    Napi::Function cb = prepare_cb_.IsEmpty() ? Napi::Function() : prepare_cb_.Value();
    prepare_cb_.Reset();
    if (c->ok) {
      if (finish_requested_) {
        state_ = State::Finishing;  // finish() came first: its completion follows.
      } else {
        state_ = State::Prepared;
        tsfn_.Unref(env);  // Nothing awaited until finish().
        Letgo();
      }
      if (!cb.IsEmpty()) NextTick(env, cb, {env.Null()});
      return;
    }
    // Prepare failed (or was cancelled by finish()): the thread has ended.
    result_ = bench::LoadGenResult();
    result_.cpu_micros = gen_->mark().cpu_micros;
    result_.bytes = gen_->mark().bytes;
    Wind(env);
    if (!cb.IsEmpty()) {
      const bench::LoadGenFailure& f = c->failure;
      NextTick(env, cb, {MakeError(env, f.message, f.code, f.syscall)});
    }
  } else {
    result_ = c->result;
    Wind(env);
  }
  std::vector<Napi::FunctionReference> cbs;
  cbs.swap(finish_cbs_);
  for (Napi::FunctionReference& f : cbs) NextTick(env, f.Value(), {env.Null(), ResultObject(env)});
}

}  // namespace echocast
