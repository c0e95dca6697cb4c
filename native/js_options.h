// js_options.h — reading an options object from JS into a C++ struct, for
// the wrappers (server_options.cc, loadgen_wrap.cc).
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

// Reads o[key] into *out when it passes is_type, converted by get; leaves
// *out alone when it is undefined and optional; throws a TypeError naming
// the key and `type` otherwise.
template <typename T, typename Get>
void read_field(const Napi::Object& o, const char* key, T* out, Field field,
                bool (Napi::Value::*is_type)() const, const char* type, Get get) {
  Napi::Value v = o.Get(key);
  if (field == Field::Optional && v.IsUndefined()) return;
  if (!(v.*is_type)()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be " + type);
  *out = get(v);
}

// A number, as a double.
inline void read_number(const Napi::Object& o, const char* key, double* out,
                        Field field = Field::Required) {
  read_field(o, key, out, field, &Napi::Value::IsNumber, "a number",
             [](const Napi::Value& v) { return v.As<Napi::Number>().DoubleValue(); });
}

// A number, as JS's ToUint32 gives it.
inline void read_u32(const Napi::Object& o, const char* key, std::uint32_t* out,
                     Field field = Field::Required) {
  read_field(o, key, out, field, &Napi::Value::IsNumber, "a number",
             [](const Napi::Value& v) { return v.As<Napi::Number>().Uint32Value(); });
}

// A number up to 2^53 (larger ones saturate, non-finite ones read as 0).
inline void read_u64(const Napi::Object& o, const char* key, std::uint64_t* out,
                     Field field = Field::Required) {
  read_field(o, key, out, field, &Napi::Value::IsNumber, "a number", [](const Napi::Value& v) {
    return static_cast<std::uint64_t>(v.As<Napi::Number>().Int64Value());
  });
}

// A string, as UTF-8.
inline void read_string(const Napi::Object& o, const char* key, std::string* out,
                        Field field = Field::Required) {
  read_field(o, key, out, field, &Napi::Value::IsString, "a string",
             [](const Napi::Value& v) { return v.As<Napi::String>().Utf8Value(); });
}

// A boolean.
inline void read_bool(const Napi::Object& o, const char* key, bool* out,
                      Field field = Field::Required) {
  read_field(o, key, out, field, &Napi::Value::IsBoolean, "a boolean",
             [](const Napi::Value& v) { return v.As<Napi::Boolean>().Value(); });
}

}  // namespace echocast

#endif  // ECHOCAST_JS_OPTIONS_H
