// addon.cc — the module's entry point: exports the Server and LoadGen
// classes, the list of engines this build has, the platform layer's name,
// the tables of disconnect reasons and error codes, and setErrorClass().
#include <napi.h>

#include "core/access.h"
#include "core/error_codes.h"
#include "core/reasons.h"
#include "core/tls/tls.h"
#include "platform/platform.h"
#include "loadgen_wrap.h"
#include "server_wrap.h"

namespace echocast {
namespace {

// setErrorClass(ctor): errors the addon throws or reports are then built as
// `new ctor(message, code)`; passing a non-function clears it.
Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  AddonData* data = info.Env().GetInstanceData<AddonData>();
  if (info.Length() > 0 && info[0].IsFunction()) {
    data->error_class = Napi::Persistent(info[0].As<Napi::Function>());
  } else {
    data->error_class.Reset();
  }
  return info.Env().Undefined();
}

// The disconnect reasons of core/reasons.h, in their order.
Napi::Array ReasonNames(Napi::Env env) {
  Napi::Array out = Napi::Array::New(env, kReasonCount);
  for (std::size_t i = 0; i < kReasonCount; ++i)
    out.Set(static_cast<std::uint32_t>(i), reason_name(static_cast<Reason>(i)));
  return out;
}

// The refusal causes of core/access.h, in their order (docs/contract.md S15).
Napi::Array RefusalCauseNames(Napi::Env env) {
  Napi::Array out = Napi::Array::New(env, kRefusalCount);
  for (std::size_t i = 0; i < kRefusalCount; ++i)
    out.Set(static_cast<std::uint32_t>(i), refusal_name(static_cast<Refusal>(i)));
  return out;
}

// Every code an error of the addon can carry: its own (core/error_codes.h),
// then the system's names (platform/error_table.def, and UNKNOWN), in enum
// order. EC_OK names no error, so it is left out.
Napi::Array ErrorCodeNames(Napi::Env env) {
  Napi::Array out = Napi::Array::New(env);
  std::uint32_t n = 0;
  for (const char* code : kErrorCodes) out.Set(n++, code);
  for (int code = EC_OK + 1; code <= EC_EUNKNOWN; ++code)
    out.Set(n++, ec_err_name(static_cast<ec_err>(code)));
  return out;
}

}  // namespace

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<AddonData>(new AddonData());
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  Napi::Array engines = Napi::Array::New(env, 2);
  engines.Set(0u, "native-threads");
  engines.Set(1u, "native-poll");
  exports.Set("engines", engines);
  exports.Set("platform", ec_platform_name());
  // Which readiness mechanism native-poll uses here: epoll, poll or WSAPoll.
  exports.Set("poller", ec_poller_backend());
  // The tables TypeScript checks its own against (test/unit/addon-tables.test.ts).
  exports.Set("reasons", ReasonNames(env));
  exports.Set("refusalCauses", RefusalCauseNames(env));
  exports.Set("errorCodes", ErrorCodeNames(env));
  // Whether the OpenSSL the host exports passes the TLS layer's check at
  // load (core/tls/tls.h; docs/architecture.md, "TLS: which OpenSSL").
  const tls::TlsSupport& tls_support = tls::tls_support();
  // What this build can do beyond the basics (src/engines/load-addon.ts):
  // 'websocket' (docs/contract.md §6), which both native engines speak, and
  // 'tls' (S17) when the host's OpenSSL passed that check: both engines'
  // connections then have the layer in core/connection.h.
  Napi::Array features = Napi::Array::New(env);
  features.Set(0u, "websocket");
  if (tls_support.usable) features.Set(1u, "tls");
  exports.Set("features", features);
  Napi::Object tls_info = Napi::Object::New(env);
  tls_info.Set("openssl", tls_support.usable);
  tls_info.Set("reason", tls_support.reason);
  tls_info.Set("runtimeVersion", tls_support.runtime_version);
  tls_info.Set("headerVersion", tls_support.header_version);
  exports.Set("tlsSupport", tls_info);
  // The engines that speak TLS here (each passes test/tls/): both, or none
  // when the host's OpenSSL did not pass the check.
  Napi::Array tls_engines = Napi::Array::New(env);
  if (tls_support.usable) {
    tls_engines.Set(0u, "native-threads");
    tls_engines.Set(1u, "native-poll");
  }
  exports.Set("tlsEngines", tls_engines);
  exports.Set("Server", ServerWrap::Define(env));
  // The bench's native load generator (native/bench/loadgen.h).
  exports.Set("LoadGen", LoadGenWrap::Define(env));
  return exports;
}

}  // namespace echocast

// NODE_API_MODULE needs an unqualified name.
static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  return echocast::InitAddon(env, exports);
}

NODE_API_MODULE(echocast, Init)
