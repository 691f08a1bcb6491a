// What the machine can compute fast: the CPU's instruction sets that decide whether bf16 runs
// natively (oneDNN has bf16 kernels only with AVX512-BF16 or AMX; elsewhere it emulates them, about
// 20x slower than fp32), what oneDNN dispatches to, and each CUDA device's compute capability.
#pragma once

#include <string>
#include <vector>

namespace u2pl::util {

struct CpuFeatures {
  std::string model;        // /proc/cpuinfo's "model name"
  bool avx2 = false;
  bool avx512f = false;     // AVX-512 foundation (with the OS saving its registers)
  bool avx512_bf16 = false;
  bool amx_bf16 = false;
  bool amx_fp16 = false;
  std::string onednn_isa;   // what oneDNN dispatches to (e.g. "avx2", "avx512_core_bf16"); "" when unknown
};

CpuFeatures DetectCpu();

struct CudaDevice {
  std::string name;
  int major = 0, minor = 0;  // compute capability
  double memory_gib = 0;
};

// Empty without CUDA devices, or in a build without the CUDA kernels (the properties need its headers).
std::vector<CudaDevice> CudaDevices();

}  // namespace u2pl::util
