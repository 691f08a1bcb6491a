#include "model/inference.h"

#include <cmath>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "loss/metrics.h"
#include "util/autocast.h"

namespace u2pl::model {
namespace {

at::Tensor Logits(SegmentationModel& model, const at::Tensor& x, const InferenceOptions& o) {
  util::AutocastScope autocast(x.device().type(), o.autocast);
  at::Tensor input = o.channels_last ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
  return model->forward(input, /*pred_only=*/true).pred.to(at::kFloat);
}

at::Tensor WithFlip(SegmentationModel& model, const at::Tensor& x, const InferenceOptions& o, int64_t h, int64_t w) {
  at::Tensor out = at::upsample_bilinear2d(Logits(model, x, o), {h, w}, true);
  if (o.flip) out = out + at::upsample_bilinear2d(Logits(model, x.flip({3}), o), {h, w}, true).flip({3});
  return out;
}

at::Tensor Sliding(SegmentationModel& model, const at::Tensor& image, const InferenceOptions& o) {
  const int64_t h = image.size(2), w = image.size(3), crop_h = o.crop_h, crop_w = o.crop_w;
  const int64_t pad_h = std::max<int64_t>(crop_h - h, 0), pad_w = std::max<int64_t>(crop_w - w, 0);
  at::Tensor padded = at::constant_pad_nd(image, {pad_w / 2, pad_w - pad_w / 2, pad_h / 2, pad_h - pad_h / 2}, 0);
  const int64_t ph = padded.size(2), pw = padded.size(3);
  const int64_t stride_h = static_cast<int64_t>(std::ceil(crop_h * o.stride_rate));
  const int64_t stride_w = static_cast<int64_t>(std::ceil(crop_w * o.stride_rate));
  const int64_t rows = (ph - crop_h + stride_h - 1) / stride_h + 1, cols = (pw - crop_w + stride_w - 1) / stride_w + 1;
  at::Tensor sum, count = at::zeros({1, 1, ph, pw}, image.options());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t top = std::min(r * stride_h, ph - crop_h), left = std::min(c * stride_w, pw - crop_w);
      at::Tensor window = padded.slice(2, top, top + crop_h).slice(3, left, left + crop_w);
      at::Tensor logits = WithFlip(model, window, o, crop_h, crop_w);
      if (!sum.defined()) sum = at::zeros({1, logits.size(1), ph, pw}, logits.options());
      sum.slice(2, top, top + crop_h).slice(3, left, left + crop_w).add_(logits);
      count.slice(2, top, top + crop_h).slice(3, left, left + crop_w).add_(1);
    }
  }
  return (sum / count).slice(2, pad_h / 2, pad_h / 2 + h).slice(3, pad_w / 2, pad_w / 2 + w);
}

}  // namespace

void CheckInferenceOptions(const InferenceOptions& o) {
  TORCH_CHECK(!o.scales.empty(), "scales must not be empty");
  for (double s : o.scales) TORCH_CHECK(std::isfinite(s) && s > 0, "scales must be positive numbers, got ", s);
  TORCH_CHECK(o.crop_h >= 1 && o.crop_w >= 1, "the sliding window crop must be at least 1 x 1 pixels, got ", o.crop_h, " x ", o.crop_w);
  TORCH_CHECK(std::isfinite(o.stride_rate) && o.stride_rate > 0 && o.stride_rate <= 1, "strideRate must be in (0, 1], got ", o.stride_rate);
  TORCH_CHECK(o.base_size >= 0, "baseSize must be >= 0, got ", o.base_size);
}

at::Tensor PredictLogits(SegmentationModel& model, const at::Tensor& image, const InferenceOptions& o) {
  CheckInferenceOptions(o);
  at::NoGradGuard no_grad;
  model->eval();
  TORCH_CHECK(image.dim() == 4 && image.size(0) == 1 && image.size(1) == 3, "predict expects a 1 x 3 x H x W image, got ",
              image.sizes());
  const int64_t h = image.size(2), w = image.size(3);
  at::Tensor total;
  for (double s : o.scales) {
    at::Tensor logits;
    if (o.sliding) {
      // §13.3: the long side becomes round(s * base), the short side keeps the aspect ratio.
      const int64_t base = o.base_size > 0 ? o.base_size : std::max(h, w);
      const int64_t long_side = static_cast<int64_t>(std::nearbyint(s * base));
      int64_t nh, nw;
      if (h > w) { nh = long_side; nw = static_cast<int64_t>(std::nearbyint(static_cast<double>(long_side) * w / h)); }
      else { nw = long_side; nh = static_cast<int64_t>(std::nearbyint(static_cast<double>(long_side) * h / w)); }
      at::Tensor x = (nh == h && nw == w) ? image : at::upsample_bilinear2d(image, {nh, nw}, true);
      logits = Sliding(model, x, o);
    } else {
      // §13.4: the whole image resized by the scale (align corners), sizes rounded as the reference.
      const int64_t nh = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(h * s)));
      const int64_t nw = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(w * s)));
      at::Tensor x = (nh == h && nw == w) ? image : at::upsample_bilinear2d(image, {nh, nw}, true);
      logits = WithFlip(model, x, o, nh, nw);
    }
    if (logits.size(2) != h || logits.size(3) != w) logits = at::upsample_bilinear2d(logits, {h, w}, true);
    total = total.defined() ? total + logits : logits;
  }
  return total;
}

at::Tensor EvaluateBatch(SegmentationModel& model, const at::Tensor& images, const at::Tensor& labels, int64_t ignore_index,
                         const InferenceOptions& o) {
  at::NoGradGuard no_grad;
  model->eval();
  const int64_t classes = model->options().num_classes;
  at::Tensor pred = at::upsample_bilinear2d(Logits(model, images, o), {labels.size(1), labels.size(2)}, true).argmax(1);
  return loss::ConfusionMatrix(pred, labels, classes, ignore_index);
}

}  // namespace u2pl::model
