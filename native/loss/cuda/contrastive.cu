// The contrastive loss's fused stages on CUDA: InfoNCE with one block per anchor (the anchor's
// keys are read once from the bank, dot products reduced across the block), and the per-pixel
// class masks with one thread per pixel.
// Tensor and the few operators used, not ATen/ATen.h: nvcc parses a TU once per architecture.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "loss/cuda/device_checks.cuh"
#include "loss/cuda/interpolation.cuh"
#include "loss/cuda/loss_kernels_cuda.h"

namespace u2pl::loss::cuda {
namespace {

constexpr int kBlock = 256;  // a multiple of the warp size
constexpr float kEps = 1e-8f;

// Sum of v over the block (every thread gets the result). scratch: kBlock / 32 floats.
__device__ float BlockSum(float v, float* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();  // scratch may still be read from the previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.f;
  for (int i = 0; i < blockDim.x / 32; ++i) total += scratch[i];
  return total;
}

// shared: sim[k+1], den[k+1], coef[k+1] (float) after the reduction scratch.
__global__ void InfoNceKernel(const float* anchors, const float* prototype, const float* keys, const int64_t* index,
                              float* loss, float* grad, int d, int k, float inv_t, float inv_q) {
  extern __shared__ float shared[];
  float* scratch = shared;
  float* sim = scratch + kBlock / 32;
  float* den = sim + (k + 1);
  float* coef = den + (k + 1);
  const int i = blockIdx.x;
  const float* a = anchors + static_cast<int64_t>(i) * d;
  auto row = [&](int j) { return j == 0 ? prototype : keys + index[static_cast<int64_t>(i) * k + (j - 1)] * d; };
  float part = 0.f;
  for (int c = threadIdx.x; c < d; c += blockDim.x) part += a[c] * a[c];
  const float a_sq = BlockSum(part, scratch);
  const float a_norm = sqrtf(a_sq);
  for (int j = 0; j <= k; ++j) {
    const float* r = row(j);
    float dot = 0.f, sq = 0.f;
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
      dot += a[c] * r[c];
      sq += r[c] * r[c];
    }
    dot = BlockSum(dot, scratch);
    sq = BlockSum(sq, scratch);
    if (threadIdx.x == 0) {
      den[j] = fmaxf(a_norm * sqrtf(sq), kEps);
      sim[j] = dot / den[j];
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double zmax = -INFINITY, sum = 0;
    for (int j = 0; j <= k; ++j) zmax = fmax(zmax, static_cast<double>(sim[j]) * inv_t);
    for (int j = 0; j <= k; ++j) sum += exp(static_cast<double>(sim[j]) * inv_t - zmax);
    const double lse = zmax + log(sum);
    loss[i] = static_cast<float>(lse - static_cast<double>(sim[0]) * inv_t);
    double radial = 0;
    for (int j = 0; j <= k; ++j) {
      const double cj = (exp(static_cast<double>(sim[j]) * inv_t - lse) - (j == 0 ? 1.0 : 0.0)) * inv_t * inv_q;
      coef[j] = static_cast<float>(cj / den[j]);
      if (den[j] > kEps) radial += cj * sim[j];
    }
    scratch[0] = a_sq > 0 ? static_cast<float>(radial / a_sq) : 0.f;
  }
  __syncthreads();
  const float wa = scratch[0];
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float g = 0.f;
    for (int j = 0; j <= k; ++j) g += coef[j] * row(j)[c];
    grad[static_cast<int64_t>(i) * d + c] = g - wa * a[c];
  }
}

__global__ void ClassMasksKernel(const float* q, const int64_t* label, const bool* low, const bool* high, bool* anchor_ok,
                                 bool* negative_ok, int64_t m, int classes, int64_t m_labeled, float delta_p, float delta_n,
                                 int r_l, int r_h, bool paper) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= m) return;
  const float* qi = q + i * classes;
  const int64_t y = label[i];
  const bool labeled = i < m_labeled;
  for (int c = 0; c < classes; ++c) {
    const float qc = qi[c];
    const bool is_c = y == c;
    anchor_ok[c * m + i] = is_c && low[i] && qc > delta_p;
    const bool candidate = paper ? (labeled ? y >= 0 && high[i] : high[i]) : is_c && high[i];
    bool negative = false;
    if (candidate && qc < delta_n) {
      int rank = 0;
      for (int j = 0; j < classes; ++j) rank += (qi[j] > qc) || (qi[j] == qc && j < c);
      negative = labeled ? rank < r_l && !is_c : rank >= r_l && rank < r_h;
    }
    negative_ok[c * m + i] = negative;
  }
}

}  // namespace

