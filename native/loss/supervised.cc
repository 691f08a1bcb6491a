#include "loss/supervised.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "loss/upsampled_cross_entropy.h"

namespace u2pl::loss {
namespace {

at::Tensor UpsampleToLabels(const at::Tensor& logits, const at::Tensor& labels) {
  TORCH_CHECK(logits.dim() == 4 && labels.dim() == 3 && logits.size(0) == labels.size(0),
              "logits must be N x C x h x w and labels N x H x W with the same N; got ", logits.sizes(), " and ", labels.sizes());
  if (logits.size(2) == labels.size(1) && logits.size(3) == labels.size(2)) return logits;
  return at::upsample_bilinear2d(logits, {labels.size(1), labels.size(2)}, /*align_corners=*/true);
}

}  // namespace

// Mean CE over non-ignored pixels; 0 (still connected to the graph) when every pixel is ignored,
// where a plain mean would divide by zero.
at::Tensor CrossEntropy(const at::Tensor& logits, const at::Tensor& labels, int64_t ignore_index,
                        const at::Tensor& class_weight) {
  if (!class_weight.defined())
    return UpsampledCrossEntropySum(logits, labels, ignore_index) / labels.ne(ignore_index).sum().clamp_min(1);
  at::Tensor kept = labels.ne(ignore_index);
  at::Tensor w = class_weight.to(labels.device(), at::kFloat);
  at::Tensor total = w.index_select(0, labels.masked_select(kept).to(at::kLong)).sum();
  // The all-ignored batch: the sum is 0 and so is the loss, as without weights.
  return UpsampledCrossEntropySum(logits, labels, ignore_index, w) / at::where(total.gt(0), total, at::ones_like(total));
}

at::Tensor OhemKeepMask(const at::Tensor& logits, const at::Tensor& labels, double thresh, int64_t min_kept,
                        int64_t ignore_index) {
  at::NoGradGuard no_grad;
  at::Tensor valid = labels.ne(ignore_index);
  const int64_t num_valid = valid.sum().item<int64_t>();
  if (min_kept > num_valid || num_valid == 0 || min_kept <= 0) return valid;
  // True-class probability at each valid pixel: log-softmax gathered, one pass over C.
  at::Tensor target = labels.masked_fill(valid.logical_not(), 0);
  at::Tensor p = at::log_softmax(logits.to(at::kFloat), 1).gather(1, target.unsqueeze(1)).squeeze(1).exp_();
  at::Tensor kth = std::get<0>(at::kthvalue(p.masked_select(valid), min_kept));
  at::Tensor threshold = at::clamp_min(kth, thresh);
  return valid.logical_and(p.le(threshold));
}

at::Tensor SupervisedLoss(const at::Tensor& pred, const at::Tensor& aux, const at::Tensor& labels,
                          const SupervisedOptions& o) {
  auto one = [&](const at::Tensor& logits) {
    if (!o.ohem) return CrossEntropy(logits, labels, o.ignore_index, o.class_weight);
    // The selection needs the upsampled probabilities, not their gradient (the CE recomputes them fused).
    at::Tensor up = UpsampleToLabels(logits.detach().to(at::kFloat), labels);
    at::Tensor keep = OhemKeepMask(up, labels, o.ohem_thresh, o.ohem_min_kept, o.ignore_index);
    return CrossEntropy(logits, labels.masked_fill(keep.logical_not(), o.ignore_index), o.ignore_index, o.class_weight);
  };
  at::Tensor loss = one(pred);
  if (aux.defined()) loss = loss + o.aux_weight * one(aux);
  return loss;
}

}  // namespace u2pl::loss
