// Align-corners bilinear taps shared by the fused kernels (same arithmetic as ATen's
// upsample_bilinear2d with align_corners = true).
#pragma once

#include <cstdint>
#include <vector>

#include "loss/simd.h"

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

// One output row of all c planes (each h x w) into out[k * out_w + x], in ATen's order: along x
// within each of the two source rows, then along y. The x-interpolated source rows are kept (one
// slot per row parity, since a row's two sources are r and r + 1), so consecutive output rows,
// which mostly share their sources, do the gathering work once.
class UpsampledRows {
 public:
  UpsampledRows(int64_t c, int64_t h, int64_t w, const std::vector<Tap>& tx)
      : c_(c), h_(h), w_(w), tx_(tx), slot_(2, std::vector<float>(c * tx.size())) {}

  // Planes of the image whose rows follow (drops the kept rows).
  void SetImage(const float* planes) {
    planes_ = planes;
    tag_[0] = tag_[1] = -1;
  }

  U2PL_FORCE_INLINE void Row(const Tap& a, float* out) {
    const float* top = Source(a.i0);
    const float* bottom = Source(a.i1);
    const int64_t n = c_ * static_cast<int64_t>(tx_.size());
    for (int64_t i = 0; i < n; ++i) out[i] = a.w0 * top[i] + a.w1 * bottom[i];
  }

 private:
  U2PL_FORCE_INLINE const float* Source(int64_t r) {
    std::vector<float>& row = slot_[r & 1];
    if (tag_[r & 1] == r) return row.data();
    tag_[r & 1] = r;
    const int64_t out_w = static_cast<int64_t>(tx_.size());
    for (int64_t k = 0; k < c_; ++k) {
      const float* src = planes_ + (k * h_ + r) * w_;
      float* o = row.data() + k * out_w;
      for (int64_t x = 0; x < out_w; ++x) o[x] = tx_[x].w0 * src[tx_[x].i0] + tx_[x].w1 * src[tx_[x].i1];
    }
    return row.data();
  }

  int64_t c_, h_, w_;
  const std::vector<Tap>& tx_;
  std::vector<std::vector<float>> slot_;
  int64_t tag_[2] = {-1, -1};
  const float* planes_ = nullptr;
};

}  // namespace u2pl::loss
