#include "loss/unsupervised.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "loss/entropy.h"
#include "loss/percentile.h"
#include "loss/upsampled_cross_entropy.h"

namespace u2pl::loss {

UnsupervisedResult UnsupervisedLoss(const at::Tensor& student_logits, const at::Tensor& teacher_logits,
                                    const at::Tensor& pseudo_labels, double q, UnsupervisedWeighting weighting,
                                    int64_t ignore_index, int64_t excluded_pixels) {
  TORCH_CHECK(pseudo_labels.dim() == 3 && student_logits.dim() == 4 && student_logits.size(0) == pseudo_labels.size(0),
              "unsupervised loss: logits must be B x C x h x w and pseudo-labels B x H x W, got ", student_logits.sizes(),
              " and ", pseudo_labels.sizes());
  const int64_t b = pseudo_labels.size(0), h = pseudo_labels.size(1), w = pseudo_labels.size(2);
  TORCH_CHECK(excluded_pixels >= 0 && excluded_pixels <= b * h * w, "unsupervised loss: excluded_pixels must be within 0..",
              b * h * w, ", got ", excluded_pixels);
  UnsupervisedResult r;
  at::Tensor target;
  {
    at::NoGradGuard no_grad;
    r.entropy = UpsampledEntropy(teacher_logits.detach(), h, w);
    at::Tensor valid = pseudo_labels.ne(ignore_index);
    r.valid = valid.sum().item<int64_t>();
    if (r.valid > 0) {
      at::Tensor gamma = MaskedPercentile(r.entropy, valid, q);
      r.threshold = gamma.item<double>();
      target = pseudo_labels.masked_fill(r.entropy.ge(gamma).logical_and_(valid), ignore_index);
    } else {
      target = pseudo_labels;
    }
    r.kept = target.ne(ignore_index).sum().item<int64_t>();
  }
  // Fused upsample + cross-entropy; 0 with a connected graph when nothing is kept.
  at::Tensor sum = UpsampledCrossEntropySum(student_logits, target, ignore_index);
  if (r.kept == 0) {
    r.loss = sum * 0.0;
    return r;
  }
  const double n_keep = static_cast<double>(r.kept);
  r.loss = weighting == UnsupervisedWeighting::kReference ? sum * (static_cast<double>(b * h * w - excluded_pixels) / (n_keep * n_keep))
                                                          : sum / n_keep;
  return r;
}

}  // namespace u2pl::loss
