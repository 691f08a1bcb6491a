// Conversion between JS tensors ({ data: TypedArray, shape: number[] }) and at::Tensor.
#pragma once

#include <string>

#include <ATen/core/Tensor.h>
#include <napi.h>

namespace u2pl::addon {

// A CPU tensor viewing the typed array's memory (no copy). The caller keeps the JS value alive
// while the tensor is in use (AsyncTask's keepAlive). `what` names the argument in errors.
at::Tensor TensorFromJs(const Napi::Value& value, const std::string& what);

// { data, shape, dtype }. Shares the tensor's memory when the tensor owns it; copies otherwise.
// bool comes back as uint8, float16/bfloat16 as float32.
Napi::Object TensorToJs(Napi::Env env, const at::Tensor& tensor);

// "float32" <-> at::kFloat etc.; throws naming the value when unknown.
at::ScalarType ScalarTypeFromName(const std::string& name);
std::string ScalarTypeName(at::ScalarType type);

}  // namespace u2pl::addon
