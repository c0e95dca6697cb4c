// server_wrap.cc — the Server class's lifecycle and its calls from JS
// (start, broadcast, inject, disconnect, stats, stop) and the EventSink
// side that engine threads call; its options are read in server_options.cc
// and its events made for JS in server_events.cc (see server_wrap.h).
#include "server_wrap.h"

#include <utility>

#include "core/error_codes.h"
#include "core/reasons.h"

namespace echocast {

Napi::Value MakeError(Napi::Env env, const std::string& message, const std::string& code,
                      const char* syscall, const std::string* address, int port) {
  AddonData* data = env.GetInstanceData<AddonData>();
  Napi::Object err;
  if (data != nullptr && !data->error_class.IsEmpty()) {
    err = data->error_class.New({Napi::String::New(env, message), Napi::String::New(env, code)});
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
                         InstanceMethod<&ServerWrap::AuthorizeAnswer>("authorizeAnswer"),
                         InstanceMethod<&ServerWrap::Stats>("stats"),
                         InstanceMethod<&ServerWrap::Stop>("stop"),
                         InstanceMethod<&ServerWrap::SetTls>("setTLS"),
                     });
}

ServerWrap::ServerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ServerWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "Server(options, onEvents) expects an object and a function");
  read_server_options(info[0].As<Napi::Object>(), &options_, &engine_name_);
  on_events_ = Napi::Persistent(info[1].As<Napi::Function>());
}

ServerWrap::~ServerWrap() {
  // Normally stop() has completed (the wrapper holds a reference to itself
  // while running, so it cannot be collected before). On env teardown
  // EnvCleanup has already stopped everything; this is the last backstop.
  queue_.lift_backpressure();
  if (stop_thread_started_) {
    ec_thread_join(&stop_thread_);
    stop_thread_started_ = false;
  }
  engine_.reset();
}

Napi::Value ServerWrap::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::Idle) {
    throw Napi::Error(env, MakeError(env, "server already started", kErrBadState));
  }
  // docs/contract.md S17: the material becomes a context before anything
  // listens; a failure is the reason, and nothing listens.
  std::shared_ptr<tls::TlsContext> context;
  if (options_.has_tls) context = MakeTlsContext(env, options_.tls);
  engine_ = engine_name_ == "native-poll" ? make_poll_engine(options_, this)
                                          : make_threads_engine(options_, this);
  if (context) engine_->set_tls(std::move(context));
  if (forward_) engine_->set_forward(true);  // Before any client can connect.
  // Frames injected before start (a cluster node preloads its replay
  // history from the stream before it listens) go in first.
  for (const auto& p : early_injects_) engine_->inject(p.first.data(), p.first.size(), p.second);
  early_injects_.clear();
  // The pump keeps the process alive while the server runs, like a
  // listening net.Server; it is closed when stop() completes. It exists
  // before the engine starts, since a client may connect (and its event be
  // pushed) before start() returns.
  pump_.Open(env, on_events_.Value(), "echocast.events", this);
  ListenResult r = engine_->start();
  if (!r.err.ok()) {
    engine_.reset();
    pump_.Close();
    std::string code = ec_err_name(r.err.code);
    std::string message;
    if (std::string(r.syscall) == "getaddrinfo") {
      const std::string& host = r.ws_failed ? options_.ws_host : options_.host;
      message = "getaddrinfo " + code + " " + host;
      throw Napi::Error(env, MakeError(env, message, code, r.syscall, &host));
    }
    // Like Node's net (which reports bind failures as 'listen' too), JS
    // sees syscall 'listen' for every step after name resolution, so both
    // engines fail the same way. The exact step stays in the platform layer.
    const char* syscall = "listen";
    if (std::string(r.syscall) == "WSAStartup" || std::string(r.syscall) == "thread_create")
      syscall = r.syscall;
    // The listener that failed: the TCP one, or the WebSocket one.
    const std::string& host = r.ws_failed ? options_.ws_host : options_.host;
    int port = r.ws_failed ? options_.ws_port : options_.port;
    message = std::string(syscall) + " " + code + ": " + ec_error_message(r.err) + " " + host +
              ":" + std::to_string(port);
    throw Napi::Error(env, MakeError(env, message, code, syscall, &host, port));
  }
  // Registered after the pump's thread-safe function, so (hooks run
  // last-in first-out) it runs before Node tears that function down.
  napi_add_env_cleanup_hook(env, &ServerWrap::EnvCleanup, this);
  cleanup_hook_ = true;
  Ref();  // Not collectable while threads may report to it.
  state_ = State::Running;
  Napi::Object out = Napi::Object::New(env);
  out.Set("address", r.bound.address);
  out.Set("port", r.bound.port);
  out.Set("family", r.bound.ipv6 ? "IPv6" : "IPv4");
  if (options_.has_ws()) {
    // The WebSocket listener's bound address, the same shape.
    Napi::Object ws = Napi::Object::New(env);
    ws.Set("address", r.ws_bound.address);
    ws.Set("port", r.ws_bound.port);
    ws.Set("family", r.ws_bound.ipv6 ? "IPv6" : "IPv4");
    out.Set("ws", ws);
  }
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
  queue_.set_messages(info.Length() > 0 && info[0].ToBoolean().Value());
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
  // The engine keeps the reason's pointer: reason_name() gives the list's
  // own static string (core/reasons.h).
  Reason reason;
  if (!reason_from_name(info[1].As<Napi::String>().Utf8Value().c_str(), &reason))
    throw Napi::TypeError::New(env, "unknown disconnect reason");
  double d = info[0].As<Napi::Number>().DoubleValue();
  if (state_ != State::Running || !(d >= 1) || d >= 9007199254740992.0) return env.Undefined();
  engine_->disconnect(static_cast<std::uint64_t>(d), reason_name(reason));
  return env.Undefined();
}

