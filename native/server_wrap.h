// server_wrap.h — the JS-facing Server class (Napi::ObjectWrap). One of the
// two files that see Node-API (with addon.cc).
//
// It owns a core Engine and the event pump: engine threads never touch
// Napi::Env. They append events to a queue guarded by a mutex, and the push
// that makes the queue non-empty triggers one call of a thread-safe function;
// that call, on the JS thread, takes the whole queue and hands it to JS as
// one batch, in order.
#ifndef ECHOCAST_SERVER_WRAP_H
#define ECHOCAST_SERVER_WRAP_H

#include <napi.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/engine.h"
#include "platform/platform.h"

namespace echocast {

// Per-environment state of the addon (worker_threads each get their own).
struct AddonData {
  // The class errors are built from, set by setErrorClass(); empty means a
  // plain Error with a `code` property.
  Napi::FunctionReference error_class;
};

// Builds an error the way JS expects it: `new ErrorClass(message, code)` or
// a plain Error, with `code` and, when given, `syscall`, `address`, `port`.
Napi::Value MakeError(Napi::Env env, const std::string& message,
                      const std::string& code, const char* syscall = nullptr,
                      const std::string* address = nullptr, int port = -1);

// The Server class exported by the addon.
class ServerWrap : public Napi::ObjectWrap<ServerWrap>, public EventSink {
 public:
  // Defines the JS class.
  static Napi::Function Define(Napi::Env env);

  // new Server(options, onEvents): validates (backstop) and stores options.
  explicit ServerWrap(const Napi::CallbackInfo& info);
  ~ServerWrap() override;

  // EventSink, called from engine threads.
  void on_connection(std::uint64_t id, const std::string& address,
                     int port) override;
  bool wants_messages() override;
  void on_message(std::uint64_t id, const FrameRef& frame, bool may_wait) override;
  void on_frames(std::uint64_t id, const std::uint8_t* data, std::size_t len,
                 std::size_t frames, bool may_wait) override;
  bool events_room() override;
  void on_disconnect(std::uint64_t id, const char* reason) override;
  void on_error(const ec_error& err, const char* syscall) override;

 private:
  // One event waiting for JS; `kind` selects the fields that matter.
  struct Event {
    enum Kind { Connection, Message, Frames, Disconnect, Error, Stopped } kind;
    std::uint64_t id = 0;
    std::string text;       // Address (Connection) or error message (Error).
    const char* word = "";  // Reason (Disconnect), code (Error).
    const char* syscall = nullptr;
    int port = 0;
    FrameRef frame;         // Message.
    std::vector<std::uint8_t> bytes;  // Frames: wire form.
    std::size_t frames = 0;           // Frames: how many.
  };

  // The thread-safe function's JS-thread side.
  static void CallJs(Napi::Env env, Napi::Function fn, ServerWrap* self,
                     void* data);
  typedef Napi::TypedThreadSafeFunction<ServerWrap, void, &ServerWrap::CallJs> Tsfn;

  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Broadcast(const Napi::CallbackInfo& info);
  Napi::Value SetMessageEvents(const Napi::CallbackInfo& info);
  Napi::Value SetForward(const Napi::CallbackInfo& info);
  Napi::Value Inject(const Napi::CallbackInfo& info);
  Napi::Value Disconnect(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);

  // Waits (with may_wait) until `size` more event bytes fit under the bound,
  // then counts them as pending. Called with queue_mutex_ held.
  void ReserveLocked(std::uint64_t size, bool may_wait, bool messages);
  // Queues an event; triggers the thread-safe function when the queue was
  // empty, so JS gets events in batches.
  void Push(Event&& event);
  // On the JS thread: converts and delivers everything queued.
  void Deliver(Napi::Env env, Napi::Function fn);
  // Runs engine->stop() on the stop thread, then queues the Stopped marker.
  static void StopMain(void* arg);
  // Env teardown (process exit with the server running): stop synchronously
  // so no engine thread outlives the environment.
  static void EnvCleanup(void* arg);
  // Throws `error` from process.nextTick, so an exception from a JS
  // listener surfaces as a normal uncaught exception.
  static void Rethrow(Napi::Env env, Napi::Value error);
  // Calls fn on the next tick (so stop's callback is never synchronous).
  static void NextTick(Napi::Env env, const Napi::Function& fn);

  enum class State { Idle, Running, Stopping, Stopped };

  EngineOptions options_;
  // "native-threads" or "native-poll".
  std::string engine_name_ = "native-threads";
  std::unique_ptr<Engine> engine_;
  Napi::FunctionReference on_events_;
  Tsfn tsfn_;
  State state_ = State::Idle;  // JS thread only.
  std::vector<Napi::FunctionReference> stop_callbacks_;
  ec_thread_t stop_thread_;
  bool stop_thread_started_ = false;
  std::uint64_t stop_deadline_ms_ = 0;
  bool cleanup_hook_ = false;
  napi_env env_ = nullptr;

  // `message` events are produced only while this is true.
  std::atomic<bool> messages_enabled_{false};
  // Cluster mode, as last set by JS (applied to the engine when it starts).
  bool forward_ = false;
  // inject() calls made before start(), applied by start() (JS thread only).
  std::vector<std::pair<std::vector<std::uint8_t>, std::uint64_t>> early_injects_;

  // The event queue. Message payloads and forwarded frames waiting for JS
  // are bounded by kMaxPendingMessageBytes: a reader thread that would pass
  // it waits on queue_cond_ (backpressure on that client) until JS catches
  // up, unless (for messages) message events are turned off or the server
  // is stopping; the poll engine instead stops reading while
  // events_room() is false.
  ec_mutex_t queue_mutex_;
  ec_cond_t queue_cond_;
  std::vector<Event> queue_;
  std::uint64_t pending_message_bytes_ = 0;
  bool no_backpressure_ = false;
};

}  // namespace echocast

#endif  // ECHOCAST_SERVER_WRAP_H
