#include "loss/upsampled_cross_entropy.h"

#include <cmath>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
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

// Adds the transpose of the horizontal interpolation of `row` (out_w values) to `dst` (w values).
inline void PullBackRow(const float* row, const std::vector<Tap>& tx, float* dst) {
  for (size_t x = 0; x < tx.size(); ++x) {
    dst[tx[x].i0] += tx[x].w0 * row[x];
    dst[tx[x].i1] += tx[x].w1 * row[x];
  }
}

// Loss and gradient of the output rows whose upper source row is r (rows [begin, end) of image b).
// Writes only to source rows r and r + 1 of grad, so tasks two rows apart never overlap.
double RowsLossAndGrad(const float* logits, const int64_t* labels, float* grad, int64_t c, int64_t h, int64_t w,
                       int64_t out_h, int64_t out_w, const std::vector<Tap>& ty, const std::vector<Tap>& tx,
                       int64_t begin, int64_t end, int64_t ignore_index, std::vector<float>& v) {
  std::vector<float> m(out_w), s(out_w), zl(out_w), up0(c * out_w, 0.f), up1(c * out_w, 0.f);
  double loss = 0;
  for (int64_t y = begin; y < end; ++y) {
    const Tap& a = ty[y];
    const int64_t* lab = labels + y * out_w;
    InterpolateRow(logits, c, h, w, a, tx, v.data());
    for (int64_t x = 0; x < out_w; ++x) m[x] = v[x];
    for (int64_t k = 1; k < c; ++k)
      for (int64_t x = 0; x < out_w; ++x) m[x] = std::max(m[x], v[k * out_w + x]);
    for (int64_t x = 0; x < out_w; ++x) {
      const int64_t l = lab[x];
      zl[x] = l == ignore_index ? 0.f : v[l * out_w + x] - m[x];
    }
    std::fill(s.begin(), s.end(), 0.f);
    for (int64_t k = 0; k < c; ++k) {
      float* vk = v.data() + k * out_w;
      for (int64_t x = 0; x < out_w; ++x) {
        const float e = Exp(vk[x] - m[x]);
        vk[x] = e;
        s[x] += e;
      }
    }
    // -log p_label = log s - z_label; the gradient of the pixel's term is p - onehot (0 if ignored).
    for (int64_t x = 0; x < out_w; ++x) {
      const bool keep = lab[x] != ignore_index;
      if (keep) loss += std::log(s[x]) - zl[x];
      s[x] = keep ? 1.f / s[x] : 0.f;
    }
    for (int64_t k = 0; k < c; ++k) {
      float* vk = v.data() + k * out_w;
      for (int64_t x = 0; x < out_w; ++x) vk[x] *= s[x];
    }
    for (int64_t x = 0; x < out_w; ++x)
      if (lab[x] != ignore_index) v[lab[x] * out_w + x] -= 1.f;
    // Pull back along y first (vectorised, into full-width rows of the two source rows), then
    // once per group along x.
    for (int64_t i = 0; i < c * out_w; ++i) {
      up0[i] += a.w0 * v[i];
      up1[i] += a.w1 * v[i];
    }
  }
  const Tap& a = ty[begin];
  for (int64_t k = 0; k < c; ++k) {
    PullBackRow(up0.data() + k * out_w, tx, grad + k * h * w + a.i0 * w);
    PullBackRow(up1.data() + k * out_w, tx, grad + k * h * w + a.i1 * w);
  }
  return loss;
}

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
                            int64_t ignore_index) {
#ifdef U2PL_WITH_CUDA
    if (logits_in.is_cuda()) {
      auto [sum, grad] = cuda::UpsampledCrossEntropy(logits_in, labels_in, ignore_index);
      ctx->save_for_backward({grad});
      return sum;
    }
#endif
    const at::Tensor logits = logits_in.contiguous();
    const at::Tensor labels = labels_in.contiguous();
    const int64_t n = logits.size(0), c = logits.size(1), h = logits.size(2), w = logits.size(3);
    const int64_t out_h = labels.size(1), out_w = labels.size(2);
    at::Tensor grad = at::zeros_like(logits);
    const auto ty = AlignCornersTaps(h, out_h), tx = AlignCornersTaps(w, out_w);
    // Output rows grouped by their upper source row (the taps are monotone).
    std::vector<int64_t> first(h + 1, out_h);
    for (int64_t y = out_h - 1; y >= 0; --y) first[ty[y].i0] = y;
    for (int64_t r = h - 1; r >= 0; --r) first[r] = std::min(first[r], first[r + 1]);
    const float* src = logits.data_ptr<float>();
    const int64_t* lab = labels.data_ptr<int64_t>();
    float* g = grad.data_ptr<float>();
    std::vector<double> partial(n * h, 0.0);
    // Two phases (even, then odd source rows) so that concurrent tasks write disjoint rows; the
    // result does not depend on the thread count.
    for (int64_t parity = 0; parity < 2; ++parity) {
      const int64_t per_image = (h - parity + 1) / 2;
      at::parallel_for(0, n * per_image, 1, [&](int64_t t0, int64_t t1) {
        std::vector<float> v(c * out_w);
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t b = t / per_image, r = parity + 2 * (t % per_image);
          if (first[r] == first[r + 1]) continue;
          partial[b * h + r] = RowsLossAndGrad(src + b * c * h * w, lab + b * out_h * out_w, g + b * c * h * w, c, h, w,
                                               out_h, out_w, ty, tx, first[r], first[r + 1], ignore_index, v);
        }
      });
    }
    double total = 0;
    for (double p : partial) total += p;
    ctx->save_for_backward({grad});
    return at::scalar_tensor(total, logits.options());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    return {ctx->get_saved_variables()[0] * grad_outputs[0], at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor UpsampledCrossEntropySum(const at::Tensor& logits, const at::Tensor& labels, int64_t ignore_index) {
  TORCH_CHECK(logits.dim() == 4 && labels.dim() == 3 && logits.size(0) == labels.size(0),
              "cross-entropy: logits must be N x C x h x w and labels N x H x W with the same N; got ", logits.sizes(),
              " and ", labels.sizes());
  const int64_t c = logits.size(1);
  const at::Tensor y = labels.to(at::kLong);
  {
    at::NoGradGuard no_grad;
    at::Tensor bad = y.ne(ignore_index).logical_and_(y.lt(0).logical_or_(y.ge(c)));
    TORCH_CHECK(!bad.any().item<bool>(), "cross-entropy: labels must be in [0, ", c, ") or ", ignore_index,
                ", found ", y.masked_select(bad)[0].item<int64_t>());
  }
  at::Tensor x = logits.to(at::kFloat);
  if (!x.is_cpu() && !UsesCudaKernels(x)) {
    // Other devices: the same maths through ATen.
    at::Tensor up = (x.size(2) == y.size(1) && x.size(3) == y.size(2)) ? x : at::upsample_bilinear2d(x, {y.size(1), y.size(2)}, true);
    return at::cross_entropy_loss(up, y, {}, at::Reduction::Sum, ignore_index);
  }
  return UpsampledCrossEntropyFunction::apply(x, y, ignore_index);
}

}  // namespace u2pl::loss