Napi::Value ServerWrap::AuthorizeAnswer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber())
    throw Napi::TypeError::New(env, "authorizeAnswer(ticket, ok, detail) expects a number");
  double d = info[0].As<Napi::Number>().DoubleValue();
  bool ok = info[1].ToBoolean().Value();
  std::string detail;
  if (info.Length() > 2 && info[2].IsString()) detail = info[2].As<Napi::String>().Utf8Value();
  if (state_ != State::Running || !(d >= 1) || d >= 9007199254740992.0) return env.Undefined();
  // The engine hands it to the connection's I/O side; it never blocks.
  engine_->authorize_answer(static_cast<std::uint64_t>(d), ok, detail);
  return env.Undefined();
}

Napi::Value ServerWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EngineStats s;
  if (engine_) s = engine_->stats();
  Napi::Object out = Napi::Object::New(env);
  out.Set("clients", static_cast<double>(s.clients));
  out.Set("wsClients", static_cast<double>(s.ws_clients));
  out.Set("framesIn", static_cast<double>(s.counters.frames_in));
  out.Set("bytesIn", static_cast<double>(s.counters.bytes_in));
  out.Set("framesOut", static_cast<double>(s.counters.frames_out));
  out.Set("bytesOut", static_cast<double>(s.counters.bytes_out));
  out.Set("readPauses", static_cast<double>(s.read_pauses));
  out.Set("readPausedMs", static_cast<double>(s.read_paused_ms));
  EventQueue::Holds holds = queue_.holds();
  out.Set("eventHolds", static_cast<double>(holds.count));
  out.Set("eventHeldMs", static_cast<double>(holds.ms));
  Napi::Object d = Napi::Object::New(env);
  for (const auto& kv : s.disconnects) d.Set(kv.first, static_cast<double>(kv.second));
  out.Set("disconnects", d);
  Napi::Object refusals = Napi::Object::New(env);
  for (std::size_t i = 0; i < kRefusalCount; ++i) {
    const char* name = refusal_name(static_cast<Refusal>(i));
    auto it = s.refusals.find(name);
    refusals.Set(name, static_cast<double>(it == s.refusals.end() ? 0 : it->second));
  }
  out.Set("refusals", refusals);
  return out;
}

std::shared_ptr<tls::TlsContext> ServerWrap::MakeTlsContext(Napi::Env env,
                                                            const tls::TlsMaterial& m) {
  const tls::TlsSupport& support = tls::tls_support();
  if (!support.usable)
    throw Napi::Error(env, MakeError(env, "option \"tls\": OpenSSL unusable: " + support.reason,
                                     kErrInvalidOption));
  std::string error;
  std::shared_ptr<tls::TlsContext> context =
      tls::TlsContext::create(tls::TlsContext::Role::kServer, m, &error);
  if (!context)
    throw Napi::Error(env, MakeError(env, "option \"tls\": " + error, kErrInvalidOption));
  return context;
}

Napi::Value ServerWrap::SetTls(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!options_.has_tls)
    throw Napi::Error(env, MakeError(env, "setTLS() on a server without tls", kErrBadState));
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(env, "setTLS(tls) takes an object");
  tls::TlsMaterial m;
  read_tls_material(info[0].As<Napi::Object>(), &m);
  // requestCert and rejectUnauthorized stay as the server started.
  m.request_cert = options_.tls.request_cert;
  m.reject_unauthorized = options_.tls.reject_unauthorized;
  std::shared_ptr<tls::TlsContext> context = MakeTlsContext(env, m);
  options_.tls = m;
  if (engine_) engine_->set_tls(std::move(context));
  return env.Undefined();
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
      if (!cb.IsEmpty()) CallOnNextTick(env, cb);
      break;
    case State::Stopped:
      if (!cb.IsEmpty()) CallOnNextTick(env, cb);
      break;
    case State::Stopping:
      if (!cb.IsEmpty()) stop_callbacks_.push_back(Napi::Persistent(cb));
      break;
    case State::Running: {
      state_ = State::Stopping;
      engine_->close_input();  // S14: nothing is accepted once close() began.
      if (!cb.IsEmpty()) stop_callbacks_.push_back(Napi::Persistent(cb));
      queue_.lift_backpressure();
      engine_->events_drained();  // A paused reader may go on.
      stop_deadline_ms_ = deadline;
      // Joining threads can take up to the deadline: never on the JS thread.
      ec_error err =
          ec_thread_create(&stop_thread_, &ServerWrap::StopMain, this, EC_THREAD_STACK_BYTES);
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
  QueuedEvent e;
  e.kind = QueuedEvent::Stopped;
  self->queue_.push(std::move(e));
}

