// info() and setThreads(): what the addon was built with and runs on.
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "addon/addon.h"
#include "addon/errors.h"
#include "loss/simd.h"

#ifndef U2PL_ADDON_VERSION
#define U2PL_ADDON_VERSION "unknown"
#endif

namespace u2pl::addon {
namespace {

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return GuardJs(env, [&] {
    Napi::Object out = Napi::Object::New(env);
    out.Set("addonVersion", U2PL_ADDON_VERSION);
    out.Set("libtorchVersion", TORCH_VERSION);
    out.Set("threads", at::get_num_threads());
    out.Set("interopThreads", at::get_num_interop_threads());
    out.Set("cudaAvailable", torch::cuda::is_available());
    out.Set("cudnnAvailable", torch::cuda::cudnn_is_available());
    out.Set("cudaDeviceCount", static_cast<double>(torch::cuda::device_count()));
#ifdef U2PL_WITH_CUDA
    out.Set("cudaKernels", true);
#else
    out.Set("cudaKernels", false);
#endif
    out.Set("lossKernelIsa", loss::UseAvx2Copy() ? "avx2" : "baseline");
    out.Set("parallelInfo", at::get_parallel_info());
    return out;
  });
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber())
    throw Napi::TypeError::New(env, "setThreads(n) expects a positive integer");
  double n = info[0].As<Napi::Number>().DoubleValue();
  if (n < 1 || n != static_cast<double>(static_cast<int>(n)))
    throw Napi::RangeError::New(env, "setThreads(n) expects a positive integer, got " + info[0].ToString().Utf8Value());
  GuardJs(env, [&] { at::set_num_threads(static_cast<int>(n)); });
  return Napi::Number::New(env, at::get_num_threads());
}

}  // namespace

void RegisterInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
}

}  // namespace u2pl::addon
