// Align-corners bilinear taps shared by the fused kernels (same arithmetic as ATen's
// upsample_bilinear2d with align_corners = true).
#pragma once

#include <cstdint>
#include <vector>

namespace u2pl::loss {

struct Tap {
  int64_t i0, i1;
  float w0, w1;
};

// Source taps of each output index: scale = (in - 1) / (out - 1) (0 when out == 1).
inline std::vector<Tap> AlignCornersTaps(int64_t in, int64_t out) {
  std::vector<Tap> taps(out);
  const float scale = out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.f;
  for (int64_t o = 0; o < out; ++o) {
    const float src = scale * static_cast<float>(o);
    const int64_t i0 = static_cast<int64_t>(src);
    const float l1 = src - static_cast<float>(i0);
    taps[o] = {i0, i0 < in - 1 ? i0 + 1 : i0, 1.f - l1, l1};
  }
  return taps;
}

// Interpolated values of one output row for all c planes (each h x w) into out[k * tx.size() + x].
inline void InterpolateRow(const float* planes, int64_t c, int64_t h, int64_t w, const Tap& a, const std::vector<Tap>& tx,
                           float* out) {
  const int64_t out_w = static_cast<int64_t>(tx.size());
  for (int64_t k = 0; k < c; ++k) {
    const float* r0 = planes + k * h * w + a.i0 * w;
    const float* r1 = planes + k * h * w + a.i1 * w;
    float* o = out + k * out_w;
    for (int64_t x = 0; x < out_w; ++x) {
      const Tap& t = tx[x];
      o[x] = a.w0 * (t.w0 * r0[t.i0] + t.w1 * r0[t.i1]) + a.w1 * (t.w0 * r1[t.i0] + t.w1 * r1[t.i1]);
    }
  }
}

}  // namespace u2pl::loss
