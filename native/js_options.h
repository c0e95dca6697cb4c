// js_options.h — reading an options object from JS into a C++ struct, for
// the wrappers (server_wrap.cc, loadgen_wrap.cc).
//
// TypeScript validates and defaults options (src/options.ts), so these are a
// short backstop: a field of the wrong type is a terse TypeError ("port must
// be a number"); no range is checked here. Numbers are converted with
// Node-API's own conversions, which are defined for every number, so a value
// that slipped past TypeScript cannot cause undefined behaviour.
#ifndef ECHOCAST_JS_OPTIONS_H
#define ECHOCAST_JS_OPTIONS_H

#include <napi.h>

#include <cstdint>
#include <string>

namespace echocast {

// Whether a field may be left out (undefined): the struct's default stays.
enum class Field { Required, Optional };

// Gets o[key] checked with is_type; false when it is undefined and optional.
template <typename Check>
bool read_field(const Napi::Object& o, const char* key, Field field, Check is_type,
                const char* type, Napi::Value* out) {
  *out = o.Get(key);
  if (field == Field::Optional && out->IsUndefined()) return false;
  if (!is_type(*out)) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be " + type);
  return true;
}

// A number, as a double.
inline void read_number(const Napi::Object& o, const char* key, double* out,
                        Field field = Field::Required) {
  Napi::Value v;
  if (read_field(o, key, field, [](const Napi::Value& x) { return x.IsNumber(); }, "a number", &v))
    *out = v.As<Napi::Number>().DoubleValue();
}

// A number, as JS's ToUint32 gives it.
inline void read_u32(const Napi::Object& o, const char* key, std::uint32_t* out,
                     Field field = Field::Required) {
  Napi::Value v;
  if (read_field(o, key, field, [](const Napi::Value& x) { return x.IsNumber(); }, "a number", &v))
    *out = v.As<Napi::Number>().Uint32Value();
}

// A number up to 2^53 (larger ones saturate, non-finite ones read as 0).
inline void read_u64(const Napi::Object& o, const char* key, std::uint64_t* out,
                     Field field = Field::Required) {
  Napi::Value v;
  if (read_field(o, key, field, [](const Napi::Value& x) { return x.IsNumber(); }, "a number", &v))
    *out = static_cast<std::uint64_t>(v.As<Napi::Number>().Int64Value());
}

// A string, as UTF-8.
inline void read_string(const Napi::Object& o, const char* key, std::string* out,
                        Field field = Field::Required) {
  Napi::Value v;
  if (read_field(o, key, field, [](const Napi::Value& x) { return x.IsString(); }, "a string", &v))
    *out = v.As<Napi::String>().Utf8Value();
}

// A boolean.
inline void read_bool(const Napi::Object& o, const char* key, bool* out,
                      Field field = Field::Required) {
  Napi::Value v;
  if (read_field(o, key, field, [](const Napi::Value& x) { return x.IsBoolean(); }, "a boolean", &v))
    *out = v.As<Napi::Boolean>().Value();
}

}  // namespace echocast

#endif  // ECHOCAST_JS_OPTIONS_H
