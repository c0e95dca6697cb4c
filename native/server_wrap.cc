// server_wrap.cc — see server_wrap.h.
#include "server_wrap.h"

#include <cmath>
#include <utility>

namespace echocast {

namespace {

// The most message-event payload bytes that may wait for JS at once.
constexpr std::uint64_t kMaxPendingMessageBytes = 16u * 1024u * 1024u;

// Reads an optional unsigned integer option (backstop: TypeScript has
// validated and defaulted already).
std::uint64_t get_uint(const Napi::Object& o, const char* key,
                       std::uint64_t fallback, std::uint64_t max) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > static_cast<double>(max) || std::floor(d) != d)
    throw Napi::RangeError::New(o.Env(), std::string(key) + " is out of range");
  return static_cast<std::uint64_t>(d);
}

// Disconnect reasons JS may pass to disconnect(); the engine keeps the
// pointer, so it must be one of these static strings.
const char* const kReasons[] = {"client-closed", "client-error",  "frame-too-large",
                                "slow-consumer", "server-full",   "server-closed",
                                "cluster-unavailable"};

}  // namespace

Napi::Value MakeError(Napi::Env env, const std::string& message,
                      const std::string& code, const char* syscall,
                      const std::string* address, int port) {
  AddonData* data = env.GetInstanceData<AddonData>();
  Napi::Object err;
  if (data != nullptr && !data->error_class.IsEmpty()) {
    err = data->error_class.New({Napi::String::New(env, message),
                                 Napi::String::New(env, code)});
  } else {
    err = Napi::Error::New(env, message).Value();
  }
  err.Set("code", code);
  if (syscall != nullptr) err.Set("syscall", syscall);
  if (address != nullptr) err.Set("address", *address);
  if (port >= 0) err.Set("port", port);
  return err;
}

Napi::Function ServerWrap::Define(Napi::Env env) {
  return DefineClass(env, "Server",
                     {
                         InstanceMethod<&ServerWrap::Start>("start"),
                         InstanceMethod<&ServerWrap::Broadcast>("broadcast"),
                         InstanceMethod<&ServerWrap::SetMessageEvents>("setMessageEvents"),
                         InstanceMethod<&ServerWrap::SetForward>("setForward"),
                         InstanceMethod<&ServerWrap::Inject>("inject"),
                         InstanceMethod<&ServerWrap::Disconnect>("disconnect"),
                         InstanceMethod<&ServerWrap::Stats>("stats"),
                         InstanceMethod<&ServerWrap::Stop>("stop"),
                     });
}

ServerWrap::ServerWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<ServerWrap>(info) {
  ec_mutex_init(&queue_mutex_);
  ec_cond_init(&queue_cond_);
  Napi::Env env = info.Env();
  env_ = env;
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "Server(options, onEvents) expects an object and a function");
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value engine = o.Get("engine");
  if (!engine.IsUndefined()) {
    std::string name = engine.IsString() ? engine.As<Napi::String>().Utf8Value() : "";
    if (name != "native-threads" && name != "native-poll")
      throw Napi::TypeError::New(env, "engine must be one of addon.engines");
    engine_name_ = name;
  }
  Napi::Value host = o.Get("host");
  if (!host.IsUndefined()) {
    if (!host.IsString()) throw Napi::TypeError::New(env, "host must be a string");
    options_.host = host.As<Napi::String>().Utf8Value();
  }
  options_.port = static_cast<int>(get_uint(o, "port", 0, 65535));
  Napi::Value framing = o.Get("framing");
  if (!framing.IsUndefined()) {
    if (!framing.IsString() ||
        !parse_framing(framing.As<Napi::String>().Utf8Value().c_str(), &options_.framing))
      throw Napi::TypeError::New(env, "framing must be 'line', 'raw' or 'length'");
  }
  options_.replay = static_cast<std::uint32_t>(get_uint(o, "replay", 1, 0xFFFFFFFFu));
  Napi::Value echo = o.Get("echoToSender");
  if (!echo.IsUndefined()) {
    if (!echo.IsBoolean()) throw Napi::TypeError::New(env, "echoToSender must be a boolean");
    options_.echo_to_sender = echo.As<Napi::Boolean>().Value();
  }
  options_.max_frame_bytes = get_uint(o, "maxFrameBytes", 64 * 1024, 0xFFFFFFFFu);
  options_.max_backlog_bytes =
      get_uint(o, "maxBacklogBytes", 16u * 1024u * 1024u, 1ull << 52);
  options_.max_clients = static_cast<std::uint32_t>(get_uint(o, "maxClients", 10000, 0xFFFFFFFFu));
  if (options_.max_frame_bytes < 1)
    throw Napi::RangeError::New(env, "maxFrameBytes must be at least 1");
  on_events_ = Napi::Persistent(info[1].As<Napi::Function>());
}