void ServerWrap::EnvCleanup(void* arg) {
  ServerWrap* self = static_cast<ServerWrap*>(arg);
  self->cleanup_hook_ = false;
  self->queue_.lift_backpressure();
  if (self->stop_thread_started_) {
    ec_thread_join(&self->stop_thread_);
    self->stop_thread_started_ = false;
  }
  if (self->engine_) self->engine_->stop(0);
}

bool ServerWrap::ring() { return pump_.Ring(); }

void ServerWrap::on_connection(std::uint64_t id, const std::string& address, int port) {
  QueuedEvent e;
  e.kind = QueuedEvent::Connection;
  e.id = id;
  e.text = address;
  e.port = port;
  queue_.push(std::move(e));
}

bool ServerWrap::wants_messages() { return queue_.messages(); }

bool ServerWrap::events_room() { return queue_.room(); }

void ServerWrap::on_message(std::uint64_t id, const FrameRef& frame, bool may_wait) {
  queue_.push_message(id, frame, may_wait);
}

void ServerWrap::on_frames(std::uint64_t id, const std::uint8_t* data, std::size_t len,
                           std::size_t frames, bool may_wait) {
  queue_.push_frames(id, data, len, frames, may_wait);
}

void ServerWrap::on_disconnect(std::uint64_t id, const char* reason) {
  QueuedEvent e;
  e.kind = QueuedEvent::Disconnect;
  e.id = id;
  e.word = reason;
  queue_.push(std::move(e));
}

void ServerWrap::on_error(const ec_error& err, const char* syscall) {
  QueuedEvent e;
  e.kind = QueuedEvent::Error;
  e.word = ec_err_name(err.code);
  e.syscall = syscall;
  e.text = std::string(syscall) + " " + e.word + ": " + ec_error_message(err);
  queue_.push(std::move(e));
}

void ServerWrap::on_refusal(Refusal cause, bool ws, const std::string& address, int port,
                            const std::string& detail) {
  // Bounded: under a flood the events are dropped, never the counts.
  if (pending_refusals_.fetch_add(1, std::memory_order_relaxed) >= kMaxPendingRefusals) {
    pending_refusals_.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  QueuedEvent e;
  e.kind = QueuedEvent::Refusal;
  e.word = refusal_name(cause);
  e.syscall = ws ? "ws" : "tcp";
  e.text = address;
  e.port = port;
  if (!detail.empty()) e.strings.push_back(detail);
  queue_.push(std::move(e));
}

void ServerWrap::on_authorize(AuthorizeRequest&& r) {
  // Bounded by the connections that may wait (the handshake list's bound).
  QueuedEvent e;
  e.kind = QueuedEvent::Authorize;
  e.id = r.ticket;
  e.syscall = r.ws ? "ws" : "tcp";
  e.text = std::move(r.address);
  e.port = r.port;
  if (r.ws) {
    e.strings.reserve(2 + r.headers.size());
    e.strings.push_back(std::move(r.path));
    e.strings.push_back(std::move(r.query));
    for (std::string& h : r.headers) e.strings.push_back(std::move(h));
  } else {
    e.bytes = std::move(r.first_frame);
  }
  queue_.push(std::move(e));
}

void ServerWrap::Stopped(Napi::Env env, Napi::Error* pending, bool* threw) {
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
  pump_.Close();  // The process may exit once nothing else runs.
  Unref();
  for (Napi::FunctionReference& cb : callbacks) {
    try {
      cb.Call({});
    } catch (const Napi::Error& err) {
      if (!*threw) {
        *pending = err;
        *threw = true;
      }
    }
  }
}

void ServerWrap::Rethrow(Napi::Env env, Napi::Value error) {
  // An exception left pending in a thread-safe function's callback is only
  // reported under --force-node-api-uncaught-exceptions-policy; thrown from
  // a function called by process.nextTick it is a normal uncaught exception
  // (process 'uncaughtException', or the process ends with it).
  Napi::Function thrower = Napi::Function::New(
      env,
      [](const Napi::CallbackInfo& info) -> Napi::Value { throw Napi::Error(info.Env(), info[0]); },
      "rethrow");
  CallOnNextTick(env, thrower, {error});
}

}  // namespace echocast
