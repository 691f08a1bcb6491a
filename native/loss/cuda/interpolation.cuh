// Align-corners bilinear taps on the device, the same arithmetic as loss/interpolation.h.
#pragma once

namespace u2pl::loss::cuda {

struct DeviceTap {
  int i0, i1;
  float w0, w1;
};

__device__ inline DeviceTap AlignCornersTap(int o, int in, int out) {
  const float scale = out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.f;
  const float src = scale * static_cast<float>(o);
  const int i0 = static_cast<int>(src);
  const float l1 = src - static_cast<float>(i0);
  return {i0, i0 < in - 1 ? i0 + 1 : i0, 1.f - l1, l1};
}

__device__ inline float Interpolate(const float* plane, int w, const DeviceTap& ty, const DeviceTap& tx) {
  const float* r0 = plane + ty.i0 * w;
  const float* r1 = plane + ty.i1 * w;
  return ty.w0 * (tx.w0 * r0[tx.i0] + tx.w1 * r0[tx.i1]) + ty.w1 * (tx.w0 * r1[tx.i0] + tx.w1 * r1[tx.i1]);
}

inline int Blocks(int64_t n, int threads) { return static_cast<int>((n + threads - 1) / threads); }

}  // namespace u2pl::loss::cuda