ServerWrap::~ServerWrap() {
  // Normally stop() has completed (the wrapper holds a reference to itself
  // while running, so it cannot be collected before). On env teardown
  // EnvCleanup has already stopped everything; this is the last backstop.
  {
    ec_lock_guard lock(&queue_mutex_);
    no_backpressure_ = true;
    ec_cond_broadcast(&queue_cond_);
  }
  if (stop_thread_started_) {
    ec_thread_join(&stop_thread_);
    stop_thread_started_ = false;
  }
  engine_.reset();
  ec_cond_destroy(&queue_cond_);
  ec_mutex_destroy(&queue_mutex_);
}

Napi::Value ServerWrap::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::Idle) {
    throw Napi::Error(env, MakeError(env, "server already started", "ERR_SERVER_ALREADY_LISTEN"));
  }
  engine_ = engine_name_ == "native-poll" ? make_poll_engine(options_, this)
                                          : make_threads_engine(options_, this);
  if (forward_) engine_->set_forward(true);  // Before any client can connect.
  // Frames injected before start (a cluster node preloads its replay
  // history from the stream before it listens) go in first.
  for (const auto& p : early_injects_) engine_->inject(p.first.data(), p.first.size(), p.second);
  early_injects_.clear();
  // The thread-safe function keeps the process alive while the server runs,
  // like a listening net.Server; it is released when stop() completes. It
  // exists before the engine starts, since a client may connect (and its
  // event be pushed) before start() returns.
  tsfn_ = Tsfn::New(env, on_events_.Value(), "echocast.events", 0, 1, this);
  ListenResult r = engine_->start();
  if (!r.err.ok()) {
    engine_.reset();
    tsfn_.Release();
    std::string code = ec_err_name(r.err.code);
    std::string message;
    if (std::string(r.syscall) == "getaddrinfo") {
      message = "getaddrinfo " + code + " " + options_.host;
      throw Napi::Error(env, MakeError(env, message, code, r.syscall, &options_.host));
    }
    // Like Node's net (which reports bind failures as 'listen' too), JS
    // sees syscall 'listen' for every step after name resolution, so both
    // engines fail the same way. The exact step stays in the platform layer.
    const char* syscall = "listen";
    if (std::string(r.syscall) == "WSAStartup" || std::string(r.syscall) == "thread_create")
      syscall = r.syscall;
    message = std::string(syscall) + " " + code + ": " + ec_error_message(r.err) + " " +
              options_.host + ":" + std::to_string(options_.port);
    throw Napi::Error(env, MakeError(env, message, code, syscall, &options_.host, options_.port));
  }
  // Registered after the TSFN, so (hooks run last-in first-out) it runs
  // before Node tears the TSFN down.
  napi_add_env_cleanup_hook(env, &ServerWrap::EnvCleanup, this);
  cleanup_hook_ = true;
  Ref();  // Not collectable while threads may report to it.
  state_ = State::Running;
  Napi::Object out = Napi::Object::New(env);
  out.Set("address", r.bound.address);
  out.Set("port", r.bound.port);
  out.Set("family", r.bound.ipv6 ? "IPv6" : "IPv4");
  return out;
}

Napi::Value ServerWrap::Broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer())
    throw Napi::TypeError::New(env, "broadcast(buf) expects a Buffer");
  if (state_ != State::Running) return env.Undefined();
  Napi::Buffer<std::uint8_t> buf = info[0].As<Napi::Buffer<std::uint8_t>>();
  engine_->broadcast(buf.Data(), buf.Length());
  return env.Undefined();
}

Napi::Value ServerWrap::SetMessageEvents(const Napi::CallbackInfo& info) {
  bool on = info.Length() > 0 && info[0].ToBoolean().Value();
  messages_enabled_ = on;
  if (!on) {
    // Readers waiting for room in the queue may go on.
    ec_lock_guard lock(&queue_mutex_);
    ec_cond_broadcast(&queue_cond_);
  }
  return info.Env().Undefined();
}

