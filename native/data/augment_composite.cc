#include "data/augment_composite.h"

#include <cmath>

#include <ATen/ATen.h>

namespace u2pl::data {

std::pair<at::Tensor, at::Tensor> AugmentComposite(const at::Tensor& image, const at::Tensor& label, const AugmentParams& p) {
  ValidateAugmentParams(p);
  at::Tensor x = image.permute({2, 0, 1}).to(at::kFloat);
  x = (x - at::tensor({p.mean[0], p.mean[1], p.mean[2]}).view({3, 1, 1})) / at::tensor({p.std[0], p.std[1], p.std[2]}).view({3, 1, 1});
  at::Tensor y = label.defined() ? label.to(at::kFloat).unsqueeze(0).unsqueeze(0) : label;
  auto resize = [&](int64_t from_h, int64_t from_w, int64_t to_h, int64_t to_w) {
    if (to_h == from_h && to_w == from_w) return;
    x = at::upsample_bilinear2d(x.unsqueeze(0), {to_h, to_w}, false).squeeze(0);
    if (y.defined()) y = at::upsample_nearest2d(y, {to_h, to_w});
  };
  resize(p.height, p.width, p.resized_height, p.resized_width);
  resize(p.resized_height, p.resized_width, p.scaled_height, p.scaled_width);
  if (p.blur) {
    std::vector<float> k(5);
    float sum = 0;
    for (int i = 0; i < 5; ++i) sum += k[i] = std::exp(-static_cast<float>((i - 2) * (i - 2)) / (2 * 1.1f * 1.1f));
    at::Tensor g = at::tensor(k) / sum;
    at::Tensor padded = at::reflection_pad2d(x.unsqueeze(0), {2, 2, 2, 2});
    padded = at::conv2d(padded, g.view({1, 1, 1, 5}).repeat({3, 1, 1, 1}), at::Tensor(), at::IntArrayRef{1}, at::IntArrayRef{0}, at::IntArrayRef{1}, 3);
    x = at::conv2d(padded, g.view({1, 1, 5, 1}).repeat({3, 1, 1, 1}), at::Tensor(), at::IntArrayRef{1}, at::IntArrayRef{0}, at::IntArrayRef{1}, 3).squeeze(0);
  }
  if (p.flip) {
    x = x.flip({2});
    if (y.defined()) y = y.flip({3});
  }
  const int64_t pad_h = std::max<int64_t>(p.crop_height - p.scaled_height, 0), pad_w = std::max<int64_t>(p.crop_width - p.scaled_width, 0);
  x = at::constant_pad_nd(x, {pad_w / 2, pad_w - pad_w / 2, pad_h / 2, pad_h - pad_h / 2}, 0);
  x = x.slice(1, p.crop_top, p.crop_top + p.crop_height).slice(2, p.crop_left, p.crop_left + p.crop_width).contiguous();
  if (y.defined()) {
    y = at::constant_pad_nd(y, {pad_w / 2, pad_w - pad_w / 2, pad_h / 2, pad_h - pad_h / 2}, p.label_pad);
    y = y.squeeze(0).squeeze(0).slice(0, p.crop_top, p.crop_top + p.crop_height).slice(1, p.crop_left, p.crop_left + p.crop_width);
    y = y.to(at::kByte).contiguous();
  }
  return {x, y};
}

}  // namespace u2pl::data

namespace u2pl::data {

at::Tensor PhotometricComposite(const at::Tensor& image, const PhotometricParams& p) {
  ValidatePhotometricParams(p);
  const at::Tensor mean = at::tensor({p.mean[0], p.mean[1], p.mean[2]}).view({3, 1, 1});
  const at::Tensor std = at::tensor({p.std[0], p.std[1], p.std[2]}).view({3, 1, 1});
  const at::Tensor luma_weights = at::tensor({0.299f, 0.587f, 0.114f}).view({3, 1, 1});
  at::Tensor v = (image.to(at::kFloat) * std + mean) / 255;
  auto luma = [&](const at::Tensor& t) { return (t * luma_weights).sum(0, true); };
  if (p.jitter) {
    for (int op : p.order) {
      if (op == 0) v = (v * p.brightness).clamp(0, 1);
      if (op == 1) v = (v * p.contrast + luma(v).mean() * (1 - p.contrast)).clamp(0, 1);
      if (op == 2) v = (v * p.saturation + luma(v) * (1 - p.saturation)).clamp(0, 1);
    }
  }
  if (p.grayscale) v = luma(v).expand({3, -1, -1});
  if (p.blur_sigma > 0) {
    const int64_t r = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(3 * p.blur_sigma)));
    at::Tensor d = at::arange(-r, r + 1, at::kFloat);
    at::Tensor k = at::exp(d * d * (-0.5 / (p.blur_sigma * p.blur_sigma)));
    k = k / k.sum();
    at::Tensor x = at::replication_pad2d(v.unsqueeze(0).contiguous(), {r, r, r, r});
    x = at::conv2d(x, k.view({1, 1, 1, -1}).repeat({3, 1, 1, 1}), at::Tensor(), at::IntArrayRef{1}, at::IntArrayRef{0}, at::IntArrayRef{1}, 3);
    v = at::conv2d(x, k.view({1, 1, -1, 1}).repeat({3, 1, 1, 1}), at::Tensor(), at::IntArrayRef{1}, at::IntArrayRef{0}, at::IntArrayRef{1}, 3).squeeze(0);
  }
  return ((v * 255 - mean) / std).contiguous();
}

}  // namespace u2pl::data
