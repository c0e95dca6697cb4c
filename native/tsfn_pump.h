// tsfn_pump.h — the one way work done on native threads reaches the JS
// thread, shared by ServerWrap and LoadGenWrap.
//
// A pump is a doorbell over a thread-safe function: a worker thread rings it
// (it never touches Napi::Env), and the JS thread then calls
// Owner::OnPump(env, fn), where the owner takes whatever its threads left for
// it (ServerWrap: its EventQueue; LoadGenWrap: its completions). Every call's
// status is checked: napi_closing (the environment is going away) stops all
// further calls, and any other failure is reported once on stderr and makes
// Ring() return false, so the owner keeps its work and rings again. A
// failed Release is reported the same way; Ref and Unref throw.
#ifndef ECHOCAST_TSFN_PUMP_H
#define ECHOCAST_TSFN_PUMP_H

#include <napi.h>

#include <atomic>
#include <cstdio>
#include <vector>

namespace echocast {

// Calls fn(args...) from process.nextTick, so that a callback is never
// synchronous and an exception it throws is a normal uncaught exception.
inline void CallOnNextTick(Napi::Env env, const Napi::Function& fn,
                           const std::vector<napi_value>& args = {}) {
  Napi::Object process = env.Global().Get("process").As<Napi::Object>();
  std::vector<napi_value> all;
  all.reserve(args.size() + 1);
  all.push_back(fn);
  for (napi_value v : args) all.push_back(v);
  process.Get("nextTick").As<Napi::Function>().Call(process, all);
}

// The pump. Owner must have `void OnPump(Napi::Env env, Napi::Function fn)`.
// Open, Ref, Unref, Close and Forget run on the JS thread; Ring on any
// thread between Open and Close.
template <typename Owner>
class TsfnPump {
 public:
  // Creates the thread-safe function (referenced: it keeps the process
  // alive until Unref or Close). `fn` is handed to OnPump.
  void Open(Napi::Env env, const Napi::Function& fn, const char* name, Owner* owner) {
    tsfn_ = Tsfn::New(env, fn, name, 0, 1, owner);
    Opened();
  }
  // The same with no JS function (OnPump gets an empty one).
  void Open(Napi::Env env, const char* name, Owner* owner) {
    tsfn_ = Tsfn::New(env, name, 0, 1, owner);
    Opened();
  }

  // Any thread: asks for one OnPump call. False when none will follow (the
  // pump is closing, or the call failed): the caller's work stays queued.
  bool Ring() {
    if (closing_.load(std::memory_order_acquire)) return false;
    napi_status status = tsfn_.NonBlockingCall();
    if (status == napi_ok) return true;
    if (status == napi_closing) {
      closing_.store(true, std::memory_order_release);
      return false;
    }
    Report(status, "napi_call_threadsafe_function (the work stays queued)");
    return false;
  }

  // Whether Open has been called and Close / Forget not yet.
  bool open() const { return open_; }

  // While unreferenced, the pump does not keep the process alive.
  // (On the JS thread: a failure of either throws a JS exception.)
  void Ref(Napi::Env env) {
    if (open_) tsfn_.Ref(env);
  }
  void Unref(Napi::Env env) {
    if (open_) tsfn_.Unref(env);
  }

  // Releases the thread-safe function, once; no thread may ring any more.
  void Close() {
    if (!open_) return;
    open_ = false;
    closing_.store(true, std::memory_order_release);
    Report(tsfn_.Release(), "napi_release_threadsafe_function");
  }
  // At environment teardown Node finalizes the function itself: only forget it.
  void Forget() {
    open_ = false;
    closing_.store(true, std::memory_order_release);
  }

 private:
  static void CallJs(Napi::Env env, Napi::Function fn, Owner* owner, void*) {
    if (env == nullptr || owner == nullptr) return;  // Tearing down.
    owner->OnPump(env, fn);
  }
  typedef Napi::TypedThreadSafeFunction<Owner, void, &TsfnPump::CallJs> Tsfn;

  // A failed call has no JS to throw to (it may be on any thread, or the
  // env may be going away): it is reported on stderr, once per pump.
  // napi_closing is no failure: the function is going away anyway.
  void Report(napi_status status, const char* call) {
    if (status == napi_ok || status == napi_closing || reported_.exchange(true)) return;
    std::fprintf(stderr, "echocast: %s failed (napi_status %d)\n", call, static_cast<int>(status));
  }

  void Opened() {
    open_ = true;
    closing_.store(false, std::memory_order_release);
  }

  Tsfn tsfn_;
  bool open_ = false;
  std::atomic<bool> closing_{false};
  std::atomic<bool> reported_{false};
};

}  // namespace echocast

#endif  // ECHOCAST_TSFN_PUMP_H
