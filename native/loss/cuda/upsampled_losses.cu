// Entropy and cross-entropy of upsampled logits on CUDA: one thread per output pixel, the
// upsampled logits are never stored; the CE gradient is pulled back with atomics.
// Tensor and the few operators used, not ATen/ATen.h: nvcc parses a TU once per architecture.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "loss/cuda/device_checks.cuh"
#include "loss/cuda/interpolation.cuh"
#include "loss/cuda/loss_kernels_cuda.h"

namespace u2pl::loss::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void EntropyKernel(const float* logits, float* out, int n, int c, int h, int w, int out_h, int out_w) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<int64_t>(n) * out_h * out_w) return;
  const int x = i % out_w, y = (i / out_w) % out_h, b = i / (static_cast<int64_t>(out_w) * out_h);
  const DeviceTap ty = AlignCornersTap(y, h, out_h), tx = AlignCornersTap(x, w, out_w);
  const float* src = logits + static_cast<int64_t>(b) * c * h * w;
  float m = -INFINITY;
  for (int k = 0; k < c; ++k) m = fmaxf(m, Interpolate(src + static_cast<int64_t>(k) * h * w, w, ty, tx));
  float s = 0.f, t = 0.f;
  for (int k = 0; k < c; ++k) {
    const float z = Interpolate(src + static_cast<int64_t>(k) * h * w, w, ty, tx) - m;
    const float e = expf(z);
    s += e;
    t += e * z;
  }
  out[i] = logf(s) - t / s;  // -sum p ln p with p = e / s
}

__global__ void CrossEntropyKernel(const float* logits, const int64_t* labels, float* loss, float* grad, int n, int c,
                                   int h, int w, int out_h, int out_w, int64_t ignore_index) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<int64_t>(n) * out_h * out_w) return;
  const int64_t y_label = labels[i];
  if (y_label == ignore_index) {
    loss[i] = 0.f;
    return;
  }
  const int x = i % out_w, y = (i / out_w) % out_h, b = i / (static_cast<int64_t>(out_w) * out_h);
  const DeviceTap ty = AlignCornersTap(y, h, out_h), tx = AlignCornersTap(x, w, out_w);
  const int64_t plane = static_cast<int64_t>(h) * w;
  const float* src = logits + static_cast<int64_t>(b) * c * plane;
  float* dst = grad + static_cast<int64_t>(b) * c * plane;
  float m = -INFINITY;
  for (int k = 0; k < c; ++k) m = fmaxf(m, Interpolate(src + k * plane, w, ty, tx));
  float s = 0.f, z_label = 0.f;
  for (int k = 0; k < c; ++k) {
    const float z = Interpolate(src + k * plane, w, ty, tx) - m;
    s += expf(z);
    if (k == y_label) z_label = z;
  }
  loss[i] = logf(s) - z_label;
  for (int k = 0; k < c; ++k) {
    const float g = expf(Interpolate(src + k * plane, w, ty, tx) - m) / s - (k == y_label ? 1.f : 0.f);
    float* p = dst + k * plane;
    atomicAdd(p + ty.i0 * w + tx.i0, ty.w0 * tx.w0 * g);
    atomicAdd(p + ty.i0 * w + tx.i1, ty.w0 * tx.w1 * g);
    atomicAdd(p + ty.i1 * w + tx.i0, ty.w1 * tx.w0 * g);
    atomicAdd(p + ty.i1 * w + tx.i1, ty.w1 * tx.w1 * g);
  }
}

}  // namespace

at::Tensor UpsampledEntropy(const at::Tensor& logits_in, int64_t out_h, int64_t out_w) {
  // The launch goes to the current device's stream: make that the tensors' device (a rank's cuda:N).
  const c10::cuda::CUDAGuard guard(logits_in.device());
  const at::Tensor logits = logits_in.to(at::kFloat).contiguous();
  const int64_t n = logits.size(0);
  at::Tensor out = at::empty({n, out_h, out_w}, logits.options());
  if (out.numel() == 0) return out;
  EntropyKernel<<<Blocks(out.numel(), kThreads), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      logits.data_ptr<float>(), out.data_ptr<float>(), n, logits.size(1), logits.size(2), logits.size(3), out_h, out_w);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::pair<at::Tensor, at::Tensor> UpsampledCrossEntropy(const at::Tensor& logits_in, const at::Tensor& labels_in,
                                                        int64_t ignore_index) {
  CheckSameDevice("cross-entropy", logits_in, {&labels_in});
  const c10::cuda::CUDAGuard guard(logits_in.device());
  const at::Tensor logits = logits_in.contiguous(), labels = labels_in.contiguous();
  at::Tensor grad = at::zeros_like(logits);
  at::Tensor loss = at::empty(labels.sizes(), logits.options());
  if (labels.numel() > 0) {
    CrossEntropyKernel<<<Blocks(labels.numel(), kThreads), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        logits.data_ptr<float>(), labels.data_ptr<int64_t>(), loss.data_ptr<float>(), grad.data_ptr<float>(), logits.size(0),
        logits.size(1), logits.size(2), logits.size(3), labels.size(1), labels.size(2), ignore_index);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {loss.to(at::kDouble).sum().to(at::kFloat), grad};
}

}  // namespace u2pl::loss::cuda
