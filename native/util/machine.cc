#include "util/machine.h"

#include <dlfcn.h>

#include <fstream>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define U2PL_X86 1
#endif

#ifdef U2PL_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>  // with cuda_runtime_api.h, not the cuBLAS/cuSOLVER headers ATen's CUDAContext.h brings
#endif

namespace u2pl::util {
namespace {

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    const size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? "" : line.substr(start);
  }
  return "";
}

// oneDNN's dnnl_get_effective_cpu_isa(), when this process has it (a shared libdnnl, as Debian's
// LibTorch loads, or a LibTorch that exports it). The enum's values changed in oneDNN 3.
std::string OneDnnIsa() {
  using IsaFn = int (*)();
  struct Version {
    int major, minor, patch;
    const char* hash;
    unsigned cpu_runtime, gpu_runtime;
  };
  using VersionFn = const Version* (*)();
  auto isa_fn = reinterpret_cast<IsaFn>(dlsym(RTLD_DEFAULT, "dnnl_get_effective_cpu_isa"));
  auto version_fn = reinterpret_cast<VersionFn>(dlsym(RTLD_DEFAULT, "dnnl_version"));
  if (!isa_fn || !version_fn) return "";
  const int isa = isa_fn();
  const bool v3 = version_fn()->major >= 3;
  switch (isa) {
    case 0x0: return "default";
    case 0x1: return "sse41";
    case 0x3: return "avx";
    case 0x7: return "avx2";
    case 0xf: return v3 ? "avx2_vnni" : "avx512_mic";
    case 0x1f: return v3 ? "avx2_vnni_2" : "avx512_mic_4ops";
    case 0x27: return "avx512_core";
    case 0x67: return "avx512_core_vnni";
    case 0xe7: return "avx512_core_bf16";
    case 0x1ef: return "avx512_core_fp16";
    case 0x3e7: return "avx512_core_amx";
    case 0x407: return "avx2_vnni";
    case 0xfef: return "avx512_core_amx";
    case 0x1fef: return "avx512_core_amx_fp16";
    default: return "isa_" + std::to_string(isa);
  }
}

}  // namespace

CpuFeatures DetectCpu() {
  CpuFeatures f;
  f.model = CpuModel();
#ifdef U2PL_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27))) {  // OSXSAVE: the OS says which registers it saves
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    const unsigned long long xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
    const bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6, tiles = (xcr0 & 0x60000) == 0x60000;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
      f.avx2 = ymm && (b & (1u << 5));
      f.avx512f = zmm && (b & (1u << 16));
      f.amx_bf16 = tiles && (d & (1u << 22));
      const unsigned max_sub = a;
      if (max_sub >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) {
        f.avx512_bf16 = f.avx512f && (a & (1u << 5));
        f.amx_fp16 = tiles && (a & (1u << 21));
      }
    }
  }
#endif
  f.onednn_isa = OneDnnIsa();
  return f;
}

std::vector<CudaDevice> CudaDevices() {
  std::vector<CudaDevice> out;
#ifdef U2PL_WITH_CUDA
  for (int i = 0; i < static_cast<int>(c10::cuda::device_count()); ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    CudaDevice dev;
    dev.name = p.name;
    dev.major = p.major;
    dev.minor = p.minor;
    dev.memory_gib = static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0);
    out.push_back(dev);
  }
#endif
  return out;
}

}  // namespace u2pl::util