Napi::Value ServerWrap::SetForward(const Napi::CallbackInfo& info) {
  bool on = info.Length() > 0 && info[0].ToBoolean().Value();
  forward_ = on;
  if (engine_) engine_->set_forward(on);
  return info.Env().Undefined();
}

Napi::Value ServerWrap::Inject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer())
    throw Napi::TypeError::New(env, "inject(buf, originClientId) expects a Buffer");
  std::uint64_t origin = 0;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "originClientId must be a number");
    double d = info[1].As<Napi::Number>().DoubleValue();
    if (d > 0 && d < 9007199254740992.0) origin = static_cast<std::uint64_t>(d);
  }
  Napi::Buffer<std::uint8_t> buf = info[0].As<Napi::Buffer<std::uint8_t>>();
  if (state_ == State::Idle) {
    early_injects_.emplace_back(std::vector<std::uint8_t>(buf.Data(), buf.Data() + buf.Length()),
                                origin);
    return env.Undefined();
  }
  if (state_ != State::Running) return env.Undefined();
  engine_->inject(buf.Data(), buf.Length(), origin);
  return env.Undefined();
}

Napi::Value ServerWrap::Disconnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString())
    throw Napi::TypeError::New(env, "disconnect(clientId, reason) expects a number and a string");
  std::string wanted = info[1].As<Napi::String>().Utf8Value();
  const char* reason = nullptr;
  for (const char* r : kReasons)
    if (wanted == r) reason = r;
  if (reason == nullptr) throw Napi::TypeError::New(env, "unknown disconnect reason");
  double d = info[0].As<Napi::Number>().DoubleValue();
  if (state_ != State::Running || !(d >= 1) || d >= 9007199254740992.0) return env.Undefined();
  engine_->disconnect(static_cast<std::uint64_t>(d), reason);
  return env.Undefined();
}

Napi::Value ServerWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EngineStats s;
  if (engine_) s = engine_->stats();
  Napi::Object out = Napi::Object::New(env);
  out.Set("clients", static_cast<double>(s.clients));
  out.Set("framesIn", static_cast<double>(s.hub.frames_in));
  out.Set("bytesIn", static_cast<double>(s.hub.bytes_in));
  out.Set("framesOut", static_cast<double>(s.hub.frames_out));
  out.Set("bytesOut", static_cast<double>(s.hub.bytes_out));
  Napi::Object d = Napi::Object::New(env);
  for (const auto& kv : s.disconnects) d.Set(kv.first, static_cast<double>(kv.second));
  out.Set("disconnects", d);
  return out;
}

Napi::Value ServerWrap::Stop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::uint64_t deadline = 0;
  if (info.Length() > 0 && info[0].IsNumber()) {
    double d = info[0].As<Napi::Number>().DoubleValue();
    if (d > 0) deadline = d > 3.6e6 ? 3600000u : static_cast<std::uint64_t>(d);
  }
  Napi::Function cb;
  if (info.Length() > 1 && info[1].IsFunction()) cb = info[1].As<Napi::Function>();
  switch (state_) {
    case State::Idle:
      state_ = State::Stopped;
      if (!cb.IsEmpty()) NextTick(env, cb);
      break;
    case State::Stopped:
      if (!cb.IsEmpty()) NextTick(env, cb);
      break;
    case State::Stopping:
      if (!cb.IsEmpty()) stop_callbacks_.push_back(Napi::Persistent(cb));
      break;
    case State::Running: {
      state_ = State::Stopping;
      if (!cb.IsEmpty()) stop_callbacks_.push_back(Napi::Persistent(cb));
      {
        ec_lock_guard lock(&queue_mutex_);
        no_backpressure_ = true;
        ec_cond_broadcast(&queue_cond_);
      }
      engine_->events_drained();  // A paused reader may go on.
      stop_deadline_ms_ = deadline;
      // Joining threads can take up to the deadline: never on the JS thread.
      ec_error err = ec_thread_create(&stop_thread_, &ServerWrap::StopMain, this,
                                      EC_THREAD_STACK_BYTES);
      if (err.ok()) {
        stop_thread_started_ = true;
      } else {
        StopMain(this);  // Last resort: stop synchronously.
      }
      break;
    }
  }
  return env.Undefined();
}

