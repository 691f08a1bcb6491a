#include "data/augment.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace u2pl::data {
namespace {

// Half-pixel bilinear taps (align_corners = false, no antialiasing), as ATen computes them.
struct Tap {
  int64_t i0, i1;
  float w0, w1;
};

std::vector<Tap> HalfPixelTaps(int64_t in, int64_t out) {
  std::vector<Tap> taps(out);
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int64_t o = 0; o < out; ++o) {
    float src = scale * (static_cast<float>(o) + 0.5f) - 0.5f;
    if (src < 0) src = 0;
    const int64_t i0 = static_cast<int64_t>(src);
    const float l1 = src - static_cast<float>(i0);
    taps[o] = {i0, i0 < in - 1 ? i0 + 1 : i0, 1.f - l1, l1};
  }
  return taps;
}

// Legacy nearest: min(floor(dst * in / out), in - 1) with a float scale.
std::vector<int64_t> NearestIndex(int64_t in, int64_t out) {
  std::vector<int64_t> idx(out);
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int64_t o = 0; o < out; ++o) idx[o] = std::min(static_cast<int64_t>(std::floor(static_cast<float>(o) * scale)), in - 1);
  return idx;
}

int64_t Reflect101(int64_t i, int64_t n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

// 5x5 Gaussian, sigma 1.1, separable, borders reflected (OpenCV's default BORDER_REFLECT_101).
void Blur(std::vector<float>& planes, int64_t h, int64_t w) {
  float k[5];
  float sum = 0;
  for (int i = 0; i < 5; ++i) sum += k[i] = std::exp(-static_cast<float>((i - 2) * (i - 2)) / (2 * 1.1f * 1.1f));
  for (float& v : k) v /= sum;
  std::vector<float> tmp(h * w);
  for (int64_t c = 0; c < 3; ++c) {
    float* p = planes.data() + c * h * w;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        float acc = 0;
        for (int i = 0; i < 5; ++i) acc += k[i] * p[y * w + Reflect101(x + i - 2, w)];
        tmp[y * w + x] = acc;
      }
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        float acc = 0;
        for (int i = 0; i < 5; ++i) acc += k[i] * tmp[Reflect101(y + i - 2, h) * w + x];
        p[y * w + x] = acc;
      }
  }
}

// Resizes normalised planes (bilinear, half-pixel) and labels (nearest) from h x w to nh x nw.
void Resize(std::vector<float>& planes, std::vector<uint8_t>& labels, bool with_label, int64_t h, int64_t w, int64_t nh,
            int64_t nw) {
  if (nh == h && nw == w) return;
  const auto ty = HalfPixelTaps(h, nh), tx = HalfPixelTaps(w, nw);
  std::vector<float> scaled(3 * nh * nw);
  for (int64_t c = 0; c < 3; ++c) {
    const float* src = planes.data() + c * h * w;
    float* dst = scaled.data() + c * nh * nw;
    for (int64_t y = 0; y < nh; ++y) {
      const Tap& a = ty[y];
      const float* r0 = src + a.i0 * w;
      const float* r1 = src + a.i1 * w;
      for (int64_t x = 0; x < nw; ++x) {
        const Tap& t = tx[x];
        dst[y * nw + x] = a.w0 * (t.w0 * r0[t.i0] + t.w1 * r0[t.i1]) + a.w1 * (t.w0 * r1[t.i0] + t.w1 * r1[t.i1]);
      }
    }
  }
  planes.swap(scaled);
  if (with_label) {
    const auto ny = NearestIndex(h, nh), nx = NearestIndex(w, nw);
    std::vector<uint8_t> scaled_labels(nh * nw);
    for (int64_t y = 0; y < nh; ++y)
      for (int64_t x = 0; x < nw; ++x) scaled_labels[y * nw + x] = labels[ny[y] * w + nx[x]];
    labels.swap(scaled_labels);
  }
}

}  // namespace

void ValidateAugmentParams(const AugmentParams& p) {
  auto positive = [](int64_t v, const char* name) {
    if (v <= 0) throw std::invalid_argument(std::string(name) + " must be positive, got " + std::to_string(v));
  };
  positive(p.height, "height");
  positive(p.width, "width");
  positive(p.resized_height, "resizedHeight");
  positive(p.resized_width, "resizedWidth");
  positive(p.scaled_height, "scaledHeight");
  positive(p.scaled_width, "scaledWidth");
  positive(p.crop_height, "cropHeight");
  positive(p.crop_width, "cropWidth");
  const int64_t padded_h = std::max(p.scaled_height, p.crop_height), padded_w = std::max(p.scaled_width, p.crop_width);
  if (p.crop_top < 0 || p.crop_top > padded_h - p.crop_height)
    throw std::invalid_argument("cropTop " + std::to_string(p.crop_top) + " outside [0, " + std::to_string(padded_h - p.crop_height) + "]");
  if (p.crop_left < 0 || p.crop_left > padded_w - p.crop_width)
    throw std::invalid_argument("cropLeft " + std::to_string(p.crop_left) + " outside [0, " + std::to_string(padded_w - p.crop_width) + "]");
  for (int c = 0; c < 3; ++c)
    if (!(p.std[c] > 0)) throw std::invalid_argument("std values must be positive");
}

void Augment(const uint8_t* image, const uint8_t* label, const AugmentParams& p, float* out_image, uint8_t* out_label) {
  ValidateAugmentParams(p);
  const int64_t h = p.height, w = p.width, sh = p.scaled_height, sw = p.scaled_width;
  // 1. Normalise first (so zero padding is the mean colour), planar layout.
  std::vector<float> planes(3 * h * w);
  for (int64_t c = 0; c < 3; ++c) {
    const float m = p.mean[c], inv = 1.f / p.std[c];
    float* dst = planes.data() + c * h * w;
    for (int64_t i = 0; i < h * w; ++i) dst[i] = (static_cast<float>(image[i * 3 + c]) - m) * inv;
  }
  // 2. Fixed resize, then the random one: image bilinear (half-pixel), label nearest.
  std::vector<uint8_t> labels;
  if (label) labels.assign(label, label + h * w);
  Resize(planes, labels, label != nullptr, h, w, p.resized_height, p.resized_width);
  Resize(planes, labels, label != nullptr, p.resized_height, p.resized_width, sh, sw);
  // 3. Blur (image only).
  if (p.blur) Blur(planes, sh, sw);
  // 4 + 5. Flip and crop with padding in one pass: output (y, x) reads padded (top + y, left + x).
  const int64_t before_h = std::max<int64_t>(p.crop_height - sh, 0) / 2;
  const int64_t before_w = std::max<int64_t>(p.crop_width - sw, 0) / 2;
  for (int64_t y = 0; y < p.crop_height; ++y) {
    const int64_t sy = p.crop_top + y - before_h;
    const bool row_in = sy >= 0 && sy < sh;
    for (int64_t x = 0; x < p.crop_width; ++x) {
      const int64_t px = p.crop_left + x - before_w;
      const bool in = row_in && px >= 0 && px < sw;
      const int64_t sx = p.flip ? sw - 1 - px : px;
      for (int64_t c = 0; c < 3; ++c)
        out_image[(c * p.crop_height + y) * p.crop_width + x] = in ? planes[(c * sh + sy) * sw + sx] : 0.f;
      if (label) out_label[y * p.crop_width + x] = in ? labels[sy * sw + sx] : p.label_pad;
    }
  }
}

}  // namespace u2pl::data
