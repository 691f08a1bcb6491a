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
  const float* src = logits.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, n * out_h, 1, [&](int64_t begin, int64_t end) {
    // One output row at a time, class by class, so the inner loops run along x and vectorise.
    std::vector<float> v(c * out_w), m(out_w), s(out_w), t(out_w);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / out_h;
      const Tap a = ty[row % out_h];
      InterpolateRow(src + b * c * h * w, c, h, w, a, tx, v.data());
      std::fill(m.begin(), m.end(), -INFINITY);
      for (int64_t k = 0; k < c; ++k)
        for (int64_t x = 0; x < out_w; ++x) m[x] = std::max(m[x], v[k * out_w + x]);
      std::fill(s.begin(), s.end(), 0.f);
      std::fill(t.begin(), t.end(), 0.f);
      for (int64_t k = 0; k < c; ++k) {
        for (int64_t x = 0; x < out_w; ++x) {
          const float z = v[k * out_w + x] - m[x];
          const float e = Exp(z);
          s[x] += e;
          t[x] += e * z;
        }
      }
      // -sum p ln p = ln s - sum e z / s, with p = e / s and z = logit - max.
      float* o = dst + row * out_w;
      for (int64_t x = 0; x < out_w; ++x) o[x] = std::log(s[x]) - t[x] / s[x];
    }
  });
  return out;
}

}  // namespace u2pl::loss
