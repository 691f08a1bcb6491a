#include "loss/entropy.h"

#include <cmath>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace u2pl::loss {
namespace {

// ATen's align-corners source index: scale = (in - 1) / (out - 1), 0 when out == 1.
struct Tap {
  int64_t i0, i1;
  float w0, w1;
};

std::vector<Tap> Taps(int64_t in, int64_t out) {
  std::vector<Tap> taps(out);
  const float scale = out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.f;
  for (int64_t o = 0; o < out; ++o) {
    const float src = scale * static_cast<float>(o);
    const int64_t i0 = static_cast<int64_t>(src);
    const int64_t step = i0 < in - 1 ? 1 : 0;
    const float l1 = src - static_cast<float>(i0);
    taps[o] = {i0, i0 + step, 1.f - l1, l1};
  }
  return taps;
}

}  // namespace

at::Tensor UpsampledEntropy(const at::Tensor& logits_in, int64_t out_h, int64_t out_w) {
  TORCH_CHECK(logits_in.dim() == 4, "entropy expects N x C x h x w logits, got ", logits_in.sizes());
  if (!logits_in.is_cpu()) {
    // Composite path on other devices: same maths through ATen.
    at::Tensor up = at::upsample_bilinear2d(logits_in.to(at::kFloat), {out_h, out_w}, true);
    at::Tensor p = at::softmax(up, 1);
    return -(p * (p + 1e-10).log()).sum(1);
  }
  const at::Tensor logits = logits_in.to(at::kFloat).contiguous();
  const int64_t n = logits.size(0), c = logits.size(1), h = logits.size(2), w = logits.size(3);
  at::Tensor out = at::empty({n, out_h, out_w}, logits.options());
  const auto ty = Taps(h, out_h), tx = Taps(w, out_w);
  const float* src = logits.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  const int64_t plane = h * w;
  at::parallel_for(0, n * out_h, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> v(c);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / out_h, y = row % out_h;
      const Tap& a = ty[y];
      const float* base = src + b * c * plane;
      for (int64_t x = 0; x < out_w; ++x) {
        const Tap& t = tx[x];
        float m = -INFINITY;
        for (int64_t k = 0; k < c; ++k) {
          const float* p = base + k * plane;
          // Same association as ATen's kernel: rows first, then columns.
          const float val = a.w0 * (t.w0 * p[a.i0 * w + t.i0] + t.w1 * p[a.i0 * w + t.i1]) +
                            a.w1 * (t.w0 * p[a.i1 * w + t.i0] + t.w1 * p[a.i1 * w + t.i1]);
          v[k] = val;
          m = std::max(m, val);
        }
        double sum = 0;
        for (int64_t k = 0; k < c; ++k) sum += std::exp(static_cast<double>(v[k] - m));
        double ent = 0;
        for (int64_t k = 0; k < c; ++k) {
          const double p = std::exp(static_cast<double>(v[k] - m)) / sum;
          ent -= p * std::log(p + 1e-10);
        }
        dst[row * out_w + x] = static_cast<float>(ent);
      }
    }
  });
  return out;
}

}  // namespace u2pl::loss
