#include "loss/unsupervised.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "loss/entropy.h"
#include "loss/percentile.h"
#include "loss/upsampled_cross_entropy.h"

namespace u2pl::loss {

UnsupervisedResult UnsupervisedLoss(const at::Tensor& student_logits, const at::Tensor& teacher_logits,
                                    const at::Tensor& pseudo_labels, double q, UnsupervisedWeighting weighting,
                                    int64_t ignore_index, const at::Tensor& excluded_pixels) {
  TORCH_CHECK(pseudo_labels.dim() == 3 && student_logits.dim() == 4 && student_logits.size(0) == pseudo_labels.size(0),
              "unsupervised loss: logits must be B x C x h x w and pseudo-labels B x H x W, got ", student_logits.sizes(),
              " and ", pseudo_labels.sizes());
  const int64_t b = pseudo_labels.size(0), h = pseudo_labels.size(1), w = pseudo_labels.size(2);
  UnsupervisedResult r;
  at::Tensor target;
  {
    at::NoGradGuard no_grad;
    r.entropy = UpsampledEntropy(teacher_logits.detach(), h, w);
    at::Tensor valid = pseudo_labels.ne(ignore_index);
    r.valid = valid.sum().item<int64_t>();
    if (r.valid > 0) {
      r.threshold = MaskedPercentile(r.entropy, valid, q);
      target = pseudo_labels.masked_fill(r.entropy.ge(r.threshold).logical_and_(valid), ignore_index);
    } else {
      r.threshold = at::zeros({}, r.entropy.options());
      target = pseudo_labels;
    }
    r.kept = target.ne(ignore_index).sum();
  }
  // Fused upsample + cross-entropy; 0 with a connected graph when nothing is kept (the sum is 0).
  at::Tensor sum = UpsampledCrossEntropySum(student_logits, target, ignore_index);
  const at::Tensor n_keep = r.kept.to(at::kDouble).clamp_min(1);
  if (weighting == UnsupervisedWeighting::kPaper) {
    r.loss = sum / n_keep.to(at::kFloat);
  } else {
    // The factor in double, rounded to float once, as a host scalar would be.
    at::Tensor pixels = at::full({}, static_cast<double>(b * h * w), n_keep.options());
    if (excluded_pixels.defined()) pixels = pixels - excluded_pixels.to(n_keep.options());
    r.loss = sum * (pixels / (n_keep * n_keep)).to(at::kFloat);
  }
  return r;
}

}  // namespace u2pl::loss
