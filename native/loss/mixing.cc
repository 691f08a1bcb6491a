#include "loss/mixing.h"

#include <cmath>

#include <ATen/ATen.h>

namespace u2pl::loss {
namespace {

int64_t RandInt(int64_t low, int64_t high_exclusive, at::Generator& generator) {
  return at::randint(low, high_exclusive, {1}, generator, at::TensorOptions().dtype(at::kLong)).item<int64_t>();
}

}  // namespace

at::Tensor CutoutMask(int64_t h, int64_t w, at::Generator generator) {
  TORCH_CHECK(h >= 2 && w >= 3, "CutMix needs images of at least 2 x 3 pixels, got ", h, " x ", w);
  const int64_t box_w = RandInt(w / 2 + 1, w, generator);
  const int64_t box_h = static_cast<int64_t>(std::nearbyint(static_cast<double>(h * w) / 2.0 / static_cast<double>(box_w)));
  const int64_t left = RandInt(0, w - box_w + 1, generator);
  const int64_t top = RandInt(0, h - box_h + 1, generator);
  at::Tensor mask = at::ones({h, w}, at::TensorOptions().dtype(at::kBool));
  mask.slice(0, top, top + box_h).slice(1, left, left + box_w).fill_(false);
  return mask;
}

MixResult Mix(const at::Tensor& images, const at::Tensor& labels, const at::Tensor& confidence, MixMode mode,
              at::Generator generator, int64_t ignore_index) {
  const int64_t b = images.size(0), h = images.size(2), w = images.size(3);
  TORCH_CHECK(labels.sizes() == at::IntArrayRef({b, h, w}) && confidence.sizes() == labels.sizes(),
              "mixing: labels and confidence must be B x H x W matching the images");
  std::vector<at::Tensor> masks;
  for (int64_t i = 0; i < b; ++i) {
    if (mode == MixMode::kClassMix) {
      at::Tensor classes = std::get<0>(at::_unique(labels[i].cpu(), /*sorted=*/true));
      at::Tensor order = at::randperm(classes.size(0), generator, at::TensorOptions().dtype(at::kLong));
      at::Tensor chosen = classes.index_select(0, order.slice(0, 0, classes.size(0) / 2)).to(labels.device());
      masks.push_back(at::isin(labels[i], chosen));
    } else {
      masks.push_back(CutoutMask(h, w, generator).to(images.device()));
    }
  }
  MixResult r;
  r.mask = at::stack(masks);
  if (mode == MixMode::kCutOut) {
    at::Tensor box = r.mask.logical_not();
    r.images = images.masked_fill(box.unsqueeze(1), 0);
    r.labels = labels.masked_fill(box, ignore_index);
    r.confidence = confidence.masked_fill(box, 0);
    return r;
  }
  at::Tensor partner = at::arange(1, b + 1, at::TensorOptions().dtype(at::kLong)).remainder_(b).to(images.device());
  r.images = at::where(r.mask.unsqueeze(1), images, images.index_select(0, partner));
  r.labels = at::where(r.mask, labels, labels.index_select(0, partner));
  r.confidence = at::where(r.mask, confidence, confidence.index_select(0, partner));
  return r;
}

at::Tensor MixLike(const at::Tensor& labels, const at::Tensor& mask, MixMode mode, int64_t ignore_index) {
  if (mode == MixMode::kCutOut) return labels.masked_fill(mask.logical_not(), ignore_index);
  const int64_t b = labels.size(0);
  at::Tensor partner = at::arange(1, b + 1, at::TensorOptions().dtype(at::kLong)).remainder_(b).to(labels.device());
  return at::where(mask, labels, labels.index_select(0, partner));
}

}  // namespace u2pl::loss
