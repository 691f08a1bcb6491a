#include "loss/upsampled_cross_entropy.h"

#include <cmath>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include "loss/interpolation.h"
#include "loss/vector_math.h"

#ifdef U2PL_WITH_CUDA
#include "loss/cuda/loss_kernels_cuda.h"
#endif

namespace u2pl::loss {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Adds the transpose of the horizontal interpolation of `row` (out_w values) to `dst`. The taps
// are monotone with i1 = i0 + 1 (or i0 at the edge), so the sums for dst[i0] and dst[i0 + 1] are
// kept in registers until i0 moves on: adding into dst element by element would chain every
// step through a store and a reload of the same address.
U2PL_FORCE_INLINE void PullBackRow(const float* row, const std::vector<Tap>& tx, float* dst) {
  int64_t cur = tx[0].i0;
  float lo = 0.f, hi = 0.f;  // pending for dst[cur], dst[cur + 1]
  bool has_hi = false;
  for (size_t x = 0; x < tx.size(); ++x) {
    const Tap& t = tx[x];
    if (t.i0 != cur) {
      dst[cur] += lo;
      if (t.i0 == cur + 1) {
        lo = hi;
      } else {
        if (has_hi) dst[cur + 1] += hi;
        lo = 0.f;
      }
      hi = 0.f;
      has_hi = false;
      cur = t.i0;
    }
    lo += t.w0 * row[x];
    if (t.i1 == cur) {
      lo += t.w1 * row[x];
    } else {
      hi += t.w1 * row[x];
      has_hi = true;
    }
  }
  dst[cur] += lo;
  if (has_hi) dst[cur + 1] += hi;
}

struct CrossEntropyArgs {
  const float* logits;    // N x C x h x w
  const int64_t* labels;  // N x H x W
  const float* weight;    // C class weights, or null (all 1)
  float* grad;            // N x C x h x w
  int64_t c, h, w, out_h, ignore_index;
  const std::vector<Tap>& ty;
  const std::vector<Tap>& tx;
  const std::vector<int64_t>& first;  // first output row of each upper source row (h + 1)
};

// Buffers of one task, reused by each of its row groups.
struct CrossEntropyScratch {
  CrossEntropyScratch(const CrossEntropyArgs& x)
      : up(x.c, x.h, x.w, x.tx), v(x.c * x.tx.size()), m(x.tx.size()), s(x.tx.size()), zl(x.tx.size()),
        up0(x.c * x.tx.size()), up1(x.c * x.tx.size()) {}
  UpsampledRows up;
  std::vector<float> v, m, s, zl, up0, up1;
};

// Loss and gradient of the output rows of image b whose upper source row is r. Writes only to
// source rows r and r + 1 of grad, so tasks two rows apart never overlap.
U2PL_FORCE_INLINE double RowsLossAndGrad(const CrossEntropyArgs& x, int64_t b, int64_t r, CrossEntropyScratch& scratch) {
  const int64_t c = x.c, h = x.h, w = x.w, out_w = static_cast<int64_t>(x.tx.size());
  const int64_t ignore_index = x.ignore_index;
  const int64_t* labels = x.labels + b * x.out_h * out_w;
  float* grad = x.grad + b * c * h * w;
  UpsampledRows& up = scratch.up;
  std::vector<float> &v = scratch.v, &m = scratch.m, &s = scratch.s, &zl = scratch.zl, &up0 = scratch.up0,
                     &up1 = scratch.up1;
  up.SetImage(x.logits + b * c * h * w);
  std::fill(up0.begin(), up0.end(), 0.f);
  std::fill(up1.begin(), up1.end(), 0.f);
  double loss = 0;
  for (int64_t y = x.first[r]; y < x.first[r + 1]; ++y) {
    const Tap& a = x.ty[y];
    const int64_t* lab = labels + y * out_w;
    up.Row(a, v.data());
    for (int64_t i = 0; i < out_w; ++i) m[i] = v[i];
    for (int64_t k = 1; k < c; ++k)
      for (int64_t i = 0; i < out_w; ++i) m[i] = std::max(m[i], v[k * out_w + i]);
    for (int64_t i = 0; i < out_w; ++i) {
      const int64_t l = lab[i];
      zl[i] = l == ignore_index ? 0.f : v[l * out_w + i] - m[i];
    }
    std::fill(s.begin(), s.end(), 0.f);
    for (int64_t k = 0; k < c; ++k) {
      float* vk = v.data() + k * out_w;
      for (int64_t i = 0; i < out_w; ++i) {
        const float e = Exp(vk[i] - m[i]);
        vk[i] = e;
        s[i] += e;
      }
    }
    // -log p_label = log s - z_label, times the label's weight; the gradient of the pixel's term is
    // weight * (p - onehot) (0 if ignored). zl holds each pixel's weight from here on.
    for (int64_t i = 0; i < out_w; ++i) {
      const bool keep = lab[i] != ignore_index;
      const float wt = keep ? (x.weight ? x.weight[lab[i]] : 1.f) : 0.f;
      if (keep) loss += static_cast<double>(wt) * (std::log(s[i]) - zl[i]);
      s[i] = keep ? wt / s[i] : 0.f;
      zl[i] = wt;
    }
    for (int64_t k = 0; k < c; ++k) {
      float* vk = v.data() + k * out_w;
      for (int64_t i = 0; i < out_w; ++i) vk[i] *= s[i];
    }
    for (int64_t i = 0; i < out_w; ++i)
      if (lab[i] != ignore_index) v[lab[i] * out_w + i] -= zl[i];
    // Pull back along y first (vectorised, into full-width rows of the two source rows), then
    // once per group along x.
    for (int64_t i = 0; i < c * out_w; ++i) {
      up0[i] += a.w0 * v[i];
      up1[i] += a.w1 * v[i];
    }
  }
  const Tap& a = x.ty[x.first[r]];
  for (int64_t k = 0; k < c; ++k) {
    PullBackRow(up0.data() + k * out_w, x.tx, grad + k * h * w + a.i0 * w);
    PullBackRow(up1.data() + k * out_w, x.tx, grad + k * h * w + a.i1 * w);
  }
  return loss;
}

// Source rows parity, parity + 2, ... of tasks [t0, t1) (per_image tasks per image).
U2PL_FORCE_INLINE void RowGroups(const CrossEntropyArgs& x, int64_t parity, int64_t t0, int64_t t1, double* partial) {
  const int64_t per_image = (x.h - parity + 1) / 2;
  CrossEntropyScratch scratch(x);
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t b = t / per_image, r = parity + 2 * (t % per_image);
    if (x.first[r] < x.first[r + 1]) partial[b * x.h + r] = RowsLossAndGrad(x, b, r, scratch);
  }
}

