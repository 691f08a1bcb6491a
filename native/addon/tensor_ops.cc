// Small tensor utilities over the JS<->tensor conversion: dtype casts and an async matmul
// (the latter also measures the thread count's effect in the bench).
#include <ATen/ATen.h>

#include "addon/addon.h"
#include "addon/async_task.h"
#include "addon/errors.h"
#include "addon/js_tensor.h"

namespace u2pl::addon {
namespace {

Napi::Value Cast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsString()) throw Napi::TypeError::New(env, "cast(tensor, dtype) expects a dtype name");
  at::Tensor input = TensorFromJs(info[0], "tensor");
  const std::string name = info[1].As<Napi::String>();
  return GuardJs(env, [&] {
    const at::ScalarType dtype = ScalarTypeFromName(name);
    at::Tensor out;
    RunOnComputeThread([&] { out = input.to(dtype); });  // (LibTorch work stays on one thread)
    return TensorToJs(env, out);
  });
}

Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  at::Tensor a = TensorFromJs(info[0], "a");
  at::Tensor b = TensorFromJs(info[1], "b");
  int64_t repeat = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : 1;
  if (repeat < 1) throw Napi::RangeError::New(env, "matmul repeat must be >= 1");
  return AsyncTask::Run(
      env,
      [a, b, repeat]() -> ResultBuilder {
        at::Tensor out;
        for (int64_t i = 0; i < repeat; ++i) out = at::matmul(a, b);
        return [out](Napi::Env env) -> Napi::Value { return TensorToJs(env, out); };
      },
      {info[0], info[1]});
}

}  // namespace

void RegisterTensorOps(Napi::Env env, Napi::Object exports) {
  exports.Set("cast", Napi::Function::New(env, Cast, "cast"));
  exports.Set("matmul", Napi::Function::New(env, Matmul, "matmul"));
}

}  // namespace u2pl::addon