void ServerWrap::StopMain(void* arg) {
  ServerWrap* self = static_cast<ServerWrap*>(arg);
  self->engine_->stop(self->stop_deadline_ms_);
  Event e;
  e.kind = Event::Stopped;
  self->Push(std::move(e));
}

void ServerWrap::EnvCleanup(void* arg) {
  ServerWrap* self = static_cast<ServerWrap*>(arg);
  self->cleanup_hook_ = false;
  {
    ec_lock_guard lock(&self->queue_mutex_);
    self->no_backpressure_ = true;
    ec_cond_broadcast(&self->queue_cond_);
  }
  if (self->stop_thread_started_) {
    ec_thread_join(&self->stop_thread_);
    self->stop_thread_started_ = false;
  }
  if (self->engine_) self->engine_->stop(0);
}

void ServerWrap::NextTick(Napi::Env env, const Napi::Function& fn) {
  Napi::Object process = env.Global().Get("process").As<Napi::Object>();
  process.Get("nextTick").As<Napi::Function>().Call(process, {fn});
}

void ServerWrap::Push(Event&& event) {
  bool was_empty;
  {
    ec_lock_guard lock(&queue_mutex_);
    was_empty = queue_.empty();
    queue_.push_back(std::move(event));
  }
  if (was_empty) tsfn_.NonBlockingCall();
}

void ServerWrap::on_connection(std::uint64_t id, const std::string& address, int port) {
  Event e;
  e.kind = Event::Connection;
  e.id = id;
  e.text = address;
  e.port = port;
  Push(std::move(e));
}

bool ServerWrap::wants_messages() { return messages_enabled_; }

void ServerWrap::ReserveLocked(std::uint64_t size, bool may_wait, bool messages) {
  // Backpressure: this client's reader waits (and so its socket fills and
  // its sender slows down) while JS has too many event bytes pending.
  while (may_wait && (!messages || messages_enabled_) && !no_backpressure_ &&
         pending_message_bytes_ > 0 && pending_message_bytes_ + size > kMaxPendingMessageBytes) {
    ec_cond_wait(&queue_cond_, &queue_mutex_);
  }
  pending_message_bytes_ += size;
}

bool ServerWrap::events_room() {
  ec_lock_guard lock(&queue_mutex_);
  return no_backpressure_ || pending_message_bytes_ < kMaxPendingMessageBytes;
}

void ServerWrap::on_message(std::uint64_t id, const FrameRef& frame, bool may_wait) {
  std::uint64_t size = frame->payload_size;
  bool was_empty;
  {
    ec_lock_guard lock(&queue_mutex_);
    if (!messages_enabled_) return;
    ReserveLocked(size, may_wait, true);
    if (!messages_enabled_) {
      pending_message_bytes_ -= size;
      return;
    }
    Event e;
    e.kind = Event::Message;
    e.id = id;
    e.frame = frame;
    was_empty = queue_.empty();
    queue_.push_back(std::move(e));
  }
  if (was_empty) tsfn_.NonBlockingCall();
}

void ServerWrap::on_frames(std::uint64_t id, const std::uint8_t* data, std::size_t len,
                           std::size_t frames, bool may_wait) {
  Event e;
  e.kind = Event::Frames;
  e.id = id;
  e.bytes.assign(data, data + len);
  e.frames = frames;
  bool was_empty;
  {
    ec_lock_guard lock(&queue_mutex_);
    ReserveLocked(len, may_wait, false);
    was_empty = queue_.empty();
    queue_.push_back(std::move(e));
  }
  if (was_empty) tsfn_.NonBlockingCall();
}

void ServerWrap::on_disconnect(std::uint64_t id, const char* reason) {
  Event e;
  e.kind = Event::Disconnect;
  e.id = id;
  e.word = reason;
  Push(std::move(e));
}

void ServerWrap::on_error(const ec_error& err, const char* syscall) {
  Event e;
  e.kind = Event::Error;
  e.word = ec_err_name(err.code);
  e.syscall = syscall;
  e.text = std::string(syscall) + " " + e.word + ": " + ec_error_message(err);
  Push(std::move(e));
}

void ServerWrap::CallJs(Napi::Env env, Napi::Function fn, ServerWrap* self, void*) {
  if (env == nullptr || self == nullptr) return;  // Tearing down.
  self->Deliver(env, fn);
}

