#include "data/photometric.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace u2pl::data {
namespace {

constexpr float kLuma[3] = {0.299f, 0.587f, 0.114f};  // ITU-R 601-2, as PIL and torchvision

float Clamp01(float v) { return std::min(1.0f, std::max(0.0f, v)); }

// Separable Gaussian over one plane; edges replicated.
void BlurPlane(float* plane, int64_t h, int64_t w, const std::vector<float>& k, std::vector<float>& tmp) {
  const int64_t r = static_cast<int64_t>(k.size() / 2);
  tmp.resize(static_cast<size_t>(h * w));
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      float s = 0;
      for (int64_t d = -r; d <= r; ++d) s += k[d + r] * plane[y * w + std::clamp<int64_t>(x + d, 0, w - 1)];
      tmp[y * w + x] = s;
    }
  }
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      float s = 0;
      for (int64_t d = -r; d <= r; ++d) s += k[d + r] * tmp[std::clamp<int64_t>(y + d, 0, h - 1) * w + x];
      plane[y * w + x] = s;
    }
  }
}

}  // namespace

void ValidatePhotometricParams(const PhotometricParams& p) {
  auto bad = [](const std::string& what) { throw std::invalid_argument(what); };
  if (p.height < 1 || p.width < 1) bad("photometric: image size " + std::to_string(p.width) + "x" + std::to_string(p.height) + " must be positive");
  for (float f : {p.brightness, p.contrast, p.saturation}) {
    if (!(f >= 0) || !std::isfinite(f)) bad("photometric: jitter factors must be finite and >= 0, got " + std::to_string(f));
  }
  bool seen[3] = {false, false, false};
  for (int o : p.order) {
    if (o < 0 || o > 2 || seen[o]) bad("photometric: order must be a permutation of 0, 1, 2");
    seen[o] = true;
  }
  if (!(p.blur_sigma >= 0) || !(p.blur_sigma <= 50)) bad("photometric: blurSigma must be in [0, 50], got " + std::to_string(p.blur_sigma));
  for (float s : p.std) {
    if (!(s > 0)) bad("photometric: std must be positive");
  }
}

void Photometric(const float* in, const PhotometricParams& p, float* out) {
  const int64_t n = p.height * p.width;
  // To [0, 1] pixel values.
  for (int c = 0; c < 3; ++c) {
    for (int64_t i = 0; i < n; ++i) out[c * n + i] = (in[c * n + i] * p.std[c] + p.mean[c]) / 255.0f;
  }
  float* r = out;
  float* g = out + n;
  float* b = out + 2 * n;
  auto luma = [&](int64_t i) { return kLuma[0] * r[i] + kLuma[1] * g[i] + kLuma[2] * b[i]; };
  if (p.jitter) {
    for (int op : p.order) {
      if (op == 0) {
        for (int64_t i = 0; i < 3 * n; ++i) out[i] = Clamp01(out[i] * p.brightness);
      } else if (op == 1) {
        double sum = 0;  // contrast blends with the mean luma of the whole image
        for (int64_t i = 0; i < n; ++i) sum += luma(i);
        const float m = static_cast<float>(sum / static_cast<double>(n));
        for (int64_t i = 0; i < 3 * n; ++i) out[i] = Clamp01(p.contrast * out[i] + (1 - p.contrast) * m);
      } else {
        for (int64_t i = 0; i < n; ++i) {
          const float y = luma(i);
          r[i] = Clamp01(p.saturation * r[i] + (1 - p.saturation) * y);
          g[i] = Clamp01(p.saturation * g[i] + (1 - p.saturation) * y);
          b[i] = Clamp01(p.saturation * b[i] + (1 - p.saturation) * y);
        }
      }
    }
  }
  if (p.grayscale) {
    for (int64_t i = 0; i < n; ++i) r[i] = g[i] = b[i] = luma(i);
  }
  if (p.blur_sigma > 0) {
    const int64_t radius = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(3 * p.blur_sigma)));
    std::vector<float> k(static_cast<size_t>(2 * radius + 1));
    float total = 0;
    for (int64_t d = -radius; d <= radius; ++d) total += k[d + radius] = std::exp(-0.5f * d * d / (p.blur_sigma * p.blur_sigma));
    for (float& v : k) v /= total;
    std::vector<float> tmp;
    for (int c = 0; c < 3; ++c) BlurPlane(out + c * n, p.height, p.width, k, tmp);
  }
  for (int c = 0; c < 3; ++c) {
    for (int64_t i = 0; i < n; ++i) out[c * n + i] = (out[c * n + i] * 255.0f - p.mean[c]) / p.std[c];
  }
}

}  // namespace u2pl::data
