#include "addon/js_tensor.h"

#include <cstring>
#include <sstream>
#include <vector>

#include <ATen/ATen.h>

namespace u2pl::addon {
namespace {

struct DtypeEntry {
  const char* name;
  at::ScalarType type;
  napi_typedarray_type js;
};

constexpr DtypeEntry kDtypes[] = {
    {"float32", at::kFloat, napi_float32_array}, {"float64", at::kDouble, napi_float64_array},
    {"uint8", at::kByte, napi_uint8_array},      {"int8", at::kChar, napi_int8_array},
    {"int16", at::kShort, napi_int16_array},     {"int32", at::kInt, napi_int32_array},
    {"int64", at::kLong, napi_bigint64_array},
};

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

}  // namespace

at::ScalarType ScalarTypeFromName(const std::string& name) {
  for (const auto& entry : kDtypes)
    if (name == entry.name) return entry.type;
  throw std::invalid_argument("unknown dtype '" + name +
                              "' (expected float32, float64, uint8, int8, int16, int32 or int64)");
}

std::string ScalarTypeName(at::ScalarType type) {
  for (const auto& entry : kDtypes)
    if (type == entry.type) return entry.name;
  return c10::toString(type);
}

at::Tensor TensorFromJs(const Napi::Value& value, const std::string& what) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throw Napi::TypeError::New(env, what + " must be a tensor object { data, shape }");
  Napi::Object object = value.As<Napi::Object>();
  Napi::Value data = object.Get("data");
  if (!data.IsTypedArray())
    throw Napi::TypeError::New(env, what + ".data must be a typed array (Float32Array, Float64Array, Uint8Array, "
                                           "Int8Array, Int16Array, Int32Array or BigInt64Array)");
  Napi::TypedArray array = data.As<Napi::TypedArray>();
  at::ScalarType type = at::ScalarType::Undefined;
  for (const auto& entry : kDtypes)
    if (array.TypedArrayType() == entry.js) type = entry.type;
  if (array.TypedArrayType() == napi_uint8_clamped_array) type = at::kByte;
  if (type == at::ScalarType::Undefined) throw Napi::TypeError::New(env, what + ".data has an unsupported typed array type");

  std::vector<int64_t> shape;
  Napi::Value shapeValue = object.Get("shape");
  if (shapeValue.IsUndefined()) {
    shape.push_back(static_cast<int64_t>(array.ElementLength()));
  } else {
    if (!shapeValue.IsArray()) throw Napi::TypeError::New(env, what + ".shape must be an array of integers");
    Napi::Array dims = shapeValue.As<Napi::Array>();
    for (uint32_t i = 0; i < dims.Length(); ++i) {
      Napi::Value dim = dims.Get(i);
      double d = dim.IsNumber() ? dim.As<Napi::Number>().DoubleValue() : -1;
      if (d < 0 || d != static_cast<double>(static_cast<int64_t>(d)))
        throw Napi::TypeError::New(env, what + ".shape[" + std::to_string(i) + "] must be a non-negative integer");
      shape.push_back(static_cast<int64_t>(d));
    }
  }
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  if (numel != static_cast<int64_t>(array.ElementLength()))
    throw Napi::RangeError::New(env, what + ".shape " + ShapeString(shape) + " holds " + std::to_string(numel) +
                                         " elements but " + what + ".data has " +
                                         std::to_string(array.ElementLength()));
  auto* base = static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  return at::from_blob(base, shape, at::TensorOptions().dtype(type));
}

Napi::Object TensorToJs(Napi::Env env, const at::Tensor& input) {
  at::Tensor tensor = input.detach().to(at::kCPU);
  if (tensor.scalar_type() == at::kBool) tensor = tensor.to(at::kByte);
  if (tensor.scalar_type() == at::kHalf || tensor.scalar_type() == at::kBFloat16) tensor = tensor.to(at::kFloat);
  const std::string name = ScalarTypeName(tensor.scalar_type());
  ScalarTypeFromName(name);  // throws for types JS has no array for (complex, ...)
  tensor = tensor.contiguous();
  // A tensor made by from_blob over a JS buffer does not own its memory (null context): copy it,
  // or the result would alias an input that JS may free.
  if (tensor.storage().data_ptr().get_context() == nullptr) tensor = tensor.clone();

  const size_t bytes = tensor.numel() * tensor.element_size();
  Napi::ArrayBuffer buffer;
  if (bytes == 0) {
    buffer = Napi::ArrayBuffer::New(env, 0);
  } else {
    auto* owner = new at::Tensor(tensor);
    buffer = Napi::ArrayBuffer::New(env, owner->data_ptr(), bytes,
                                    [](Napi::Env, void*, at::Tensor* held) { delete held; }, owner);
  }
  const size_t length = static_cast<size_t>(tensor.numel());
  Napi::Value data;
  switch (tensor.scalar_type()) {
    case at::kFloat: data = Napi::Float32Array::New(env, length, buffer, 0); break;
    case at::kDouble: data = Napi::Float64Array::New(env, length, buffer, 0); break;
    case at::kByte: data = Napi::Uint8Array::New(env, length, buffer, 0); break;
    case at::kChar: data = Napi::Int8Array::New(env, length, buffer, 0); break;
    case at::kShort: data = Napi::Int16Array::New(env, length, buffer, 0); break;
    case at::kInt: data = Napi::Int32Array::New(env, length, buffer, 0); break;
    case at::kLong: data = Napi::BigInt64Array::New(env, length, buffer, 0); break;
    default: throw Napi::TypeError::New(env, "tensor dtype " + name + " has no JS typed array");
  }
  Napi::Array shape = Napi::Array::New(env, tensor.dim());
  for (int64_t i = 0; i < tensor.dim(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, tensor.size(i)));
  Napi::Object result = Napi::Object::New(env);
  result.Set("data", data);
  result.Set("shape", shape);
  result.Set("dtype", Napi::String::New(env, name));
  return result;
}

}  // namespace u2pl::addon
