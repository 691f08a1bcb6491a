#include "loss/entropy.h"

#include <cmath>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "loss/interpolation.h"
#include "loss/vector_math.h"

#ifdef U2PL_WITH_CUDA
#include "loss/cuda/loss_kernels_cuda.h"
#endif

namespace u2pl::loss {
namespace {

struct EntropyArgs {
  const float* logits;  // N x C x h x w
  float* entropy;       // N x H x W
  int64_t c, h, w, out_h;
  const std::vector<Tap>& ty;
  const std::vector<Tap>& tx;
};

// Output rows [begin, end), counted over all images. One row at a time, class by class, so the
// inner loops run along x and vectorise.
U2PL_FORCE_INLINE void EntropyRows(const EntropyArgs& x, int64_t begin, int64_t end) {
  const int64_t c = x.c, out_w = static_cast<int64_t>(x.tx.size());
  UpsampledRows up(c, x.h, x.w, x.tx);
  std::vector<float> v(c * out_w), m(out_w), s(out_w), t(out_w);
  int64_t image = -1;
  for (int64_t row = begin; row < end; ++row) {
    if (row / x.out_h != image) {
      image = row / x.out_h;
      up.SetImage(x.logits + image * c * x.h * x.w);
    }
    up.Row(x.ty[row % x.out_h], v.data());
    std::fill(m.begin(), m.end(), -INFINITY);
    for (int64_t k = 0; k < c; ++k)
      for (int64_t i = 0; i < out_w; ++i) m[i] = std::max(m[i], v[k * out_w + i]);
    std::fill(s.begin(), s.end(), 0.f);
    std::fill(t.begin(), t.end(), 0.f);
    for (int64_t k = 0; k < c; ++k) {
      for (int64_t i = 0; i < out_w; ++i) {
        const float z = v[k * out_w + i] - m[i];
        const float e = Exp(z);
        s[i] += e;
        t[i] += e * z;
      }
    }
    // -sum p ln p = ln s - sum e z / s, with p = e / s and z = logit - max.
    float* o = x.entropy + row * out_w;
    for (int64_t i = 0; i < out_w; ++i) o[i] = std::log(s[i]) - t[i] / s[i];
  }
}

void EntropyRowsBaseline(const EntropyArgs& x, int64_t begin, int64_t end) { EntropyRows(x, begin, end); }
#if U2PL_HAVE_AVX2_COPY
U2PL_TARGET_AVX2 void EntropyRowsAvx2(const EntropyArgs& x, int64_t begin, int64_t end) { EntropyRows(x, begin, end); }
#endif

}  // namespace

at::Tensor UpsampledEntropy(const at::Tensor& logits_in, int64_t out_h, int64_t out_w) {
  TORCH_CHECK(logits_in.dim() == 4, "entropy expects N x C x h x w logits, got ", logits_in.sizes());
#ifdef U2PL_WITH_CUDA
  if (logits_in.is_cuda()) return cuda::UpsampledEntropy(logits_in, out_h, out_w);
#endif
  if (!logits_in.is_cpu()) {
    // Other devices: the same maths through ATen.
    at::Tensor p = at::softmax(at::upsample_bilinear2d(logits_in.to(at::kFloat), {out_h, out_w}, true), 1);
    return -(p * (p + 1e-10).log()).sum(1);
  }
  const at::Tensor logits = logits_in.to(at::kFloat).contiguous();
  const int64_t n = logits.size(0), c = logits.size(1), h = logits.size(2), w = logits.size(3);
  at::Tensor out = at::empty({n, out_h, out_w}, logits.options());
  const auto ty = AlignCornersTaps(h, out_h), tx = AlignCornersTaps(w, out_w);
  const EntropyArgs args{logits.data_ptr<float>(), out.data_ptr<float>(), c, h, w, out_h, ty, tx};
  at::parallel_for(0, n * out_h, 1, [&](int64_t begin, int64_t end) {
#if U2PL_HAVE_AVX2_COPY
    if (UseAvx2Copy()) return EntropyRowsAvx2(args, begin, end);
#endif
    EntropyRowsBaseline(args, begin, end);
  });
  return out;
}

}  // namespace u2pl::loss
