// cudaMemory(): the CUDA caching allocator's byte counts, for the bench's peak GPU memory beside
// PyTorch's (the same allocator, so the same numbers as torch.cuda.memory_allocated(),
// max_memory_allocated(), memory_reserved() and max_memory_reserved()).
#include "addon/addon.h"
#include "addon/errors.h"

#ifdef U2PL_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace u2pl::addon {
namespace {

// cudaMemory({ device?: number, resetPeak?: boolean }): { allocatedBytes, peakAllocatedBytes,
// reservedBytes, peakReservedBytes } of the device (default: the current one), or null in a build
// without the CUDA kernels or on a machine without a GPU. resetPeak starts the peaks again from now.
Napi::Value CudaMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return GuardJs(env, [&]() -> Napi::Value {
#ifdef U2PL_WITH_CUDA
    if (c10::cuda::device_count() == 0) return env.Null();
    const Napi::Object o = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
    const c10::DeviceIndex device = o.Has("device") ? static_cast<c10::DeviceIndex>(o.Get("device").ToNumber().Int32Value())
                                                    : c10::cuda::current_device();
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
    // Index 0 of each stat array is StatType::AGGREGATE (all pools), in LibTorch 1.13 and 2.x alike.
    Napi::Object out = Napi::Object::New(env);
    out.Set("allocatedBytes", static_cast<double>(stats.allocated_bytes[0].current));
    out.Set("peakAllocatedBytes", static_cast<double>(stats.allocated_bytes[0].peak));
    out.Set("reservedBytes", static_cast<double>(stats.reserved_bytes[0].current));
    out.Set("peakReservedBytes", static_cast<double>(stats.reserved_bytes[0].peak));
    if (o.Has("resetPeak") && o.Get("resetPeak").ToBoolean()) c10::cuda::CUDACachingAllocator::resetPeakStats(device);
    return out;
#else
    return env.Null();
#endif
  });
}

}  // namespace

void RegisterCudaMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaMemory", Napi::Function::New(env, CudaMemory, "cudaMemory"));
}

}  // namespace u2pl::addon