void ServerWrap::Deliver(Napi::Env env, Napi::Function fn) {
  std::vector<Event> batch;
  {
    ec_lock_guard lock(&queue_mutex_);
    batch.swap(queue_);
  }
  if (batch.empty()) return;
  Napi::HandleScope scope(env);
  Napi::Array events = Napi::Array::New(env);
  std::uint32_t n = 0;
  std::uint64_t freed = 0;
  bool stopped = false;
  for (Event& e : batch) {
    Napi::Object o;
    switch (e.kind) {
      case Event::Connection:
        o = Napi::Object::New(env);
        o.Set("type", "connection");
        o.Set("id", static_cast<double>(e.id));
        o.Set("remoteAddress", e.text);
        o.Set("remotePort", e.port);
        break;
      case Event::Message: {
        const HubFrame& f = *e.frame;
        freed += f.payload_size;
        o = Napi::Object::New(env);
        o.Set("type", "message");
        o.Set("clientId", static_cast<double>(e.id));
        o.Set("data", Napi::Buffer<std::uint8_t>::Copy(
                          env, f.bytes.data() + f.payload_offset, f.payload_size));
        e.frame.reset();
        break;
      }
      case Event::Frames:
        freed += e.bytes.size();
        o = Napi::Object::New(env);
        o.Set("type", "frames");
        o.Set("clientId", static_cast<double>(e.id));
        o.Set("data", Napi::Buffer<std::uint8_t>::Copy(env, e.bytes.data(), e.bytes.size()));
        o.Set("frames", static_cast<double>(e.frames));
        std::vector<std::uint8_t>().swap(e.bytes);
        break;
      case Event::Disconnect:
        o = Napi::Object::New(env);
        o.Set("type", "disconnect");
        o.Set("id", static_cast<double>(e.id));
        o.Set("reason", e.word);
        break;
      case Event::Error:
        o = Napi::Object::New(env);
        o.Set("type", "error");
        o.Set("error", MakeError(env, e.text, e.word, e.syscall));
        break;
      case Event::Stopped:
        stopped = true;
        continue;
    }
    events.Set(n++, o);
  }
  if (freed > 0) {
    {
      ec_lock_guard lock(&queue_mutex_);
      pending_message_bytes_ -= freed;
      ec_cond_broadcast(&queue_cond_);
    }
    if (engine_) engine_->events_drained();
  }
  // Deliver the batch; a throwing listener must not stop the bookkeeping of
  // a completed stop, so its exception is re-raised afterwards.
  Napi::Error pending;
  bool threw = false;
  if (n > 0) {
    try {
      fn.Call(env.Undefined(), {events});
    } catch (const Napi::Error& err) {
      pending = err;
      threw = true;
    }
  }
  if (stopped) {
    if (stop_thread_started_) {
      ec_thread_join(&stop_thread_);  // It has just pushed its last event.
      stop_thread_started_ = false;
    }
    state_ = State::Stopped;
    if (cleanup_hook_) {
      napi_remove_env_cleanup_hook(env, &ServerWrap::EnvCleanup, this);
      cleanup_hook_ = false;
    }
    std::vector<Napi::FunctionReference> callbacks;
    callbacks.swap(stop_callbacks_);
    tsfn_.Release();  // The process may exit once nothing else runs.
    Unref();
    for (Napi::FunctionReference& cb : callbacks) {
      try {
        cb.Call({});
      } catch (const Napi::Error& err) {
        if (!threw) {
          pending = err;
          threw = true;
        }
      }
    }
  }
  if (threw) Rethrow(env, pending.Value());
}

void ServerWrap::Rethrow(Napi::Env env, Napi::Value error) {
  // An exception left pending in a thread-safe function's callback is only
  // reported under --force-node-api-uncaught-exceptions-policy; thrown from
  // a function called by process.nextTick it is a normal uncaught exception
  // (process 'uncaughtException', or the process ends with it).
  Napi::Function thrower = Napi::Function::New(
      env, [](const Napi::CallbackInfo& info) -> Napi::Value {
        throw Napi::Error(info.Env(), info[0]);
      }, "rethrow");
  Napi::Object process = env.Global().Get("process").As<Napi::Object>();
  process.Get("nextTick").As<Napi::Function>().Call(process, {thrower, error});
}

}  // namespace echocast
