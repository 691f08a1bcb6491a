// info() and setThreads(): what the addon was built with and runs on.
#include <dlfcn.h>
#include <unistd.h>

#include <ATen/Config.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "addon/addon.h"
#include "addon/async_task.h"
#include "addon/errors.h"
#include "loss/simd.h"
#include "train/distributed.h"
#include "util/cpu_allocator.h"
#include "util/machine.h"

#ifndef U2PL_ADDON_VERSION
#define U2PL_ADDON_VERSION "unknown"
#endif
#ifndef U2PL_TORCH_SOURCE
#define U2PL_TORCH_SOURCE "unknown"
#endif
#ifndef U2PL_TORCH_PREFIX
#define U2PL_TORCH_PREFIX ""
#endif

#if AT_PARALLEL_OPENMP
extern "C" void omp_set_num_threads(int);  // libgomp, loaded with LibTorch
#endif

namespace u2pl::addon {
namespace {

// LibTorch work belongs on the compute thread. Should some reach the JS thread (a tensor copied
// while converting a result), it must not start a second OpenMP team: with more OpenMP threads
// than cores libgomp stops spinning at barriers, and every parallel region of the training step
// then sleeps and wakes on futexes (measured: the forward pass 30 % slower). One thread here.
void KeepJsThreadSerial() {
#if AT_PARALLEL_OPENMP
  // ATen sets a thread's OpenMP count from its own on the thread's first parallel call
  // (lazy_init_num_threads, which get_num_threads runs): let that happen first, then override it.
  at::get_num_threads();
  omp_set_num_threads(1);
#endif
}

// The BLAS library LibTorch calls (its gemm runs the convolutions oneDNN does not take, e.g. 1x1
// ones on one thread): "mkl", or the file that provides sgemm_. Debian's libtorch-dev comes with
// the netlib reference BLAS, ten times slower than OpenBLAS there (apt-get install libopenblas0-openmp).
std::string BlasLibrary() {
  if (at::hasMKL()) return "mkl";
  for (const char* name : {"libblas.so.3", "libopenblas.so.0"}) {
    void* handle = dlopen(name, RTLD_NOW | RTLD_NOLOAD);
    if (handle == nullptr) continue;
    void* gemm = dlsym(handle, "sgemm_");
    Dl_info where{};
    std::string path;
    if (gemm && dladdr(gemm, &where) != 0 && where.dli_fname) {
      char resolved[4096];
      path = realpath(where.dli_fname, resolved) ? resolved : where.dli_fname;
    }
    dlclose(handle);
    if (!path.empty()) return path;
  }
  return "";
}

int ComputeThreads() {
  int n = 0;
  RunOnComputeThread([&] { n = at::get_num_threads(); });
  return n;
}

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
    libtorch.Set("blas", BlasLibrary());
    out.Set("libtorch", libtorch);
    out.Set("threads", ComputeThreads());
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
    const util::CpuFeatures f = util::DetectCpu();
    Napi::Object cpu = Napi::Object::New(env);
    cpu.Set("model", f.model);
    cpu.Set("avx2", f.avx2);
    cpu.Set("avx512f", f.avx512f);
    cpu.Set("avx512Bf16", f.avx512_bf16);
    cpu.Set("amxBf16", f.amx_bf16);
    cpu.Set("amxFp16", f.amx_fp16);
    cpu.Set("onednnIsa", f.onednn_isa);
    out.Set("cpu", cpu);
    Napi::Array devices = Napi::Array::New(env);
    for (const util::CudaDevice& d : util::CudaDevices()) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", d.name);
      Napi::Array capability = Napi::Array::New(env, 2);
      capability.Set(0u, d.major);
      capability.Set(1u, d.minor);
      o.Set("capability", capability);
      o.Set("memoryGiB", d.memory_gib);
      devices.Set(devices.Length(), o);
    }
    out.Set("cudaDevices", devices);
    const util::CpuAllocatorStats a = util::GetCpuAllocatorStats();
    Napi::Object allocator = Napi::Object::New(env);
    allocator.Set("caching", a.installed);
    allocator.Set("cachedBytes", static_cast<double>(a.cached_bytes));
    allocator.Set("allocatedBytes", static_cast<double>(a.allocated_bytes));
    allocator.Set("hits", static_cast<double>(a.hits));
    allocator.Set("misses", static_cast<double>(a.misses));
    out.Set("cpuAllocator", allocator);
    Napi::Array backends = Napi::Array::New(env);
    for (const auto& b : train::AvailableBackends()) backends.Set(backends.Length(), b);
    out.Set("distributed", backends);
    std::string parallel;
    RunOnComputeThread([&] { parallel = at::get_parallel_info(); });
    out.Set("parallelInfo", parallel);
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
  GuardJs(env, [&] { RunOnComputeThread([&] { at::set_num_threads(static_cast<int>(n)); }); });
  KeepJsThreadSerial();
  return Napi::Number::New(env, ComputeThreads());
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
  KeepJsThreadSerial();
  exports.Set("exitNow", Napi::Function::New(env, ExitNow, "exitNow"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
}

}  // namespace u2pl::addon