std::pair<at::Tensor, at::Tensor> InfoNce(const at::Tensor& anchors_in, const at::Tensor& prototype_in,
                                          const at::Tensor& keys_in, const at::Tensor& index_in, double temperature) {
  // The launch goes to the current device's stream: make that the tensors' device (a rank's cuda:N).
  CheckSameDevice("InfoNCE", anchors_in, {&prototype_in, &keys_in, &index_in});
  const c10::cuda::CUDAGuard guard(anchors_in.device());
  const at::Tensor anchors = anchors_in.contiguous(), prototype = prototype_in.contiguous();
  const at::Tensor keys = keys_in.contiguous(), index = index_in.contiguous();
  const int64_t q = anchors.size(0), d = anchors.size(1), k = index.size(1);
  at::Tensor loss = at::empty({q}, anchors.options());
  at::Tensor grad = at::empty_like(anchors);
  if (q == 0) return {at::zeros({}, anchors.options()), grad};  // no blocks to launch
  const size_t shared = (kBlock / 32 + 3 * (k + 1)) * sizeof(float);
  // Beyond 48 KiB a launch needs an opt-in per kernel; the loss uses tens of negatives, not thousands.
  constexpr int64_t kMostNegatives = (48 * 1024 / static_cast<int64_t>(sizeof(float)) - kBlock / 32) / 3 - 1;
  TORCH_CHECK(k <= kMostNegatives, "InfoNCE on CUDA: at most ", kMostNegatives, " negatives per anchor, got ", k);
  InfoNceKernel<<<q, kBlock, shared, c10::cuda::getCurrentCUDAStream()>>>(
      anchors.data_ptr<float>(), prototype.data_ptr<float>(), keys.data_ptr<float>(), index.data_ptr<int64_t>(),
      loss.data_ptr<float>(), grad.data_ptr<float>(), d, k, static_cast<float>(1.0 / temperature),
      static_cast<float>(1.0 / static_cast<double>(q)));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {loss.to(at::kDouble).mean().to(at::kFloat), grad};
}

std::pair<at::Tensor, at::Tensor> ClassMasks(const at::Tensor& q_in, const at::Tensor& label_in, const at::Tensor& low_in,
                                             const at::Tensor& high_in, int64_t m_labeled, double delta_p, double delta_n,
                                             int64_t low_rank, int64_t high_rank, bool paper_negatives) {
  CheckSameDevice("contrastive class masks", q_in, {&label_in, &low_in, &high_in});
  const c10::cuda::CUDAGuard guard(q_in.device());
  const at::Tensor q = q_in.contiguous(), label = label_in.contiguous();
  const at::Tensor low = low_in.to(at::kBool).contiguous(), high = high_in.to(at::kBool).contiguous();
  const int64_t m = q.size(0), classes = q.size(1);
  at::Tensor anchor_ok = at::empty({classes, m}, q.options().dtype(at::kBool));
  at::Tensor negative_ok = at::empty({classes, m}, q.options().dtype(at::kBool));
  if (m > 0) {
    ClassMasksKernel<<<Blocks(m, kBlock), kBlock, 0, c10::cuda::getCurrentCUDAStream()>>>(
        q.data_ptr<float>(), label.data_ptr<int64_t>(), low.data_ptr<bool>(), high.data_ptr<bool>(),
        anchor_ok.data_ptr<bool>(), negative_ok.data_ptr<bool>(), m, classes, m_labeled, static_cast<float>(delta_p),
        static_cast<float>(delta_n), low_rank, high_rank, paper_negatives);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {anchor_ok, negative_ok};
}

}  // namespace u2pl::loss::cuda
