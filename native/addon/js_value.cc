#include "addon/js_value.h"

#include <cmath>

#include <ATen/ATen.h>

#include "addon/js_tensor.h"

namespace u2pl::addon {

Napi::Value ValueToJs(Napi::Env env, const io::ValuePtr& v) {
  using K = io::Value::Kind;
  switch (v->kind) {
    case K::None: return env.Null();
    case K::Bool: return Napi::Boolean::New(env, v->boolean);
    case K::Int:
      if (std::abs(v->integer) <= (int64_t{1} << 53)) return Napi::Number::New(env, static_cast<double>(v->integer));
      return Napi::BigInt::New(env, v->integer);
    case K::Float: return Napi::Number::New(env, v->number);
    case K::String: return Napi::String::New(env, v->text);
    case K::Bytes: return Napi::Buffer<char>::Copy(env, v->text.data(), v->text.size());
    case K::Tensor: return TensorToJs(env, v->tensor.clone());
    case K::List:
    case K::Tuple: {
      Napi::Array out = Napi::Array::New(env, v->items.size());
      for (size_t i = 0; i < v->items.size(); ++i) out.Set(static_cast<uint32_t>(i), ValueToJs(env, v->items[i]));
      return out;
    }
    case K::Dict: {
      Napi::Object out = Napi::Object::New(env);
      for (const auto& [key, value] : v->entries) {
        std::string name = key->kind == K::String ? key->text
                           : key->kind == K::Int  ? std::to_string(key->integer)
                                                  : std::string("<") + key->kind_name() + ">";
        out.Set(name, ValueToJs(env, value));
      }
      return out;
    }
    case K::Object: {
      Napi::Object out = Napi::Object::New(env);
      out.Set("__class__", v->text);
      return out;
    }
  }
  return env.Undefined();
}

io::ValuePtr ValueFromJs(const Napi::Value& value, const std::string& path) {
  Napi::Env env = value.Env();
  if (value.IsNull() || value.IsUndefined()) return io::Value::None();
  if (value.IsBoolean()) return io::Value::Bool(value.As<Napi::Boolean>().Value());
  if (value.IsNumber()) {
    double d = value.As<Napi::Number>().DoubleValue();
    if (std::isfinite(d) && d == std::floor(d) && std::abs(d) <= 9007199254740992.0) return io::Value::Int(static_cast<int64_t>(d));
    return io::Value::Float(d);
  }
  if (value.IsBigInt()) {
    bool lossless = true;
    int64_t v = value.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(env, path + " does not fit in 64 bits");
    return io::Value::Int(v);
  }
  if (value.IsString()) return io::Value::String(value.As<Napi::String>().Utf8Value());
  if (value.IsArray()) {
    Napi::Array array = value.As<Napi::Array>();
    auto list = io::Value::List();
    for (uint32_t i = 0; i < array.Length(); ++i) list->items.push_back(ValueFromJs(array.Get(i), path + "[" + std::to_string(i) + "]"));
    return list;
  }
  if (value.IsObject() && !value.IsFunction()) {
    Napi::Object object = value.As<Napi::Object>();
    if (object.Has("data") && object.Get("data").IsTypedArray()) return io::Value::Tensor(TensorFromJs(value, path));
    auto dict = io::Value::Dict();
    Napi::Array keys = object.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string key = keys.Get(i).ToString().Utf8Value();
      dict->entries.emplace_back(io::Value::String(key), ValueFromJs(object.Get(key), path + "." + key));
    }
    return dict;
  }
  throw Napi::TypeError::New(env, path + " cannot be stored in a checkpoint (functions and symbols are not supported)");
}

}  // namespace u2pl::addon
