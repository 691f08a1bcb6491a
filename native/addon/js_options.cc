#include "addon/js_options.h"

#include <cmath>

namespace u2pl::addon {
namespace {

Napi::TypeError Bad(const Napi::Object& o, const char* what, const char* key, const char* expected) {
  return Napi::TypeError::New(o.Env(), std::string(what) + " '" + key + "' must be " + expected);
}

}  // namespace

bool OptBool(const Napi::Object& o, const char* key, bool fallback, const char* what) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throw Bad(o, what, key, "a boolean");
  return v.As<Napi::Boolean>().Value();
}

int64_t OptInt(const Napi::Object& o, const char* key, int64_t fallback, const char* what) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(d) || d != std::floor(d)) throw Bad(o, what, key, "an integer");
  return static_cast<int64_t>(d);
}

double OptDouble(const Napi::Object& o, const char* key, double fallback, const char* what) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) throw Bad(o, what, key, "a number");
  return v.As<Napi::Number>().DoubleValue();
}

std::vector<double> OptNumbers(const Napi::Object& o, const char* key, const char* what) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return {};
  if (!v.IsArray()) throw Bad(o, what, key, "an array of numbers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<double> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    if (!a.Get(i).IsNumber()) throw Bad(o, what, key, "an array of numbers");
    out.push_back(a.Get(i).As<Napi::Number>().DoubleValue());
  }
  return out;
}

std::string OptString(const Napi::Object& o, const char* key, const std::string& fallback, const char* what) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) throw Bad(o, what, key, "a string");
  return v.As<Napi::String>().Utf8Value();
}

Napi::Object ObjectArg(const Napi::CallbackInfo& info, size_t index, const char* fn) {
  if (info.Length() <= index || !info[index].IsObject())
    throw Napi::TypeError::New(info.Env(), std::string(fn) + " expects an options object");
  return info[index].As<Napi::Object>();
}

}  // namespace u2pl::addon
