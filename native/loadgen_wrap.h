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
// (prepared, finished) wait in a mailbox and reach JS through a TsfnPump
// (tsfn_pump.h), which is referenced (keeps the process alive) only while a
// completion is awaited, and closed when the thread has been joined.
// Callbacks run from process.nextTick, so an exception in one is a normal
// uncaught exception.
#ifndef ECHOCAST_LOADGEN_WRAP_H
#define ECHOCAST_LOADGEN_WRAP_H

#include <napi.h>

#include <memory>
#include <vector>

#include "bench/loadgen.h"
#include "platform/platform.h"
#include "tsfn_pump.h"

namespace echocast {

// The LoadGen class exported by the addon.
class LoadGenWrap : public Napi::ObjectWrap<LoadGenWrap>,
                    public bench::LoadGenListener,
                    public PumpTarget {
 public:
  // Defines the JS class.
  static Napi::Function Define(Napi::Env env);

  // new LoadGen(options): fields may be left out (the core's defaults
  // apply); their types are checked here, their ranges once, by
  // bench::validate_options.
  explicit LoadGenWrap(const Napi::CallbackInfo& info);
  ~LoadGenWrap() override;

  // LoadGenListener, on the generator's I/O thread.
  void on_prepared(const bench::LoadGenFailure* failure, bool last) override;
  void on_finished(const bench::LoadGenResult& result) override;

  // TsfnPump's JS-thread side: handles every completion in the mailbox.
  void OnPump(Napi::Env env, Napi::Function fn) override;

 private:
  // One completion, as the I/O thread reported it.
  struct Completion {
    bool finished = false;  // false: prepared.
    bool ok = true;
    bool last = false;
    bench::LoadGenFailure failure;
    bench::LoadGenResult result;
  };

  Napi::Value Prepare(const Napi::CallbackInfo& info);
  Napi::Value Begin(const Napi::CallbackInfo& info);
  Napi::Value Mark(const Napi::CallbackInfo& info);
  Napi::Value Finish(const Napi::CallbackInfo& info);

  // I/O thread: leaves a completion in the mailbox and rings the pump (a
  // failed ring leaves it there for the next one).
  void Post(Completion&& c);
  // Handles one completion on the JS thread.
  void Complete(Napi::Env env, const Completion& c);
  // The thread has reported its last completion: join it, close the pump,
  // drop the cleanup hook and the self-reference.
  void Wind(Napi::Env env);
  Napi::Object ResultObject(Napi::Env env) const;
  // Holds (or drops) a reference to this object while a completion is
  // awaited, so it cannot be collected under the thread.
  void Hold();
  void Letgo();
  // Env teardown: ends the thread while the pump's function still exists.
  static void EnvCleanup(void* arg);

  enum class State { Idle, Preparing, Prepared, Finishing, Done };

  bench::LoadGenOptions options_;
  std::unique_ptr<bench::LoadGen> gen_;
  TsfnPump pump_;
  bool cleanup_hook_ = false;
  bool held_ = false;
  bool finish_requested_ = false;
  State state_ = State::Idle;
  Napi::FunctionReference prepare_cb_;
  std::vector<Napi::FunctionReference> finish_cbs_;
  bench::LoadGenResult result_;
  napi_env env_ = nullptr;
  // Completions from the I/O thread not yet handled on the JS thread.
  ec_mutex_t mailbox_mutex_;
  std::vector<Completion> mailbox_;  // Under mailbox_mutex_.
};

}  // namespace echocast

#endif  // ECHOCAST_LOADGEN_WRAP_H