void RowGroupsBaseline(const CrossEntropyArgs& x, int64_t parity, int64_t t0, int64_t t1, double* partial) {
  RowGroups(x, parity, t0, t1, partial);
}
#if U2PL_HAVE_AVX2_COPY
U2PL_TARGET_AVX2 void RowGroupsAvx2(const CrossEntropyArgs& x, int64_t parity, int64_t t0, int64_t t1, double* partial) {
  RowGroups(x, parity, t0, t1, partial);
}
#endif

bool UsesCudaKernels(const at::Tensor& t) {
#ifdef U2PL_WITH_CUDA
  return t.is_cuda();
#else
  return false;
#endif
}

class UpsampledCrossEntropyFunction : public torch::autograd::Function<UpsampledCrossEntropyFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits_in, const at::Tensor& labels_in,
                            int64_t ignore_index, const at::Tensor& weight_in) {
#ifdef U2PL_WITH_CUDA
    if (logits_in.is_cuda()) {
      auto [sum, grad] = cuda::UpsampledCrossEntropy(logits_in, labels_in, ignore_index);
      ctx->save_for_backward({grad});
      return sum;
    }
#endif
    const at::Tensor logits = logits_in.contiguous();
    const at::Tensor labels = labels_in.contiguous();
    const at::Tensor weight = weight_in.numel() > 0 ? weight_in.to(at::kFloat).contiguous() : at::Tensor();
    const int64_t n = logits.size(0), c = logits.size(1), h = logits.size(2), w = logits.size(3);
    const int64_t out_h = labels.size(1), out_w = labels.size(2);
    at::Tensor grad = at::zeros_like(logits);
    const auto ty = AlignCornersTaps(h, out_h), tx = AlignCornersTaps(w, out_w);
    // Output rows grouped by their upper source row (the taps are monotone).
    std::vector<int64_t> first(h + 1, out_h);
    for (int64_t y = out_h - 1; y >= 0; --y) first[ty[y].i0] = y;
    for (int64_t r = h - 1; r >= 0; --r) first[r] = std::min(first[r], first[r + 1]);
    const CrossEntropyArgs args{logits.data_ptr<float>(), labels.data_ptr<int64_t>(),
                                weight.defined() ? weight.data_ptr<float>() : nullptr, grad.data_ptr<float>(), c, h, w,
                                out_h, ignore_index, ty, tx, first};
    std::vector<double> partial(n * h, 0.0);
    // Two phases (even, then odd source rows) so that concurrent tasks write disjoint rows; the
    // result does not depend on the thread count.
    for (int64_t parity = 0; parity < 2; ++parity) {
      at::parallel_for(0, n * ((h - parity + 1) / 2), 1, [&](int64_t t0, int64_t t1) {
#if U2PL_HAVE_AVX2_COPY
        if (UseAvx2Copy()) return RowGroupsAvx2(args, parity, t0, t1, partial.data());
#endif
        RowGroupsBaseline(args, parity, t0, t1, partial.data());
      });
    }
    double total = 0;
    for (double p : partial) total += p;
    ctx->save_for_backward({grad});
    return at::scalar_tensor(total, logits.options());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    return {ctx->get_saved_variables()[0] * grad_outputs[0], at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor UpsampledCrossEntropySum(const at::Tensor& logits, const at::Tensor& labels, int64_t ignore_index,
                                    const at::Tensor& class_weight) {
  TORCH_CHECK(logits.dim() == 4 && labels.dim() == 3 && logits.size(0) == labels.size(0),
              "cross-entropy: logits must be N x C x h x w and labels N x H x W with the same N; got ", logits.sizes(),
              " and ", labels.sizes());
  const int64_t c = logits.size(1);
  const at::Tensor y = labels.to(at::kLong);
  // Checked on the CPU only: on a GPU the read would wait for it every call. Training's labels were
  // checked file by file when read (lib/data/loader.ts), pseudo-labels are classes by construction.
  if (y.is_cpu()) {
    at::NoGradGuard no_grad;
    at::Tensor bad = y.ne(ignore_index).logical_and_(y.lt(0).logical_or_(y.ge(c)));
    TORCH_CHECK(!bad.any().item<bool>(), "cross-entropy: labels must be in [0, ", c, ") or ", ignore_index,
                ", found ", y.masked_select(bad)[0].item<int64_t>());
  }
  TORCH_CHECK(!class_weight.defined() || (class_weight.dim() == 1 && class_weight.numel() == c),
              "cross-entropy: class weights must be ", c, " values, got ", class_weight.sizes());
  at::Tensor x = logits.to(at::kFloat);
  // Other devices, and class weights on CUDA (its fused kernel has none): the same maths through ATen.
  if ((!x.is_cpu() && !UsesCudaKernels(x)) || (class_weight.defined() && !x.is_cpu())) {
    at::Tensor up = (x.size(2) == y.size(1) && x.size(3) == y.size(2)) ? x : at::upsample_bilinear2d(x, {y.size(1), y.size(2)}, true);
    const at::Tensor weight = class_weight.defined() ? class_weight.to(x.options()) : at::Tensor();
    return at::cross_entropy_loss(up, y, weight, at::Reduction::Sum, ignore_index);
  }
  // apply() records every tensor argument's device, so "no weights" is an empty tensor, not an undefined one.
  return UpsampledCrossEntropyFunction::apply(x, y, ignore_index,
                                              class_weight.defined() ? class_weight.cpu() : at::empty({0}, x.options()));
}

}  // namespace u2pl::loss
