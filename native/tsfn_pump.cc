// tsfn_pump.cc — see tsfn_pump.h.
#include "tsfn_pump.h"

#include <cstdio>

namespace echocast {

void CallOnNextTick(Napi::Env env, const Napi::Function& fn, const std::vector<napi_value>& args) {
  Napi::Object process = env.Global().Get("process").As<Napi::Object>();
  std::vector<napi_value> all;
  all.reserve(args.size() + 1);
  all.push_back(fn);
  for (napi_value v : args) all.push_back(v);
  process.Get("nextTick").As<Napi::Function>().Call(process, all);
}

void TsfnPump::Open(Napi::Env env, const Napi::Function& fn, const char* name, PumpTarget* target) {
  tsfn_ = Tsfn::New(env, fn, name, 0, 1, target);
  Opened();
}

void TsfnPump::Open(Napi::Env env, const char* name, PumpTarget* target) {
  tsfn_ = Tsfn::New(env, name, 0, 1, target);
  Opened();
}

void TsfnPump::Opened() {
  open_ = true;
  closing_.store(false, std::memory_order_release);
}

bool TsfnPump::Ring() {
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

void TsfnPump::Ref(Napi::Env env) {
  if (open_) tsfn_.Ref(env);
}

void TsfnPump::Unref(Napi::Env env) {
  if (open_) tsfn_.Unref(env);
}

void TsfnPump::Close() {
  if (!open_) return;
  open_ = false;
  closing_.store(true, std::memory_order_release);
  Report(tsfn_.Release(), "napi_release_threadsafe_function");
}

void TsfnPump::Forget() {
  open_ = false;
  closing_.store(true, std::memory_order_release);
}

void TsfnPump::CallJs(Napi::Env env, Napi::Function fn, PumpTarget* target, void*) {
  if (env == nullptr || target == nullptr) return;  // Tearing down.
  target->OnPump(env, fn);
}

void TsfnPump::Report(napi_status status, const char* call) {
  if (status == napi_ok || status == napi_closing || reported_.exchange(true)) return;
  std::fprintf(stderr, "echocast: %s failed (napi_status %d)\n", call, static_cast<int>(status));
}

}  // namespace echocast
