// server_options.cc — the addon's reading of `new Server(options, onEvents)`'s
// options object into EngineOptions (declared in server_wrap.h): types only,
// with js_options.h's backstops; src/options.ts validated and defaulted them.
// docs/architecture.md says which file owns which rule.
#include <cstring>
#include <string>

#include "js_options.h"
#include "server_wrap.h"

namespace echocast {

void read_server_options(const Napi::Object& o, EngineOptions* out, std::string* engine) {
  read_string(o, "engine", engine);
  if (*engine != "native-threads" && *engine != "native-poll")
    throw Napi::TypeError::New(o.Env(), "engine must be one of addon.engines");
  read_string(o, "host", &out->host);
  std::uint32_t port = 0;
  read_u32(o, "port", &port);
  out->port = static_cast<int>(port);
  std::string framing;
  read_string(o, "framing", &framing);
  if (!parse_framing(framing.c_str(), &out->framing))
    throw Napi::TypeError::New(o.Env(), "framing must be 'line', 'raw' or 'length'");
  read_u32(o, "replay", &out->replay);
  read_bool(o, "echoToSender", &out->echo_to_sender);
  read_u64(o, "maxFrameBytes", &out->max_frame_bytes);
  read_u64(o, "maxBacklogBytes", &out->max_backlog_bytes);
  read_u64(o, "slowConsumerMs", &out->slow_consumer_ms);
  read_bool(o, "allowHalfOpen", &out->allow_half_open);
  read_u32(o, "maxClients", &out->max_clients);
  // docs/contract.md §6: the WebSocket listener (wsPort -1 or absent: none).
  double ws_port = -1;
  read_number(o, "wsPort", &ws_port, Field::Optional);
  out->ws_port = ws_port >= 0 && ws_port <= 65535 ? static_cast<int>(ws_port) : -1;
  out->ws_host = out->host;
  read_string(o, "wsHost", &out->ws_host, Field::Optional);
  read_string(o, "wsPath", &out->ws_path, Field::Optional);
  read_string(o, "wsPage", &out->ws_page, Field::Optional);
  read_string(o, "wsPageHeaders", &out->ws_page_headers, Field::Optional);
  // docs/contract.md S15: who may connect (src/access.ts made the lists).
  for (const char* key : {"allow", "deny"}) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined()) continue;
    if (!v.IsBuffer()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a Buffer");
    Napi::Buffer<std::uint8_t> b = v.As<Napi::Buffer<std::uint8_t>>();
    AddressList* list = std::strcmp(key, "allow") == 0 ? &out->allow : &out->deny;
    if (!list->parse(b.Data(), b.Length()))
      throw Napi::TypeError::New(o.Env(), std::string(key) + " must hold 18-byte address records");
  }
  Napi::Value origins = o.Get("wsOrigins");
  if (!origins.IsUndefined()) {
    if (!origins.IsArray()) throw Napi::TypeError::New(o.Env(), "wsOrigins must be an array");
    Napi::Array list = origins.As<Napi::Array>();
    for (std::uint32_t i = 0; i < list.Length(); ++i) {
      Napi::Value e = list.Get(i);
      if (!e.IsString()) throw Napi::TypeError::New(o.Env(), "wsOrigins must hold strings");
      out->ws_origins.push_back(e.As<Napi::String>().Utf8Value());
    }
  }
  read_string(o, "authToken", &out->auth_token, Field::Optional);
  read_u64(o, "authTimeoutMs", &out->auth_timeout_ms, Field::Optional);
  read_u64(o, "handshakeTimeoutMs", &out->handshake_timeout_ms, Field::Optional);
  read_bool(o, "authorize", &out->authorize, Field::Optional);
  read_bool(o, "refuseHttp", &out->refuse_http, Field::Optional);
  // docs/contract.md S17 (src/options.ts loaded the material once already).
  Napi::Value t = o.Get("tls");
  if (!t.IsUndefined() && !t.IsNull()) {
    if (!t.IsObject()) throw Napi::TypeError::New(o.Env(), "tls must be an object");
    read_tls_material(t.As<Napi::Object>(), &out->tls);
    out->has_tls = true;
  }
}

namespace {

// PEM text: a string or a Buffer.
bool read_pem(const Napi::Value& v, std::string* out) {
  if (v.IsString()) {
    *out += v.As<Napi::String>().Utf8Value();
    return true;
  }
  if (v.IsBuffer()) {
    Napi::Buffer<char> b = v.As<Napi::Buffer<char>>();
    out->append(b.Data(), b.Length());
    return true;
  }
  return false;
}

}  // namespace

void read_tls_material(const Napi::Object& t, tls::TlsMaterial* out) {
  Napi::Env env = t.Env();
  if (!read_pem(t.Get("cert"), &out->cert) || !read_pem(t.Get("key"), &out->key))
    throw Napi::TypeError::New(env, "tls.cert and tls.key must be PEM strings or Buffers");
  Napi::Value ca = t.Get("ca");
  if (!ca.IsUndefined() && !ca.IsNull()) {
    if (ca.IsArray()) {
      Napi::Array list = ca.As<Napi::Array>();
      for (std::uint32_t i = 0; i < list.Length(); ++i) {
        if (!read_pem(list.Get(i), &out->ca))
          throw Napi::TypeError::New(env, "tls.ca must hold PEM strings or Buffers");
        out->ca += "\n";
      }
    } else if (!read_pem(ca, &out->ca)) {
      throw Napi::TypeError::New(env, "tls.ca must be PEM text or an array of it");
    }
  }
  Napi::Value passphrase = t.Get("passphrase");
  if (!passphrase.IsUndefined() && !passphrase.IsNull()) {
    if (!passphrase.IsString()) throw Napi::TypeError::New(env, "tls.passphrase must be a string");
    out->passphrase = passphrase.As<Napi::String>().Utf8Value();
    out->has_passphrase = true;
  }
  read_bool(t, "requestCert", &out->request_cert, Field::Optional);
  read_bool(t, "rejectUnauthorized", &out->reject_unauthorized, Field::Optional);
}

}  // namespace echocast
