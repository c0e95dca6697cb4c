// server_wrap.h — the JS-facing Server class (Napi::ObjectWrap), written
// over server_wrap.cc (lifecycle, calls from JS, the EventSink),
// server_options.cc (its options) and server_events.cc (events to JS). One
// of the files that see Node-API (with addon.cc, loadgen_wrap.*, tsfn_pump.*
// and js_options.h); docs/architecture.md says which file owns which rule.
//
// It owns a core Engine, the EventQueue its threads report into
// (core/event_queue.h: order, batching, the bound on bytes waiting for JS)
// and the TsfnPump that brings each batch to the JS thread: engine threads
// never touch Napi::Env.
#ifndef ECHOCAST_SERVER_WRAP_H
#define ECHOCAST_SERVER_WRAP_H

#include <napi.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/engine.h"
#include "core/event_queue.h"
#include "platform/platform.h"
#include "tsfn_pump.h"

namespace echocast {

// Per-environment state of the addon (worker_threads each get their own).
struct AddonData {
  // The class errors are built from, set by setErrorClass(); empty means a
  // plain Error with a `code` property.
  Napi::FunctionReference error_class;
};

// Builds an error the way JS expects it: `new ErrorClass(message, code)` or
// a plain Error, with `code` and, when given, `syscall`, `address`, `port`.
Napi::Value MakeError(Napi::Env env, const std::string& message, const std::string& code,
                      const char* syscall = nullptr, const std::string* address = nullptr,
                      int port = -1);

// Reads the options object of `new Server(options, onEvents)` (the engine's
// name into *engine): every field is required, as src/engines/native.ts
// passes them all (server_options.cc).
void read_server_options(const Napi::Object& o, EngineOptions* out, std::string* engine);
// docs/contract.md S17: a `tls` object ({ cert, key, ca?, passphrase?,
// requestCert?, rejectUnauthorized? }, PEM as strings or Buffers) into *out.
void read_tls_material(const Napi::Object& t, tls::TlsMaterial* out);

// The Server class exported by the addon.
class ServerWrap : public Napi::ObjectWrap<ServerWrap>,
                   public EventSink,
                   public EventWaker,
                   public PumpTarget {
 public:
  // Defines the JS class.
  static Napi::Function Define(Napi::Env env);

  // new Server(options, onEvents): options are the ones src/options.ts
  // resolved (every field present); only their types are checked here.
  explicit ServerWrap(const Napi::CallbackInfo& info);
  ~ServerWrap() override;

  // EventSink, called from engine threads: everything goes to queue_.
  void on_connection(std::uint64_t id, const std::string& address, int port) override;
  bool wants_messages() override;
  void on_message(std::uint64_t id, const FrameRef& frame, bool may_wait) override;
  void on_frames(std::uint64_t id, const std::uint8_t* data, std::size_t len, std::size_t frames,
                 bool may_wait) override;
  bool events_room() override;
  void on_disconnect(std::uint64_t id, const char* reason) override;
  void on_error(const ec_error& err, const char* syscall) override;
  void on_refusal(Refusal cause, bool ws, const std::string& address, int port,
                  const std::string& detail) override;
  void on_authorize(AuthorizeRequest&& request) override;

  // EventWaker, called from any thread by queue_: rings the pump.
  bool ring() override;

  // TsfnPump's JS-thread side: converts and delivers everything queued.
  void OnPump(Napi::Env env, Napi::Function fn) override;

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Broadcast(const Napi::CallbackInfo& info);
  Napi::Value SetMessageEvents(const Napi::CallbackInfo& info);
  Napi::Value SetForward(const Napi::CallbackInfo& info);
  Napi::Value Inject(const Napi::CallbackInfo& info);
  Napi::Value Disconnect(const Napi::CallbackInfo& info);
  Napi::Value AuthorizeAnswer(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  // setTLS(tls): new material for connections accepted from now on.
  Napi::Value SetTls(const Napi::CallbackInfo& info);
  // The server context for `m`, or an ECHOCAST_INVALID_OPTION error naming
  // the reason (never the key's text).
  std::shared_ptr<tls::TlsContext> MakeTlsContext(Napi::Env env, const tls::TlsMaterial& m);

  // Converts one queued event to the object JS gets.
  static Napi::Object EventObject(Napi::Env env, QueuedEvent& e);
  // After the Stopped marker: joins the stop thread, releases the pump and
  // the self-reference, and runs stop()'s callbacks (the first exception
  // one throws goes to *pending, unless *threw already).
  void Stopped(Napi::Env env, Napi::Error* pending, bool* threw);
  // Runs engine->stop() on the stop thread, then queues the Stopped marker.
  static void StopMain(void* arg);
  // Env teardown (process exit with the server running): stop synchronously
  // so no engine thread outlives the environment.
  static void EnvCleanup(void* arg);
  // Throws `error` from process.nextTick, so an exception from a JS
  // listener surfaces as a normal uncaught exception.
  static void Rethrow(Napi::Env env, Napi::Value error);

  enum class State { Idle, Running, Stopping, Stopped };

  EngineOptions options_;
  // "native-threads" or "native-poll".
  std::string engine_name_;
  std::unique_ptr<Engine> engine_;
  Napi::FunctionReference on_events_;
  TsfnPump pump_;
  // Declared after pump_: the queue rings it.
  EventQueue queue_{this};
  State state_ = State::Idle;  // JS thread only.
  std::vector<Napi::FunctionReference> stop_callbacks_;
  ec_thread_t stop_thread_;
  bool stop_thread_started_ = false;
  std::uint64_t stop_deadline_ms_ = 0;
  bool cleanup_hook_ = false;
  // docs/contract.md S15: refusal events waiting for JS. A flood of
  // refusals must not grow memory: past kMaxPendingRefusals their events
  // are dropped (the counts in stats() stay exact).
  static constexpr std::uint64_t kMaxPendingRefusals = 1024;
  std::atomic<std::uint64_t> pending_refusals_{0};

  // Cluster mode, as last set by JS (applied to the engine when it starts).
  bool forward_ = false;
  // inject() calls made before start(), applied by start() (JS thread only).
  std::vector<std::pair<std::vector<std::uint8_t>, std::uint64_t>> early_injects_;
};

}  // namespace echocast

#endif  // ECHOCAST_SERVER_WRAP_H
