// tsfn_pump.h — the one way work done on native threads reaches the JS
// thread, shared by ServerWrap and LoadGenWrap.
//
// A pump is a doorbell over a thread-safe function: a worker thread rings it
// (it never touches Napi::Env), and the JS thread then calls
// PumpTarget::OnPump(env, fn), where the owner takes whatever its threads
// left for it (ServerWrap: its EventQueue; LoadGenWrap: its completions).
// Every call's status is checked: napi_closing (the environment is going
// away) stops all further calls, and any other failure is reported once on
// stderr and makes Ring() return false, so the owner keeps its work and
// rings again. A failed Release is reported the same way; Ref and Unref
// throw (they run on the JS thread).
#ifndef ECHOCAST_TSFN_PUMP_H
#define ECHOCAST_TSFN_PUMP_H

#include <napi.h>

#include <atomic>
#include <vector>

namespace echocast {

// Calls fn(args...) from process.nextTick, so that a callback is never
// synchronous and an exception it throws is a normal uncaught exception.
void CallOnNextTick(Napi::Env env, const Napi::Function& fn,
                    const std::vector<napi_value>& args = {});

// Whoever a pump works for.
class PumpTarget {
 public:
  virtual ~PumpTarget() = default;
  // On the JS thread, after one or more rings; `fn` is the JS function the
  // pump was opened with (empty if none).
  virtual void OnPump(Napi::Env env, Napi::Function fn) = 0;
};

// The pump. Open, Ref, Unref, Close and Forget run on the JS thread; Ring on
// any thread between Open and Close.
class TsfnPump {
 public:
  // Creates the thread-safe function (referenced: it keeps the process
  // alive until Unref or Close). `fn` is handed to OnPump.
  void Open(Napi::Env env, const Napi::Function& fn, const char* name, PumpTarget* target);
  // The same with no JS function (OnPump gets an empty one).
  void Open(Napi::Env env, const char* name, PumpTarget* target);

  // Any thread: asks for one OnPump call. False when none will follow (the
  // pump is closing, or the call failed): the caller's work stays queued.
  bool Ring();

  // Whether Open has been called and Close / Forget not yet.
  bool open() const { return open_; }

  // While unreferenced, the pump does not keep the process alive.
  void Ref(Napi::Env env);
  void Unref(Napi::Env env);

  // Releases the thread-safe function, once; no thread may ring any more.
  void Close();
  // At environment teardown Node finalizes the function itself: only forget it.
  void Forget();

 private:
  static void CallJs(Napi::Env env, Napi::Function fn, PumpTarget* target, void*);
  typedef Napi::TypedThreadSafeFunction<PumpTarget, void, &TsfnPump::CallJs> Tsfn;

  // A failed call has no JS to throw to (it may be on any thread, or the
  // env may be going away): it is reported on stderr, once per pump.
  // napi_closing is no failure: the function is going away anyway.
  void Report(napi_status status, const char* call);
  void Opened();

  Tsfn tsfn_;
  bool open_ = false;
  std::atomic<bool> closing_{false};
  std::atomic<bool> reported_{false};
};

}  // namespace echocast

#endif  // ECHOCAST_TSFN_PUMP_H
