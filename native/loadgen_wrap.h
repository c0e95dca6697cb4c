// loadgen_wrap.h — the JS-facing LoadGen class (Napi::ObjectWrap) over the
// bench's native load generator (bench/loadgen.h).
//
//   const g = new addon.LoadGen({ host, port, clients, publishers, size, rate, auditors });
//   g.prepare(cb)   connect and admit every client; cb(err | null)
//   g.begin()       start publishing
//   g.mark()        { bytes, cpuMicros, framesSent }, synchronous
//   g.finish(cb)    stop, drain, close; cb(null, { framesSent, lost, orderViolations,
//                   latencyUs: { p50, p99, max }, cpuMicros, bytes, latencyCount })
//
// The generator's I/O thread never touches Napi::Env: its two completions
// (prepared, finished) reach JS through one thread-safe function, which is
// referenced (keeps the process alive) only while a completion is awaited,
// and released when the thread has been joined. Callbacks run from
// process.nextTick, so an exception in one is a normal uncaught exception.
#ifndef ECHOCAST_LOADGEN_WRAP_H
#define ECHOCAST_LOADGEN_WRAP_H

#include <napi.h>

#include <memory>
#include <vector>

#include "bench/loadgen.h"

namespace echocast {

class LoadGenWrap : public Napi::ObjectWrap<LoadGenWrap>, public bench::LoadGenListener {
 public:
  static Napi::Function Define(Napi::Env env);

  explicit LoadGenWrap(const Napi::CallbackInfo& info);
  ~LoadGenWrap() override;

  // LoadGenListener, on the generator's I/O thread.
  void on_prepared(const bench::LoadGenFailure* failure, bool last) override;
  void on_finished(const bench::LoadGenResult& result) override;

 private:
  struct Completion {
    bool finished = false;  // false: prepared.
    bool ok = true;
    bool last = false;
    bench::LoadGenFailure failure;
    bench::LoadGenResult result;
  };

  static void CallJs(Napi::Env env, Napi::Function fn, LoadGenWrap* self, Completion* c);
  typedef Napi::TypedThreadSafeFunction<LoadGenWrap, Completion, &LoadGenWrap::CallJs> Tsfn;

  Napi::Value Prepare(const Napi::CallbackInfo& info);
  Napi::Value Begin(const Napi::CallbackInfo& info);
  Napi::Value Mark(const Napi::CallbackInfo& info);
  Napi::Value Finish(const Napi::CallbackInfo& info);

  void Complete(Napi::Env env, Completion* c);
  // The thread has reported its last completion: join it, drop the TSFN,
  // the cleanup hook and the self-reference.
  void Wind(Napi::Env env);
  Napi::Object ResultObject(Napi::Env env) const;
  void Hold();
  void Letgo();
  static void EnvCleanup(void* arg);
  static void NextTick(Napi::Env env, const Napi::Function& fn,
                       const std::vector<napi_value>& args);

  enum class State { Idle, Preparing, Prepared, Finishing, Done };

  bench::LoadGenOptions options_;
  std::unique_ptr<bench::LoadGen> gen_;
  Tsfn tsfn_;
  bool tsfn_live_ = false;
  bool cleanup_hook_ = false;
  bool torn_down_ = false;
  bool held_ = false;
  bool finish_requested_ = false;
  State state_ = State::Idle;
  Napi::FunctionReference prepare_cb_;
  std::vector<Napi::FunctionReference> finish_cbs_;
  bench::LoadGenResult result_;
  napi_env env_ = nullptr;
};

}  // namespace echocast

#endif  // ECHOCAST_LOADGEN_WRAP_H
