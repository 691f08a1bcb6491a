// info() and setThreads(): what the addon was built with and runs on.
#include <dlfcn.h>
#include <unistd.h>

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "addon/addon.h"
#include "addon/errors.h"
#include "loss/simd.h"

#ifndef U2PL_ADDON_VERSION
#define U2PL_ADDON_VERSION "unknown"
#endif
#ifndef U2PL_TORCH_SOURCE
#define U2PL_TORCH_SOURCE "unknown"
#endif
#ifndef U2PL_TORCH_PREFIX
#define U2PL_TORCH_PREFIX ""
#endif

namespace u2pl::addon {
namespace {

// The shared library that holds ATen as this process loaded it (what the addon really runs on,
// whatever the build saw).
std::string LoadedLibTorch() {
  Dl_info where{};
  if (dladdr(reinterpret_cast<void*>(&at::get_num_threads), &where) == 0 || where.dli_fname == nullptr) return "";
  char resolved[4096];
  return realpath(where.dli_fname, resolved) ? std::string(resolved) : std::string(where.dli_fname);
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return GuardJs(env, [&] {
    Napi::Object out = Napi::Object::New(env);
    out.Set("addonVersion", U2PL_ADDON_VERSION);
    out.Set("libtorchVersion", TORCH_VERSION);
    Napi::Object libtorch = Napi::Object::New(env);
    libtorch.Set("library", LoadedLibTorch());
    libtorch.Set("source", U2PL_TORCH_SOURCE);
    libtorch.Set("prefix", U2PL_TORCH_PREFIX);
    out.Set("libtorch", libtorch);
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

// Ends the process at once with `code`, without running exit handlers or static destructors: a
// second Ctrl-C must not wait for the step in flight, and exit() under a busy compute thread would
// destroy LibTorch's globals beneath it (a segfault instead of the exit code).
Napi::Value ExitNow(const Napi::CallbackInfo& info) {
  const int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
  _exit(code);
}

}  // namespace

void RegisterInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("exitNow", Napi::Function::New(env, ExitNow, "exitNow"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
}

}  // namespace u2pl::addon
