// Small tensor utilities over the JS<->tensor conversion: dtype casts, an async matmul (the latter
// also measures the thread count's effect in the bench) and timeKernel (the bench's peak probes).
#include <chrono>
#include <functional>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "addon/addon.h"
#include "addon/async_task.h"
#include "addon/errors.h"
#include "addon/js_options.h"
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

// timeKernel({ op: 'gemm', m, k, n } | { op: 'conv', batch, channels, height, width, outChannels, kernel, stride,
//            padding, dilation, channelsLast }, { warmup, runs, dtype }) -> Promise<seconds of each run>: one
// LibTorch kernel on random inputs (dtype 'fp32' or 'bf16') made here, timed here (no JS conversion in the
// loop): the bench's practical peak, and each convolution of a network on its own.
Napi::Value TimeKernel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = ObjectArg(info, 0, "timeKernel(kernel, options)");
  Napi::Object r = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  const std::string op = OptString(o, "op", "");
  if (op != "gemm" && op != "conv") throw Napi::TypeError::New(env, "timeKernel: op must be 'gemm' or 'conv', got '" + op + "'");
  const int64_t warmup = OptInt(r, "warmup", 2), runs = OptInt(r, "runs", 5);
  if (warmup < 0 || runs < 1) throw Napi::RangeError::New(env, "timeKernel: warmup >= 0 and runs >= 1 are needed");
  const std::string dtype_name = OptString(r, "dtype", "fp32");
  if (dtype_name != "fp32" && dtype_name != "bf16") throw Napi::TypeError::New(env, "timeKernel: dtype must be 'fp32' or 'bf16', got '" + dtype_name + "'");
  const auto dtype = dtype_name == "bf16" ? at::kBFloat16 : at::kFloat;
  const int64_t m = OptInt(o, "m", 0), k = OptInt(o, "k", 0), n = OptInt(o, "n", 0);
  const int64_t batch = OptInt(o, "batch", 1), channels = OptInt(o, "channels", 0);
  const int64_t height = OptInt(o, "height", 0), width = OptInt(o, "width", height);
  const int64_t out_channels = OptInt(o, "outChannels", channels), kernel = OptInt(o, "kernel", 3), dilation = OptInt(o, "dilation", 1);
  const int64_t stride = OptInt(o, "stride", 1), padding = OptInt(o, "padding", dilation * (kernel - 1) / 2);
  const bool channels_last = OptBool(o, "channelsLast", false);
  return AsyncTask::Run(env, [=]() -> ResultBuilder {
    c10::InferenceMode inference;
    std::function<at::Tensor()> run;
    if (op == "gemm") {
      TORCH_CHECK(m > 0 && k > 0 && n > 0, "timeKernel gemm: m, k and n must be positive");
      at::Tensor a = at::randn({m, k}).to(dtype), b = at::randn({k, n}).to(dtype);
      run = [a, b] { return at::mm(a, b); };
    } else {
      TORCH_CHECK(batch > 0 && channels > 0 && height > 0 && width > 0 && out_channels > 0 && kernel > 0 && stride > 0 && padding >= 0,
                  "timeKernel conv: batch, channels, height, width, outChannels, kernel and stride must be positive");
      const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
      at::Tensor x = at::randn({batch, channels, height, width}).to(dtype).contiguous(format);
      at::Tensor w = at::randn({out_channels, channels, kernel, kernel}).to(dtype).contiguous(format);
      run = [x, w, stride, padding, dilation] { return at::conv2d(x, w, {}, stride, padding, dilation); };
    }
    std::vector<double> seconds;
    for (int64_t i = 0; i < warmup + runs; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      at::Tensor out = run();
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (i >= warmup) seconds.push_back(dt);
    }
    return [seconds](Napi::Env env) -> Napi::Value {
      Napi::Array a = Napi::Array::New(env, seconds.size());
      for (size_t i = 0; i < seconds.size(); ++i) a.Set(static_cast<uint32_t>(i), seconds[i]);
      return a;
    };
  });
}

}  // namespace

void RegisterTensorOps(Napi::Env env, Napi::Object exports) {
  exports.Set("cast", Napi::Function::New(env, Cast, "cast"));
  exports.Set("matmul", Napi::Function::New(env, Matmul, "matmul"));
  exports.Set("timeKernel", Napi::Function::New(env, TimeKernel, "timeKernel"));
}

}  // namespace u2pl::addon
